{#- Geometry helpers. Raw geometries are EPSG:4326 in lon/lat order. -#}

{% macro geometry_class(geometry_type) -%}
    (case
        when {{ geometry_type }} in ('Polygon', 'MultiPolygon') then 'polygon'
        when {{ geometry_type }} in ('Point', 'MultiPoint') then 'point'
        when {{ geometry_type }} in ('LineString', 'MultiLineString') then 'line'
        when {{ geometry_type }} = 'GeometryCollection' then 'collection'
    end)
{%- endmacro %}

{#- Equal-area metres (EPSG:6933). always_xy is required: without it DuckDB's ST_Transform follows the
    EPSG:4326 axis order (lat, lon) and silently returns wrong coordinates for lon/lat data. -#}
{% macro equal_area_geometry(geometry) -%}
    ST_Transform({{ geometry }}, 'EPSG:4326', 'EPSG:6933', always_xy := true)
{%- endmacro %}

{#- Approximate metres for distances of tens of metres: degrees scaled by the ellipsoid's radii of
    curvature at the reference latitude (a local equirectangular frame; < 0.1 % error at 50 m). -#}
{% macro local_metric_geometry(geometry, reference_latitude) -%}
    ST_Scale(
        {{ geometry }},
        radians(1) * 6378137.0 / sqrt(1 - 0.00669437999014 * pow(sin(radians({{ reference_latitude }})), 2))
            * cos(radians({{ reference_latitude }})),
        radians(1) * 6378137.0 * (1 - 0.00669437999014)
            / pow(1 - 0.00669437999014 * pow(sin(radians({{ reference_latitude }})), 2), 1.5)
    )
{%- endmacro %}

{#- A polygon made valid before overlay operations (GEOS throws on invalid input). -#}
{% macro valid_polygonal(geometry, is_valid) -%}
    (case when {{ is_valid }} then {{ geometry }} else ST_CollectionExtract(ST_MakeValid({{ geometry }}), 3) end)
{%- endmacro %}


{#- The geometry clipped to the WGS84 world (-180..180, -90..90) when it reaches past it; unchanged otherwise. -#}
{% macro within_world(geometry) -%}
case
    when ST_XMin({{ geometry }}) < -180 or ST_XMax({{ geometry }}) > 180
      or ST_YMin({{ geometry }}) < -90 or ST_YMax({{ geometry }}) > 90
    then ST_Intersection({{ geometry }}, ST_MakeEnvelope(-180, -90, 180, 90))
    else {{ geometry }}
end
{%- endmacro %}
