with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where dataset_id = 'chn_med_res_pv_2024'

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
        loaded_at,

        -- dataset-specific attributes (from the shapefile name, e.g. PV_Train_2020.shp)
        lower(nullif(regexp_extract(source_file, '(?i)PV_(Train|Test)_(\d{4})', 1), '')) as label_set,
        try_cast(nullif(regexp_extract(source_file, '(?i)PV_(Train|Test)_(\d{4})', 2), '') as integer) as label_year

    from source

)

select * from renamed
