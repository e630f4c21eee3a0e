{#- Fails on every polygonal row (Polygon, MultiPolygon) whose value is null, zero or negative. -#}
{% test positive_for_polygons(model, column_name, geometry_type_column='geometry_type') %}

select *
from {{ model }}
where {{ geometry_type_column }} in ('Polygon', 'MultiPolygon')
  and not coalesce({{ column_name }} > 0, false)

{% endtest %}
