{#-
    Pairs of installations from different datasets that describe the same place.
      polygon_overlap: two polygons that intersect with a positive overlap; areas in EPSG:6933 (equal-area).
      proximity: a point, line or collection within match_max_distance_m metres of an installation of
        another dataset (0 when inside or touching a polygon); metres from a local frame at the point.
    One row per unordered pair, oriented so that dataset_id_a < dataset_id_b.

    Speed: each join has a spatial predicate (ST_Intersects, ST_DWithin) as its ONLY condition, so
    DuckDB spatial plans a SPATIAL_JOIN (an R-tree over bounding boxes built on the fly). A second
    condition comparing the two sides (a.dataset_id <> b.dataset_id, or <) makes DuckDB 1.5 plan a
    NESTED_LOOP_JOIN / PIECEWISE_MERGE_JOIN instead: minutes to hours at 400k rows. Hence one join per
    pair of datasets, generated below, with the dataset filters on each side alone.

    Memory: a join whose point side is empty still builds its other side. The proximity joins are
    generated only for the datasets that hold non-polygons when the model runs (one UK dataset of six
    here): the same rows, 5 joins instead of 30, and the model fits in DuckDB's memory_limit (it needs
    about 600 MB at 444k installations; 30 joins needed more than 1.5 GB). Each further dataset with
    points adds 5 joins: raise PVDOI_DBT_MEMORY_LIMIT if the build fails with an out-of-memory error.

    Incremental by pair of datasets (macros/incremental.sql): the matches of a pair change only when one of its two
    datasets does. A partial build deletes every match that involves a changed dataset (on either side) and runs
    the joins of the pairs that involve one: all pairs of a changed dataset with every other, no pair of two
    unchanged datasets. The rows of other datasets whose matches changed are found by the installations model.
-#}
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_changed_datasets(['dataset_id_a', 'dataset_id_b']) }}") }}
{%- set dataset_ids = pv_dataset_ids() | sort -%}
{%- set changed = changed_datasets() if is_incremental() else none -%}
{#- every dataset until the union exists (parse, or `dbt compile` / `docs generate` before a first build) -#}
{%- set with_non_polygons = [] + dataset_ids -%}
{%- if execute and load_relation(ref('int_installations_unioned')) is not none -%}
    {%- set found = run_query("select distinct dataset_id from " ~ ref('int_installations_unioned')
                              ~ " where geometry_class <> 'polygon' and geometry is not null"
                              ~ " and not ST_IsEmpty(geometry)") -%}
    {%- set with_non_polygons = found.columns[0].values() | list -%}
{%- endif -%}
{%- set unordered_pairs = [] -%}
{%- set ordered_pairs = [] -%}
{%- for first in dataset_ids -%}
    {%- for second in dataset_ids if changed is none or first in changed or second in changed -%}
        {%- if first < second -%}{%- do unordered_pairs.append((first, second)) -%}{%- endif -%}
        {%- if first != second and first in with_non_polygons -%}{%- do ordered_pairs.append((first, second)) -%}{%- endif -%}
    {%- endfor -%}
{%- endfor -%}

with

installations as (

    select
        installation_key,
        dataset_id,
        geometry,
        geometry_class,
        is_geometry_valid,
        centroid_lat
    from {{ ref('int_installations_unioned') }}
    where geometry is not null and not ST_IsEmpty(geometry)

),

-- polygon x polygon, one spatial join per pair of datasets
intersecting_polygons as (

    {% for dataset_a, dataset_b in unordered_pairs %}
    select
        a.installation_key as installation_key_a,
        b.installation_key as installation_key_b,
        a.dataset_id as dataset_id_a,
        b.dataset_id as dataset_id_b,
        a.geometry as geometry_a,
        b.geometry as geometry_b,
        a.is_geometry_valid as is_geometry_valid_a,
        b.is_geometry_valid as is_geometry_valid_b
    from installations as a
    inner join installations as b
        on ST_Intersects(a.geometry, b.geometry)
    where a.dataset_id = '{{ dataset_a }}' and a.geometry_class = 'polygon'
      and b.dataset_id = '{{ dataset_b }}' and b.geometry_class = 'polygon'
    {% if not loop.last %}union all{% endif %}
    {% else %}
    select
        installation_key as installation_key_a,
        installation_key as installation_key_b,
        dataset_id as dataset_id_a,
        dataset_id as dataset_id_b,
        geometry as geometry_a,
        geometry as geometry_b,
        is_geometry_valid as is_geometry_valid_a,
        is_geometry_valid as is_geometry_valid_b
    from installations
    where false  -- fewer than two datasets
    {% endfor %}

),

projected_polygons as (

    select
        installation_key_a,
        installation_key_b,
        dataset_id_a,
        dataset_id_b,
        {{ equal_area_geometry(valid_polygonal('geometry_a', 'is_geometry_valid_a')) }} as equal_area_geometry_a,
        {{ equal_area_geometry(valid_polygonal('geometry_b', 'is_geometry_valid_b')) }} as equal_area_geometry_b
    from intersecting_polygons

),

measured_overlaps as (

    select
        installation_key_a,
        installation_key_b,
        dataset_id_a,
        dataset_id_b,
        ST_Area(equal_area_geometry_a) as area_a_m2,
        ST_Area(equal_area_geometry_b) as area_b_m2,
        ST_Area(ST_Intersection(equal_area_geometry_a, equal_area_geometry_b)) as overlap_area_m2
    from projected_polygons

),

polygon_matches as (

    select
        installation_key_a,
        installation_key_b,
        dataset_id_a,
        dataset_id_b,
        'polygon_overlap' as match_method,
        overlap_area_m2,
        overlap_area_m2 / nullif(least(area_a_m2, area_b_m2), 0) as overlap_ratio,
        overlap_area_m2 / nullif(area_a_m2 + area_b_m2 - overlap_area_m2, 0) as intersection_over_union,
        cast(0 as double) as distance_m
    from measured_overlaps
    where overlap_area_m2 / nullif(least(area_a_m2, area_b_m2), 0) > {{ var('match_min_overlap_ratio') }}

),

-- points, lines, collections (a) x installations of another dataset (b): a spatial join within a
-- radius in degrees, one per ordered pair of datasets; a pair of two non-polygons is found from both
-- sides, so it is kept only from the side of the smaller dataset_id
nearby_candidates as (

    {% for dataset_a, dataset_b in ordered_pairs %}
    select
        a.installation_key as near_key,
        b.installation_key as other_key,
        a.dataset_id as near_dataset_id,
        b.dataset_id as other_dataset_id,
        a.centroid_lat as reference_latitude,
        a.geometry as near_geometry,
        b.geometry as other_geometry
    from installations as a
    inner join installations as b
        on ST_DWithin(a.geometry, b.geometry, {{ var('match_prefilter_degrees') }})
    where a.dataset_id = '{{ dataset_a }}' and a.geometry_class <> 'polygon'
      and b.dataset_id = '{{ dataset_b }}'
      {%- if dataset_a > dataset_b %} and b.geometry_class = 'polygon'{% endif %}
    {% if not loop.last %}union all{% endif %}
    {% else %}
    select
        installation_key as near_key,
        installation_key as other_key,
        dataset_id as near_dataset_id,
        dataset_id as other_dataset_id,
        centroid_lat as reference_latitude,
        geometry as near_geometry,
        geometry as other_geometry
    from installations
    where false  -- no dataset holds points, lines or collections
    {% endfor %}

),

nearby_pairs as (

    select
        near_key,
        other_key,
        near_dataset_id,
        other_dataset_id,
        ST_Distance(
            {{ local_metric_geometry('near_geometry', 'reference_latitude') }},
            {{ local_metric_geometry('other_geometry', 'reference_latitude') }}
        ) as distance_m
    from nearby_candidates

),

proximity_matches as (

    select
        case when near_dataset_id < other_dataset_id then near_key else other_key end as installation_key_a,
        case when near_dataset_id < other_dataset_id then other_key else near_key end as installation_key_b,
        least(near_dataset_id, other_dataset_id) as dataset_id_a,
        greatest(near_dataset_id, other_dataset_id) as dataset_id_b,
        'proximity' as match_method,
        cast(null as double) as overlap_area_m2,
        cast(null as double) as overlap_ratio,
        cast(null as double) as intersection_over_union,
        distance_m
    from nearby_pairs
    where distance_m <= {{ var('match_max_distance_m') }}

),

matches as (

    select * from polygon_matches
    union all
    select * from proximity_matches

),

final as (

    select
        md5(installation_key_a || '|' || installation_key_b) as match_key,
        *
    from matches

)

select * from final
