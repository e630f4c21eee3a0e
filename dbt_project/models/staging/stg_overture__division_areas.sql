with

source as (

    select * from {{ source('raw_data', 'overture_division_areas') }}

),

renamed as (

    select
        -- ids
        id as division_area_id,
        division_id,

        -- classification; releases before is_land / is_territorial only had class (land, maritime)
        subtype,
        case when subtype = 'region' then 'region' else 'country' end as division_level,
        class as area_class,
        coalesce(is_land, class = 'land') as is_land,
        coalesce(is_territorial, class = 'maritime') as is_territorial,

        -- codes and names
        country as country_code,
        region as region_code,
        name as division_name,

        -- geometry (EPSG:4326, lon/lat); a coordinate a hair past the world's edge (float noise in the published
        -- areas, e.g. a longitude of 180.00000000000006) is clipped back to it, never failing the models after
        {{ within_world('geometry') }} as geometry,
        coalesce(list_transform(geometry_pieces, piece -> {{ within_world('piece') }}),
                 [{{ within_world('geometry') }}]) as geometry_pieces,
        bbox_xmin,
        bbox_xmax,
        bbox_ymin,
        bbox_ymax,

        -- provenance
        version as feature_version,
        release as overture_release,
        source_url,
        fetch_bbox,
        loaded_at

    from source

)

select * from renamed
