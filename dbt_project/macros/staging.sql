{#-
    The staging model of one DOI dataset (stg_<dataset_id>__installations): its rows of
    raw_data.doi_pv_features renamed and cast, in the house style (a `source` CTE, a `renamed` CTE,
    `select * from renamed`). Every dataset gets the same leading columns (ids, geometry, measures,
    install date, provenance); `dataset_columns` is the dataset's own select-list expressions (comments
    allowed, no trailing comma; written unindented, they are indented to the select list), appended last.

    {% set dataset_columns %}
    source_attributes ->> 'State' as state_name
    {% endset %}
    {{ stg_installations('ind_pv_solar_farms_2022', dataset_columns) }}
-#}
{% macro stg_installations(dataset_id, dataset_columns='') -%}
{%- if dataset_id not in var('pv_dataset_ids') -%}
    {{ exceptions.raise_compiler_error("stg_installations: '" ~ dataset_id ~ "' is not in var('pv_dataset_ids')") }}
{%- endif -%}
{%- set dataset_columns = dataset_columns | trim -%}
with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where dataset_id = '{{ dataset_id }}'

),

renamed as (

    select
        -- ids
        feature_uid,
        dataset_id,
        unified_id as source_installation_id,
        doi,
        source_file,
        source_file_checksum,
        source_feature_index,

        -- geometry (EPSG:4326, lon/lat)
        geometry,
        geometry_type,
        ST_IsValid(geometry) as is_geometry_valid,
        centroid_lon,
        centroid_lat,

        -- measures: m², MW
        area_m2,
        source_area_m2,
        capacity_mw,

        -- install date
        install_date as install_date_raw,
        {{ parse_install_date('source.install_date') }} as install_date,
        {{ install_date_precision('source.install_date') }} as install_date_precision,
        {{ install_date_qualifier('source.install_date') }} as install_date_qualifier,

        -- provenance
        source_attributes,
        ingested_at,
        loaded_at
        {%- if dataset_columns %},

        {{ dataset_columns | indent(8) }}
        {%- endif %}

    from source

)

select * from renamed
{%- endmacro %}
