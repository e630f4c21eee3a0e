{#- Fails on every non-null geometry that GEOS reports as invalid (self-intersections, bad rings). -#}
{% test geometry_is_valid(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} is not null
  and not ST_IsValid({{ column_name }})

{% endtest %}
