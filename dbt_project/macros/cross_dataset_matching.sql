{#-
    Cross-dataset matching (int_installations_cross_dataset_matched), one join per statement.

    A statement that unions the joins of every pair of datasets holds the build sides of all of them at once
    (about 1.8 GB at benchmark scale 1 against about 250 MB for the largest join alone), so the model creates its
    typed, empty table and its post-hook inserts the matches join by join: one `insert ... select` per join.

    Each join has a spatial predicate (ST_Intersects, ST_DWithin) as its ONLY condition, so DuckDB spatial plans a
    SPATIAL_JOIN (an R-tree over bounding boxes built on the fly). A second condition comparing the two sides
    (a.dataset_id <> b.dataset_id, or <) makes DuckDB 1.5 plan a NESTED_LOOP_JOIN / PIECEWISE_MERGE_JOIN instead:
    minutes to hours at 400k rows. Hence one join per pair of datasets, with the dataset filters on each side alone.
-#}

{#- The joins to run: {method, a, b}. polygon_overlap for every unordered pair (a < b); proximity for every ordered
    pair whose first dataset holds non-polygons when the model runs (a join whose point side is empty still builds
    its other side: memory). In an incremental build with the var `changed_datasets`, only the pairs that involve a
    changed dataset. -#}
{% macro cross_dataset_match_joins(installations) -%}
    {%- set dataset_ids = pv_dataset_ids() | sort -%}
    {%- set changed = changed_datasets() if is_incremental() else none -%}
    {#- every dataset until the union exists (parse, or `dbt compile` / `docs generate` before a first build) -#}
    {%- set with_non_polygons = [] + dataset_ids -%}
    {%- if execute and load_relation(installations) is not none -%}
        {%- set found = run_query("select distinct dataset_id from " ~ installations
                                  ~ " where geometry_class <> 'polygon' and geometry is not null"
                                  ~ " and not ST_IsEmpty(geometry)") -%}
        {%- set with_non_polygons = found.columns[0].values() | list -%}
    {%- endif -%}
    {%- set joins = [] -%}
    {%- for first in dataset_ids -%}
        {%- for second in dataset_ids if changed is none or first in changed or second in changed -%}
            {%- if first < second -%}
                {%- do joins.append({'method': 'polygon_overlap', 'a': first, 'b': second}) -%}
            {%- endif -%}
            {%- if first != second and first in with_non_polygons -%}
                {%- do joins.append({'method': 'proximity', 'a': first, 'b': second}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(joins) }}
{%- endmacro %}

{#- Post-hook: one `insert into this select ...;` per join (DuckDB runs them one after the other, each with only its
    own join's memory). -#}
{% macro insert_cross_dataset_matches(installations) -%}
    {%- for join in cross_dataset_match_joins(installations) %}
insert into {{ this }} by name {{ cross_dataset_matches(installations, [join]) }};
    {%- endfor -%}
{%- endmacro %}

{#- The matches found by the given joins ({method, a, b}; none: a typed, empty relation). -#}
{% macro cross_dataset_matches(installations, joins) -%}
{%- set polygon_pairs = [] -%}
{%- set proximity_pairs = [] -%}
{%- for join in joins -%}
    {%- do (polygon_pairs if join.method == 'polygon_overlap' else proximity_pairs).append((join.a, join.b)) -%}
{%- endfor -%}
with

-- read by each side of each join with its dataset filter (`not materialized`: a CTE named twice is otherwise copied
-- whole, every installation's geometry, before the join)
installations as not materialized (

    select
        installation_key,
        dataset_id,
        geometry,
        geometry_class,
        is_geometry_valid,
        centroid_lat
    from {{ installations }}
    where geometry is not null and not ST_IsEmpty(geometry)

),

-- polygon x polygon, one spatial join per pair of datasets
intersecting_polygons as (

    {% for dataset_a, dataset_b in polygon_pairs %}
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
    where false  -- no polygon join in this statement
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
-- radius in degrees, one per ordered pair of datasets. A pair of two non-polygons is found from both
-- sides, so it is kept only from the side of the smaller dataset_id
nearby_candidates as (

    {% for dataset_a, dataset_b in proximity_pairs %}
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
    where false  -- no proximity join in this statement
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
{%- endmacro %}
