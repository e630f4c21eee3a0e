{#-
    dbt-duckdb's incremental materialization, but an incremental run of an `append` model inserts its rows straight
    into its table: `insert into <table> by name (<the model's SQL>)`, inside the transaction of its hooks.
    dbt-duckdb first copies the rows into a temporary table, inserts them from there and then drops it; for the
    incremental models here (whose pre-hooks delete the rows they insert again, macros/incremental.sql) that copy was
    a third of a partial build's time in the two big models (at benchmark scale 1, 0.8 s of each 3 s).
    Everything else (a first build, --full-refresh, another strategy, a Python model) is dbt-duckdb's own
    materialization, called unchanged. on_schema_change 'fail' is kept: the model's columns (from its SQL, not run)
    must be the table's, else the model fails naming them, as dbt-duckdb's does.
-#}
{% materialization incremental, adapter='duckdb' -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- if existing_relation is none or existing_relation.is_view or should_full_refresh()
        or config.get('incremental_strategy') != 'append' or model['language'] != 'sql' -%}
    {{ return(dbt.materialization_incremental_duckdb()) }}
  {%- endif -%}
  {%- set target_relation = this.incorporate(type='table') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- if config.get('on_schema_change') == 'fail' -%}
    {%- set model_columns = get_columns_in_query(compiled_code) | map('lower') | list -%}
    {%- set table_columns = adapter.get_columns_in_relation(existing_relation) | map(attribute='name')
                            | map('lower') | list -%}
    {%- if model_columns != table_columns -%}
      {%- do exceptions.raise_compiler_error(
            "The columns of " ~ this ~ " changed (table: " ~ table_columns | join(', ') ~ "; model: "
            ~ model_columns | join(', ') ~ "); build it with --full-refresh (on_schema_change is 'fail')") -%}
    {%- endif -%}
  {%- endif %}

  {% call statement('main') -%}
    insert into {{ target_relation }} by name ({{ compiled_code }})
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  -- `COMMIT` happens here
  {% do adapter.commit() %}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}
