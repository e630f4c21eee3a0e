{#- Fails on every value of a declared attribute outside its accepted_values (compared as text), for the dataset
    that declares them in the manifest: one row per dataset, attribute and value. -#}
{% test declared_attribute_values(model) %}
{%- set checks = [] -%}
{%- for dataset in pv_datasets() -%}
    {%- for attribute in dataset.attributes if attribute.accepted_values is defined -%}
        {%- do checks.append((dataset.id, attribute)) -%}
    {%- endfor -%}
{%- endfor %}

{% for dataset_id, attribute in checks -%}
select
    {{ sql_string(dataset_id) }} as dataset_id,
    {{ sql_string(attribute.name) }} as attribute,
    cast({{ attribute.name }} as varchar) as value,
    count(*) as n_rows
from {{ model }}
where dataset_id = {{ sql_string(dataset_id) }}
  and {{ attribute.name }} is not null
  and not {{ sql_in('cast(' ~ attribute.name ~ ' as varchar)', attribute.accepted_values) }}
group by all
union all
{% endfor -%}
select null as dataset_id, null as attribute, null as value, 0 as n_rows
where false

{% endtest %}
