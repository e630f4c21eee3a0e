with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where dataset_id = 'global_harmonized_large_solar_farms_2020'

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

        -- dataset-specific attributes (areas published in km²)
        upper(source_attributes ->> 'GID_0') as country_iso3,
        try_cast(try_cast(source_attributes ->> 'panels' as double) as bigint) as panel_count,
        try_cast(source_attributes ->> 'landscape.area' as double) * 1e6 as landscape_area_m2,
        try_cast(source_attributes ->> 'water' as double) = 1 as is_water,
        try_cast(source_attributes ->> 'urban' as double) = 1 as is_urban

    from source

)

select * from renamed
