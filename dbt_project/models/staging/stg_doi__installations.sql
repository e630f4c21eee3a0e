{#- Every dataset of the manifest without a dbt_model of its own: the common columns and each dataset's declared
    attributes (macro stg_installations, from the var pv_datasets). -#}
{{ stg_installations(generic_pv_datasets()) }}
