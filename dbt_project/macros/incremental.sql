{#-
    Incremental models keyed by dataset. A partial build (pvdoi.transform.plan_build) names the changed
    datasets (macro changed_datasets): those whose rows changed, appeared or left since the last build. An incremental model
    then deletes the rows of those datasets (pre-hook delete_changed_datasets) and inserts them again from its SQL,
    restricted to them by is_changed_dataset. Rows of a dataset no longer in the manifest are deleted too. Without
    them (dbt run by hand on an existing warehouse) every dataset counts as changed: all rows are deleted and
    inserted again. A full build (--full-refresh, or no table yet) creates the table whole.
-#}

{#- The datasets a partial build updates, or none for all of them: the var `changed_datasets` (dbt run by hand), else
    the environment variable PVDOI_DBT_CHANGED_DATASETS (a JSON list; unset or empty: none), which the flow sets: a
    var that changes from build to build makes dbt parse the whole project again (2 to 3 s), an environment
    variable read only when models and tests run does not. -#}
{% macro changed_datasets() -%}
    {%- set from_env = env_var('PVDOI_DBT_CHANGED_DATASETS', '') -%}
    {{ return(var('changed_datasets', fromjson(from_env) if from_env else none)) }}
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

{#- Pre-hook of a model keyed by installation whose rows depend on the installation alone (installation_shape_metrics):
    delete the rows of installations that belong to a changed dataset or are no longer in `installations` (the union,
    already updated), all rows without the var; the model then inserts the changed datasets' rows. -#}
{% macro delete_changed_installations(installations) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where installation_key not in (
            select installation_key from {{ installations }}
            where installation_key is not null and not ({{ is_changed_dataset('dataset_id') }}))
    {%- endif -%}
{%- endmacro %}

{#- The relation a generic test reads (dbt's get_where_subquery, overridden here): the model filtered by the test's
    `where` config, as dbt does. A `where` may name the changed datasets as `__changed_datasets__`, e.g.
    `where: "dataset_id in __changed_datasets__"`: in a partial build (the var) the test then reads only the rows the
    build inserted again, those of the changed datasets; in any other build the condition is dropped and the test
    reads every row. Tests that must see every row (unique, row counts, columns taken from other datasets' rows)
    carry no such condition. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__changed_datasets__' in where -%}
        {%- set changed = changed_datasets() -%}
        {%- set where = none if changed is none else where | replace('__changed_datasets__', sql_values(changed)) -%}
    {%- endif -%}
    {%- if where -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the installations: delete the rows that can have changed, those of installations of a changed dataset
    (or one no longer in the manifest), in a match with one now (`matches`, already rebuilt) or before
    (matched_dataset_ids), or matched before with a dataset no longer in the manifest; every row without the var. The
    model then inserts the installations missing from the table. -#}
{% macro delete_rebuilt_installations(matches) -%}
    {%- if is_incremental() -%}
        {%- set changed = is_changed_dataset('dataset_id_a') ~ ' or ' ~ is_changed_dataset('dataset_id_b') -%}
        delete from {{ this }}
        where not ({{ in_pv_datasets('dataset_id') }}) or ({{ is_changed_dataset('dataset_id') }})
           or list_has_any(matched_dataset_ids, {{ sql_list(changed_datasets() or []) }})
           or not list_has_all({{ sql_list(pv_dataset_ids()) }}, matched_dataset_ids)
           or installation_key in (
               select installation_key_a from {{ matches }} where {{ changed }}
               union all
               select installation_key_b from {{ matches }} where {{ changed }})
    {%- endif -%}
{%- endmacro %}
