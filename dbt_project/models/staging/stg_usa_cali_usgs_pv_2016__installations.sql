with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where dataset_id = 'usa_cali_usgs_pv_2016'

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
        source_attributes ->> 'city' as city,
        source_attributes ->> 'image_name' as image_name,
        try_cast(source_attributes ->> 'jaccard_index' as double) as jaccard_index

    from source

)

select * from renamed
