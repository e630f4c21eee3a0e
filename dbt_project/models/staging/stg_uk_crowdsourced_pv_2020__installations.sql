with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where dataset_id = 'uk_crowdsourced_pv_2020'

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

        -- dataset-specific attributes
        try_cast(try_cast(source_attributes ->> 'osm_id' as double) as bigint) as osm_id,
        source_attributes ->> 'osm_objtype' as osm_objtype,
        try_cast(try_cast(source_attributes ->> 'repd_id' as double) as bigint) as repd_id,
        source_attributes ->> 'repd_site_name' as repd_site_name,
        source_attributes ->> 'repd_status' as repd_status,
        source_attributes ->> 'located' as located,
        try_cast(try_cast(source_attributes ->> 'num_modules' as double) as bigint) as num_modules

    from source

)

select * from renamed
