{#- Fails (one row with both counts) when the model and the compared relation hold different
    numbers of rows, each optionally filtered. -#}
{% test row_count_matches_source(model, compare_model, compare_filter=none, model_filter=none) %}

with

model_rows as (
    select count(*) as n from {{ model }}
    {% if model_filter %}where {{ model_filter }}{% endif %}
),

compared_rows as (
    select count(*) as n from {{ compare_model }}
    {% if compare_filter %}where {{ compare_filter }}{% endif %}
)

select
    model_rows.n as model_row_count,
    compared_rows.n as compared_row_count
from model_rows
cross join compared_rows
where model_rows.n <> compared_rows.n

{% endtest %}
