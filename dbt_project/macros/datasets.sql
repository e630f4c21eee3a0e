{#-
    The datasets come from the manifest (doi_manifest.json), passed at build time as the var `pv_datasets`: a list of
    {id, attributes, dbt_model} (pvdoi.transform.dbt_vars; `python -m pvdoi.transform --vars` prints them). No model,
    test or macro names a dataset: they read it from here.
-#}

{#- The manifest's datasets (the var; empty without vars, e.g. `dbt parse`). -#}
{% macro pv_datasets() -%}
    {{ return(var('pv_datasets', []) or []) }}
{%- endmacro %}

{#- The ids of the given datasets (default: all of them), in manifest order. -#}
{% macro pv_dataset_ids(datasets=none) -%}
    {{ return((pv_datasets() if datasets is none else datasets) | map(attribute='id') | list) }}
{%- endmacro %}

{#- A quoted SQL string literal. -#}
{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- A parenthesised SQL list of strings, `('a', 'b')`, or `(null)` for no values (`x in (null)` holds for no row). -#}
{% macro sql_values(values) -%}
    ({% for value in values %}{{ sql_string(value) }}{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
{%- endmacro %}

{#- `column in ('a', 'b')`, or `false` for no values. -#}
{% macro sql_in(column, values) -%}
    {%- if values | length -%}
        {{ column }} in {{ sql_values(values) }}
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- `column` is one of the manifest's dataset ids. -#}
{% macro in_pv_datasets(column='dataset_id') -%}
    {{ sql_in(column, pv_dataset_ids()) }}
{%- endmacro %}

{#- The datasets staged by the generic model (stg_doi__installations): those without a dbt_model of their own. -#}
{% macro generic_pv_datasets() -%}
    {{ return(pv_datasets() | rejectattr('dbt_model') | list) }}
{%- endmacro %}

{#- In a dataset-specific staging model: the manifest entry whose dbt_model names this model. -#}
{% macro pv_dataset_of_model() -%}
    {%- for dataset in pv_datasets() if dataset.dbt_model == model.name -%}
        {{ return(dataset) }}
    {%- endfor -%}
    {{ return({'id': '', 'attributes': [], 'dbt_model': model.name}) }}
{%- endmacro %}

{#- The union's inputs (int_installations_unioned): the generic staging model and every dataset-specific one, stacked
    by column name. -#}
{% macro union_inputs() -%}
    select * from {{ ref('stg_doi__installations') }}
    {%- for dataset in pv_datasets() if dataset.dbt_model %}
    union all by name
    select * from {{ ref(dataset.dbt_model) }}
    {%- endfor %}
{%- endmacro %}
