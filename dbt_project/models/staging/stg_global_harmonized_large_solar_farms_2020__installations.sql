{% set dataset_columns %}
-- dataset-specific attributes (areas published in km²)
upper(source_attributes ->> 'GID_0') as country_iso3,
try_cast(try_cast(source_attributes ->> 'panels' as double) as bigint) as panel_count,
try_cast(source_attributes ->> 'landscape.area' as double) * 1e6 as landscape_area_m2,
try_cast(source_attributes ->> 'water' as double) = 1 as is_water,
try_cast(source_attributes ->> 'urban' as double) = 1 as is_urban
{% endset -%}

{{ stg_installations('global_harmonized_large_solar_farms_2020', dataset_columns) }}
