{% set dataset_columns %}
-- dataset-specific attributes
source_attributes ->> 'city' as city,
source_attributes ->> 'image_name' as image_name,
try_cast(source_attributes ->> 'jaccard_index' as double) as jaccard_index
{% endset -%}

{{ stg_installations('usa_cali_usgs_pv_2016', dataset_columns) }}
