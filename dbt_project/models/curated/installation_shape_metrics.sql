{#- Shape metrics of every polygonal installation: area, perimeter, compactness, orientation, rectangularity.
    Area in the equal-area EPSG:6933: the union's area_m2, which the ingest measured so (pvdoi/features/geometry.py,
    the same projection as DuckDB's ST_Transform to EPSG:6933; measuring it again here took a fifth of the model's
    time); perimeter, the minimum rotated rectangle and its orientation in a local tangent
    plane (metres east/north of the polygon's centroid, the ellipsoid's radii of curvature at its latitude:
    macro local_metric_geometry), which keeps shapes and angles (EPSG:6933 stretches east-west lengths by up to
    ~1.4x at European latitudes). ST_MinimumRotatedRectangle is GEOS's minimum-area rectangle.
    Incremental by dataset (macros/incremental.sql): a polygon's metrics depend on its geometry alone; a partial
    build deletes the rows of changed datasets and of installations no longer in the union, and measures the changed
    datasets' polygons. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_changed_installations(ref('int_installations_unioned')) }}") }}
with

polygons as (

    select installation_key, geometry, area_m2
    from {{ ref('int_installations_unioned') }}
    where geometry_class = 'polygon' and {{ is_changed_dataset('dataset_id') }}

),

-- the area-weighted centroid; for a polygon without area (a bowtie, collapsed rings) that of its rings, then of its
-- vertices, as GEOS does
centred as (

    select
        installation_key,
        geometry,
        area_m2,
        case
            when not ST_IsEmpty(ST_Centroid(geometry)) then ST_Centroid(geometry)
            when not ST_IsEmpty(ST_Centroid(ST_Boundary(geometry))) then ST_Centroid(ST_Boundary(geometry))
            else ST_Centroid(ST_Points(geometry))
        end as centroid
    from polygons

),

projected as (

    select
        installation_key,
        area_m2,
        {{ local_metric_geometry('ST_Translate(geometry, -ST_X(centroid), -ST_Y(centroid))', 'ST_Y(centroid)') }}
            as local_geometry
    from centred

),

measured as (

    select
        installation_key,
        area_m2,
        ST_Perimeter(local_geometry) as perimeter_m,  -- exterior and interior rings
        ST_Area(local_geometry) as local_area_m2,
        ST_MinimumRotatedRectangle(local_geometry) as rectangle  -- a line or point for shapes without area
    from projected

),

-- the rectangle's first three corners (null for a degenerate rectangle)
cornered as (

    select
        *,
        ST_PointN(ST_ExteriorRing(rectangle), 1) as corner_0,
        ST_PointN(ST_ExteriorRing(rectangle), 2) as corner_1,
        ST_PointN(ST_ExteriorRing(rectangle), 3) as corner_2
    from measured

),

-- azimuth of the long side (the first when both are as long), degrees clockwise from north, in [0, 180)
oriented as (

    select
        *,
        case
            when ST_Distance(corner_0, corner_1) >= ST_Distance(corner_1, corner_2)
                then degrees(atan2(ST_X(corner_1) - ST_X(corner_0), ST_Y(corner_1) - ST_Y(corner_0)))
            else degrees(atan2(ST_X(corner_2) - ST_X(corner_1), ST_Y(corner_2) - ST_Y(corner_1)))
        end as long_side_azimuth
    from cornered

),

final as (

    select
        installation_key,
        area_m2,
        perimeter_m,
        -- Polsby-Popper 4 pi A / P^2: 1 for a disc, pi/4 for a square
        case when perimeter_m > 0 then least(4 * pi() * area_m2 / pow(perimeter_m, 2), 1.0) end as compactness,
        -- modulo 180 (floored: DuckDB's % keeps the sign); within 0.0018 degrees below 180 counts as 0
        case
            when abs(long_side_azimuth - 180 * floor(long_side_azimuth / 180) - 180) <= 1e-8 + 1e-5 * 180 then 0.0
            else long_side_azimuth - 180 * floor(long_side_azimuth / 180)
        end as orientation_deg,
        -- (least would skip a null: a degenerate rectangle's stays null)
        case when ST_Area(rectangle) > 0 then least(local_area_m2 / ST_Area(rectangle), 1.0) end as rectangularity
    from oriented

)

select * from final
