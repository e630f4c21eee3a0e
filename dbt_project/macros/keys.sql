{#- The surrogate key of an installation: md5 of dataset_id || feature_uid (stable across loads). -#}
{% macro installation_key(dataset_id, feature_uid) -%}
    md5({{ dataset_id }} || {{ feature_uid }})
{%- endmacro %}
