{% set dataset_columns %}
-- dataset-specific attributes
try_cast(try_cast(source_attributes ->> 'osm_id' as double) as bigint) as osm_id,
source_attributes ->> 'osm_objtype' as osm_objtype,
try_cast(try_cast(source_attributes ->> 'repd_id' as double) as bigint) as repd_id,
source_attributes ->> 'repd_site_name' as repd_site_name,
source_attributes ->> 'repd_status' as repd_status,
source_attributes ->> 'located' as located,
try_cast(try_cast(source_attributes ->> 'num_modules' as double) as bigint) as num_modules
{% endset -%}

{{ stg_installations('uk_crowdsourced_pv_2020', dataset_columns) }}
