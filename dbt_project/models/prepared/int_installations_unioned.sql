{#- Every staged dataset stacked: the generic staging model (stg_doi__installations) and each dataset-specific model a
    manifest entry names as its dbt_model (macro union_inputs). Columns are matched by name (UNION ALL BY NAME): a
    column one model lacks is null for its rows. Incremental by part (macros/incremental.sql): a partial build keeps
    the changed datasets' parts (a source file's rows, loaded together) that it holds as they are, and inserts the
    rows of their other parts. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_changed_parts(union_inputs()) }}") }}
{%- set held = held_parts(union_inputs()) %}
with

unioned as (

    {{ union_inputs() }}

),

keyed as (

    select
        {{ installation_key('dataset_id', 'feature_uid') }} as installation_key,
        {{ geometry_class('geometry_type') }} as geometry_class,
        *
    from unioned
    where {{ is_changed_dataset('dataset_id') }}
    {%- if is_incremental() %}
        and {{ is_new_part(held) }}
    {%- endif %}

)

select * from keyed
