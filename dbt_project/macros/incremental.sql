{#-
    Incremental models keyed by dataset. A partial build (pvdoi.transform.plan_build) passes the var
    `changed_datasets`: the datasets whose rows changed, appeared or left since the last build. An incremental model
    then deletes the rows of those datasets (pre-hook delete_changed_datasets) and inserts them again from its SQL,
    restricted to them by is_changed_dataset. Rows of a dataset no longer in the manifest are deleted too. Without
    the var (dbt run by hand on an existing warehouse) every dataset counts as changed: all rows are deleted and
    inserted again. A full build (--full-refresh, or no table yet) creates the table whole.
-#}

{#- The datasets a partial build updates (the var), or none for all of them. -#}
{% macro changed_datasets() -%}
    {{ return(var('changed_datasets', none)) }}
{%- endmacro %}

{#- A SQL list of strings (varchar[]). -#}
{% macro sql_list(values) -%}
    [{% for value in values %}{{ sql_string(value) }}{% if not loop.last %}, {% endif %}{% endfor %}]::varchar[]
{%- endmacro %}

{#- A SQL condition: `column` is a dataset this build updates (`true` unless an incremental build with the var). -#}
{% macro is_changed_dataset(column='dataset_id') -%}
    {%- if is_incremental() and changed_datasets() is not none -%}
        {{ sql_in(column, changed_datasets()) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook: delete the rows of which any of `columns` names a changed dataset or one no longer in the manifest. -#}
{% macro delete_changed_datasets(columns=['dataset_id']) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where false
        {%- for column in columns %}
            or not ({{ in_pv_datasets(column) }}) or ({{ is_changed_dataset(column) }})
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook (outside the model's transaction: the Python model reads the table through another connection) of a
    table that keeps its rows from one build to the next: delete the rows of installations that are no longer in
    `installations` (the union) or belong to a changed dataset, all rows in a full build (--full-refresh) or without
    the var; the model then adds the installations it lacks (installation_shape_metrics). -#}
{% macro delete_changed_installations(installations) -%}
    {%- set existing = load_relation(this) -%}
    {%- if existing is not none and existing.is_table -%}
        {%- set partial = not should_full_refresh() and changed_datasets() is not none -%}
        delete from {{ this }} where installation_key not in (
            select installation_key from {{ installations }}
            where {% if partial %}not ({{ sql_in('dataset_id', changed_datasets()) }}){% else %}false{% endif %})
    {%- endif -%}
{%- endmacro %}
