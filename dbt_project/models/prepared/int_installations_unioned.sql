{#- All staging models stacked. Columns shared by every staging model come first; dataset-specific
    columns are matched by name and are null for the other datasets (UNION ALL BY NAME). -#}
with

unioned as (

    {% for dataset_id in var('pv_dataset_ids') %}
    select * from {{ ref('stg_' ~ dataset_id ~ '__installations') }}
    {% if not loop.last %}union all by name{% endif %}
    {% endfor %}

),

keyed as (

    select
        {{ installation_key('dataset_id', 'feature_uid') }} as installation_key,
        {{ geometry_class('geometry_type') }} as geometry_class,
        *
    from unioned

)

select * from keyed
