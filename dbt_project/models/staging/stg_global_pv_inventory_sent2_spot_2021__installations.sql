with

source as (

    select * from {{ source('raw_data', 'doi_pv_features') }}
    where dataset_id = 'global_pv_inventory_sent2_spot_2021'

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
        upper(source_attributes ->> 'confidence') as confidence,
        source_attributes ->> 'iso-3166-1' as iso_3166_1,
        source_attributes ->> 'iso-3166-2' as iso_3166_2,
        case
            when source_file ilike 'predicted%' then 'predicted'
            when source_file ilike 'trn%' then 'train'
            when source_file ilike 'cv%' then 'validation'
            when source_file ilike 'test%' then 'test'
        end as label_set

    from source

)

select * from renamed
