{#-
    Staging of the DOI datasets, generated from their manifest entries (macro pv_datasets): the rows of
    raw_data.doi_pv_features of the given datasets, renamed and cast, in the house style (a `source` CTE, a `renamed`
    CTE, `select * from renamed`). Every dataset gets the same leading columns (ids, geometry, measures, install date,
    provenance), then the attributes the datasets declare, in manifest order, each null for the datasets that do not
    declare it. stg_doi__installations calls it for every dataset without a dbt_model; a dataset-specific model may
    call it for its own entry and add real SQL:

    with staged as ({{ stg_installations([pv_dataset_of_model()]) }})
    select *, ... from staged
-#}
{% macro stg_installations(datasets) -%}
{%- set columns = stg_attribute_columns(datasets) -%}
with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where {{ sql_in('dataset_id', pv_dataset_ids(datasets)) }}

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
        {%- if columns %},

        -- the datasets' declared attributes (doi_manifest.json)
        {%- for name, column in columns.items() %}
        cast(case dataset_id
            {%- for dataset_id, expression in column.cases %}
            when {{ sql_string(dataset_id) }} then {{ expression }}
            {%- endfor %}
        end as {{ column.sql_type }}) as {{ name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
        {%- endif %}

    from source

)

select * from renamed
{%- endmacro %}

{#- The declared attributes of the datasets by column name, in manifest order: {name: {sql_type, cases: [(dataset
    id, SQL expression)]}}. The manifest gives one type per name. -#}
{% macro stg_attribute_columns(datasets) -%}
    {%- set sql_types = {'text': 'varchar', 'bigint': 'bigint', 'integer': 'integer', 'double': 'double',
                         'boolean': 'boolean'} -%}
    {%- set columns = {} -%}
    {%- for dataset in datasets -%}
        {%- for attribute in dataset.attributes -%}
            {%- if attribute.name not in columns -%}
                {%- do columns.update({attribute.name: {'sql_type': sql_types[attribute.type], 'cases': []}}) -%}
            {%- endif -%}
            {%- do columns[attribute.name].cases.append((dataset.id, stg_attribute(attribute))) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{#- The SQL of one declared attribute (see pvdoi/attributes.py): its source, transform, type and scale. -#}
{% macro stg_attribute(attribute) -%}
    {%- if attribute.json_key is defined -%}
        {%- set value = "source_attributes ->> " ~ sql_string(attribute.json_key) -%}
    {%- elif attribute.file_regex is defined -%}
        {%- set value = "nullif(regexp_extract(source_file, " ~ sql_string(attribute.file_regex) ~ ", "
                        ~ (attribute.group | int) ~ "), '')" -%}
    {%- else -%}
        {%- set cases = [] -%}
        {%- for prefix, prefix_value in attribute.file_prefixes.items() -%}
            {%- do cases.append("when starts_with(lower(source_file), " ~ sql_string(prefix | lower) ~ ") then "
                                ~ sql_string(prefix_value)) -%}
        {%- endfor -%}
        {%- set value = "case " ~ (cases | join(" ")) ~ " end" -%}
    {%- endif -%}
    {%- if attribute.transform is defined -%}
        {%- set value = {'upper': 'upper', 'lower': 'lower'}[attribute.transform] ~ "(" ~ value ~ ")" -%}
    {%- endif -%}
    {%- set scale = (" * cast(" ~ (attribute.scale | float) ~ " as double)") if attribute.scale is defined else "" -%}
    {%- if attribute.type == 'text' -%}
        {{ return(value) }}
    {%- elif attribute.type == 'double' -%}
        {{ return("try_cast(" ~ value ~ " as double)" ~ scale) }}
    {%- elif attribute.type == 'boolean' -%}
        {{ return("try_cast(" ~ value ~ " as double) = 1") }}
    {%- else -%}
        {{ return("try_cast(try_cast(" ~ value ~ " as double)" ~ scale ~ " as " ~ attribute.type ~ ")") }}
    {%- endif -%}
{%- endmacro %}
