{#-
    The country and first-level region of every installation, from the Overture division areas, by the
    installation's centroid (centroid_lon, centroid_lat).
      within_land: the centroid lies in a land-clipped division area (is_land).
      within_territorial: it lies only in a territorial area (land plus territorial sea): offshore installations.
      nearest: it lies in no area of that level; the nearest area within the fallback distance is taken
        (coastal installations just outside a simplified coastline, offshore where only land areas exist).
    The fallback distance is var('overture_fallback_km'), default env PVDOI_OVERTURE_FALLBACK_KM or 25 km:
    a little more than the 12-nautical-mile (22.2 km) territorial sea. Distances in metres in a local frame
    at the centroid (macro local_metric_geometry), exact enough at this range.
    Country: the best area of any level (countries, dependencies and regions all carry the country code):
    containment before nearest, land before territorial, then the nearest, then country level before region
    level and a dependency before the country around it. Region: the best region area, regions of the
    assigned country first.
    Speed: every join's only condition is ST_Intersects / ST_DWithin, which DuckDB plans as a SPATIAL_JOIN,
    and the joins use geometry_pieces (each area cut into pieces of at most 256 vertices), not the areas:
    DuckDB tests a point against every vertex, milliseconds for a detailed coastline, microseconds per piece.
    Incremental by dataset (macros/incremental.sql): an installation's assignment depends on it and the areas alone;
    when the areas change, pvdoi.transform passes no changed_datasets and every row is assigned again.
-#}
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_changed_datasets() }}") }}
{%- set fallback_km = var('overture_fallback_km', env_var('PVDOI_OVERTURE_FALLBACK_KM', '25')) | float -%}
{#- the spatial join's prefilter radius in degrees: the fallback distance in degrees of longitude up to 80°
    latitude (1 / cos 80° = 5.76); the exact distance is checked afterwards -#}
{%- set prefilter_degrees = fallback_km / 111.32 * 5.76 -%}

with

unioned as (

    select installation_key, dataset_id, centroid_lon, centroid_lat
    from {{ ref('int_installations_unioned') }}
    where {{ is_changed_dataset('dataset_id') }}  -- incremental: the changed datasets' installations only

),

installations as (

    select installation_key, centroid_lat, ST_Point(centroid_lon, centroid_lat) as centroid
    from unioned
    where centroid_lon is not null and centroid_lat is not null

),

division_areas as (

    select division_area_id, division_level, subtype, country_code, region_code, division_name, is_land,
           geometry_pieces
    from {{ ref('stg_overture__division_areas') }}
    where geometry is not null and not ST_IsEmpty(geometry)

),

division_area_pieces as (

    select * exclude (geometry_pieces), unnest(geometry_pieces) as piece
    from division_areas

),

-- distinct: a centroid on the cut between two pieces lies in both
containing_areas as (

    select distinct
        installations.installation_key,
        pieces.division_area_id,
        pieces.division_level,
        pieces.subtype,
        pieces.country_code,
        pieces.region_code,
        pieces.division_name,
        case when pieces.is_land then 'within_land' else 'within_territorial' end as assignment,
        cast(0 as double) as distance_km
    from installations
    inner join division_area_pieces as pieces
        on ST_Intersects(pieces.piece, installations.centroid)

),

{% for level in ['country', 'region'] %}
-- installations in no {{ level }}-level area, and the {{ level }}-level areas near them
unplaced_in_{{ level }} as (

    select installations.*
    from installations
    anti join (
        select installation_key from containing_areas where division_level = '{{ level }}'
    ) as placed
        using (installation_key)

),

nearby_{{ level }}_pieces as (

    select
        unplaced.installation_key,
        pieces.division_area_id,
        ST_Distance(
            {{ local_metric_geometry('pieces.piece', 'unplaced.centroid_lat') }},
            {{ local_metric_geometry('unplaced.centroid', 'unplaced.centroid_lat') }}
        ) / 1000 as distance_km
    from unplaced_in_{{ level }} as unplaced
    inner join (select * from division_area_pieces where division_level = '{{ level }}') as pieces
        on ST_DWithin(pieces.piece, unplaced.centroid, {{ prefilter_degrees }})

),

-- an area's distance is its nearest piece's
nearby_{{ level }}_areas as (

    select
        nearby.installation_key,
        areas.division_area_id,
        areas.division_level,
        areas.subtype,
        areas.country_code,
        areas.region_code,
        areas.division_name,
        'nearest' as assignment,
        min(nearby.distance_km) as distance_km
    from nearby_{{ level }}_pieces as nearby
    inner join division_areas as areas
        on areas.division_area_id = nearby.division_area_id
    group by all

),
{% endfor %}

candidates as (

    select * from containing_areas
    union all by name
    select * from nearby_country_areas where distance_km <= {{ fallback_km }}
    union all by name
    select * from nearby_region_areas where distance_km <= {{ fallback_km }}

),

ranked_candidates as (

    select
        *,
        case assignment when 'within_land' then 1 when 'within_territorial' then 2 else 3 end as assignment_rank,
        case subtype when 'dependency' then 1 when 'country' then 2 else 3 end as subtype_rank
    from candidates

),

countries as (

    select *
    from ranked_candidates
    qualify row_number() over (
        partition by installation_key
        order by assignment_rank, distance_km, subtype_rank, division_area_id
    ) = 1

),

regions as (

    select ranked_candidates.*
    from ranked_candidates
    left join countries
        on countries.installation_key = ranked_candidates.installation_key
    where ranked_candidates.division_level = 'region'
    qualify row_number() over (
        partition by ranked_candidates.installation_key
        order by
            ranked_candidates.country_code is not distinct from countries.country_code desc,
            ranked_candidates.assignment_rank,
            ranked_candidates.distance_km,
            ranked_candidates.division_area_id
    ) = 1

),

-- one name per country code: the land area of subtype country first
country_names as (

    select
        country_code,
        arg_min(division_name, (subtype <> 'country', not is_land, division_area_id)) as country_name
    from division_areas
    where division_level = 'country'
    group by country_code

),

on_land as (

    select distinct installation_key
    from containing_areas
    where assignment = 'within_land'

),

final as (

    select
        unioned.installation_key,
        unioned.dataset_id,

        countries.country_code,
        country_names.country_name,
        countries.assignment as country_assignment,
        countries.distance_km as country_distance_km,
        countries.division_area_id as country_division_area_id,

        regions.region_code,
        regions.division_name as region_name,
        regions.assignment as region_assignment,
        regions.distance_km as region_distance_km,
        regions.division_area_id as region_division_area_id,

        on_land.installation_key is not null as is_on_land

    from unioned
    left join countries
        on countries.installation_key = unioned.installation_key
    left join country_names
        on country_names.country_code = countries.country_code
    left join regions
        on regions.installation_key = unioned.installation_key
    left join on_land
        on on_land.installation_key = unioned.installation_key

)

select * from final
