{% set dataset_columns %}
-- dataset-specific attributes
source_attributes ->> 'State' as state_name
{% endset -%}

{{ stg_installations('ind_pv_solar_farms_2022', dataset_columns) }}
