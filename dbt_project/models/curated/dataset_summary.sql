{#- One row per dataset of the manifest: the load's provenance and counts next to what the warehouse holds. -#}
with

datasets as (

    select * from {{ source('raw_data', 'datasets') }}
    where {{ in_pv_datasets('dataset_id') }}

),

installations as (

    select * from {{ ref('installations') }}

),

per_dataset as (

    select
        dataset_id,
        count(*) as n_installations,
        count(*) filter (where geometry_type = 'Point') as n_point,
        count(*) filter (where geometry_type = 'MultiPoint') as n_multipoint,
        count(*) filter (where geometry_type = 'LineString') as n_linestring,
        count(*) filter (where geometry_type = 'MultiLineString') as n_multilinestring,
        count(*) filter (where geometry_type = 'Polygon') as n_polygon,
        count(*) filter (where geometry_type = 'MultiPolygon') as n_multipolygon,
        count(*) filter (where geometry_type = 'GeometryCollection') as n_geometrycollection,
        count(*) filter (where not is_geometry_valid) as n_invalid_geometries,
        sum(area_m2) as total_area_m2,
        sum(source_area_m2) as total_source_area_m2,
        sum(capacity_mw) as total_capacity_mw,
        count(capacity_mw) as n_with_capacity,
        count(install_date) as n_with_install_date,
        count(*) filter (where mapped_by_n_datasets > 1) as n_mapped_by_other_datasets
    from installations
    group by dataset_id

),

final as (

    select
        coalesce(datasets.dataset_id, per_dataset.dataset_id) as dataset_id,
        datasets.doi,
        datasets.title,
        datasets.license,
        datasets.citation,
        datasets.year,
        datasets.publisher,
        datasets.repository,
        datasets.record_id,
        datasets.record_version,

        coalesce(per_dataset.n_installations, 0) as n_installations,
        coalesce(per_dataset.n_point, 0) as n_point,
        coalesce(per_dataset.n_multipoint, 0) as n_multipoint,
        coalesce(per_dataset.n_linestring, 0) as n_linestring,
        coalesce(per_dataset.n_multilinestring, 0) as n_multilinestring,
        coalesce(per_dataset.n_polygon, 0) as n_polygon,
        coalesce(per_dataset.n_multipolygon, 0) as n_multipolygon,
        coalesce(per_dataset.n_geometrycollection, 0) as n_geometrycollection,
        coalesce(per_dataset.n_invalid_geometries, 0) as n_invalid_geometries,
        coalesce(per_dataset.total_area_m2, 0) as total_area_m2,
        per_dataset.total_source_area_m2,
        per_dataset.total_capacity_mw,
        coalesce(per_dataset.n_with_capacity, 0) as n_with_capacity,
        coalesce(per_dataset.n_with_install_date, 0) as n_with_install_date,
        coalesce(per_dataset.n_mapped_by_other_datasets, 0) as n_mapped_by_other_datasets,

        datasets.features_read,
        datasets.features_written,
        datasets.expected_count,
        coalesce(per_dataset.n_installations, 0) = datasets.features_written as is_count_reconciled,
        coalesce(per_dataset.n_installations, 0) - datasets.expected_count as difference_from_expected_count,
        datasets.dataset_id is not null as is_registered,
        datasets.last_loaded_at

    from datasets
    full outer join per_dataset
        on per_dataset.dataset_id = datasets.dataset_id

)

select * from final
