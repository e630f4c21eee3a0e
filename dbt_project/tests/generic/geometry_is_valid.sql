{#- Fails on every non-null geometry that GEOS reports as invalid (self-intersections, bad rings).
    With `recorded`, a boolean column that already holds GEOS's verdict on this very geometry (is_geometry_valid,
    which every staging model computes with ST_IsValid), the test reads that verdict and asks GEOS only where it is
    null: the union's geometries are validated once per build, not twice (half a second of a partial build's
    critical path at benchmark scale 1). -#}
{% test geometry_is_valid(model, column_name, recorded=none) %}

select *
from {{ model }}
where {{ column_name }} is not null
{%- if recorded %}
  and not coalesce({{ recorded }}, ST_IsValid({{ column_name }}))
{%- else %}
  and not ST_IsValid({{ column_name }})
{%- endif %}

{% endtest %}
