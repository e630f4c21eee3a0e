{#- Fails on every geometry whose bounding box leaves lon [-180, 180] x lat [-90, 90]
    (projected coordinates, swapped axes). -#}
{% test geometry_within_wgs84_bounds(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} is not null
  and (
      ST_XMin({{ column_name }}) < -180 or ST_XMax({{ column_name }}) > 180
      or ST_YMin({{ column_name }}) < -90 or ST_YMax({{ column_name }}) > 90
  )

{% endtest %}
