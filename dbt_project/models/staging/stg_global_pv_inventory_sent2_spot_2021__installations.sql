{% set dataset_columns %}
-- dataset-specific attributes
upper(source_attributes ->> 'confidence') as confidence,
source_attributes ->> 'iso-3166-1' as iso_3166_1,
source_attributes ->> 'iso-3166-2' as iso_3166_2,
case
    when source_file ilike 'predicted%' then 'predicted'
    when source_file ilike 'trn%' then 'train'
    when source_file ilike 'cv%' then 'validation'
    when source_file ilike 'test%' then 'test'
end as label_set
{% endset -%}

{{ stg_installations('global_pv_inventory_sent2_spot_2021', dataset_columns) }}
