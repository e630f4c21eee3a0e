{#- Fails on every geometry type a dataset holds outside the geometry_types its manifest entry expects (entries
    without geometry_types expect any): one row per dataset and geometry type. -#}
{% test declared_geometry_types(model, column_name='geometry_type') %}

{% for dataset in pv_datasets() if dataset.geometry_types -%}
select dataset_id, {{ column_name }} as geometry_type, count(*) as n_rows
from {{ model }}
where dataset_id = {{ sql_string(dataset.id) }}
  and not {{ sql_in(column_name, dataset.geometry_types) }}
group by all
union all
{% endfor -%}
select null as dataset_id, null as geometry_type, 0 as n_rows
where false

{% endtest %}
