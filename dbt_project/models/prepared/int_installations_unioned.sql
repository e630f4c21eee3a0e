{#- Every staged dataset stacked: the generic staging model (stg_doi__installations) and each dataset-specific model a
    manifest entry names as its dbt_model. Columns are matched by name (UNION ALL BY NAME): a column one model lacks
    is null for its rows. Incremental by dataset (macros/incremental.sql): a partial build re-inserts the changed
    datasets' rows only. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_changed_datasets() }}") }}
with

unioned as (

    select * from {{ ref('stg_doi__installations') }}
    {%- for dataset in pv_datasets() if dataset.dbt_model %}
    union all by name
    select * from {{ ref(dataset.dbt_model) }}
    {%- endfor %}

),

keyed as (

    select
        {{ installation_key('dataset_id', 'feature_uid') }} as installation_key,
        {{ geometry_class('geometry_type') }} as geometry_class,
        *
    from unioned
    where {{ is_changed_dataset('dataset_id') }}

)

select * from keyed
