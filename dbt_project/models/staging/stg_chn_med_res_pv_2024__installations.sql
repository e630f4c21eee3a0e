{% set dataset_columns %}
-- dataset-specific attributes (from the shapefile name, e.g. PV_Train_2020.shp)
lower(nullif(regexp_extract(source_file, '(?i)PV_(Train|Test)_(\d{4})', 1), '')) as label_set,
try_cast(nullif(regexp_extract(source_file, '(?i)PV_(Train|Test)_(\d{4})', 2), '') as integer) as label_year
{% endset -%}

{{ stg_installations('chn_med_res_pv_2024', dataset_columns) }}
