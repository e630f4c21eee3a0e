{#- Fails on every row where the boolean SQL expression is false (null counts as passing). -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
