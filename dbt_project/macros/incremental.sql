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

{#- The union's rows come in parts: a dataset's rows from one source file, loaded together. The load replaces a
    dataset's rows part by part, and every row it writes gets that load's loaded_at (pvdoi/warehouse/datasets.py), so
    a part is keyed by dataset_id, source_file and loaded_at. In a partial build the union keeps the changed
    datasets' parts that it holds with as many rows as its inputs (held_parts), deletes their other rows (pre-hook
    delete_changed_parts) and inserts its inputs' rows of the parts it does not hold (is_new_part): at benchmark
    scale 1, the 6,300 rows of one changed file instead of its dataset's 119,000. Kept only where a row depends on
    its raw row alone (keeps_parts): not in a build that names no changed datasets (dbt run by hand, e.g. after an
    edited model or var: every row is computed again), not for a dataset with a model of its own (its SQL may read
    its other rows), not for a row without loaded_at. -#}
{% macro part_key() -%}
    concat_ws('|', dataset_id, source_file, cast(loaded_at as varchar))
{%- endmacro %}

{#- A SQL condition: the row is of a part that a partial build may keep (see above). -#}
{% macro keeps_parts() -%}
    {%- if changed_datasets() is none -%}
        false
    {%- else -%}
        loaded_at is not null and {{ is_changed_dataset('dataset_id') }}
        and {{ sql_in('dataset_id', pv_dataset_ids(generic_pv_datasets())) }}
    {%- endif -%}
{%- endmacro %}

{#- SQL: the keys of the parts that the model's table holds with as many rows as `inputs` (SQL), of those it may
    keep. -#}
{% macro held_parts_sql(inputs) -%}
    select part from (
        select {{ part_key() }} as part, count(*) as n from {{ this }} where {{ keeps_parts() }} group by part
    ) as held
    inner join (
        select {{ part_key() }} as part, count(*) as n from ({{ inputs }}) as inputs where {{ keeps_parts() }}
        group by part
    ) as wanted using (part, n)
{%- endmacro %}

{#- The held parts' keys, a list (empty unless an incremental build runs): a literal in the model's SQL, which DuckDB
    applies where the inputs are read (a subquery there is joined after staging computed every row: 1.5 s against
    0.14 s at benchmark scale 1). -#}
{% macro held_parts(inputs) -%}
    {%- if execute and is_incremental() and changed_datasets() is not none -%}
        {{ return(run_query(held_parts_sql(inputs)).columns[0].values() | list) }}
    {%- endif -%}
    {{ return([]) }}
{%- endmacro %}

{#- A SQL condition: the row's part is not one of `held` (a list of part keys). -#}
{% macro is_new_part(held) -%}
    (loaded_at is null or not list_contains({{ sql_list(held) }}, {{ part_key() }}))
{%- endmacro %}

{#- Pre-hook of the union: delete the rows of datasets no longer in the manifest, and the changed datasets' rows of
    parts it does not hold as `inputs` have them. -#}
{% macro delete_changed_parts(inputs) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where not ({{ in_pv_datasets('dataset_id') }})
           or (({{ is_changed_dataset('dataset_id') }})
               and (loaded_at is null or {{ part_key() }} not in ({{ held_parts_sql(inputs) }})))
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
