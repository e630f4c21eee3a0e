{#- Fails on every value that is not a dataset id of the manifest (var pv_datasets), one row per value. -#}
{% test accepted_dataset_id(model, column_name) %}

select {{ column_name }} as value, count(*) as n_rows
from {{ model }}
where {{ column_name }} is not null
  and not {{ in_pv_datasets(column_name) }}
group by 1

{% endtest %}
