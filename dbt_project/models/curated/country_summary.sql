{#- One row per country and dataset: installations, area and capacity, from the Overture assignment.
    Installations with no country (far offshore, or no division area loaded) form a row with a null country. -#}
with

installations as (

    select * from {{ ref('installations') }}

),

per_country as (

    select
        country_code,
        dataset_id,
        min(country_name) as country_name,
        count(*) as n_installations,
        count(*) filter (where country_assignment = 'within_land') as n_within_land,
        count(*) filter (where country_assignment = 'within_territorial') as n_within_territorial,
        count(*) filter (where country_assignment = 'nearest') as n_nearest,
        count(distinct region_code) as n_regions,
        sum(area_m2) as total_area_m2,
        sum(best_area_m2) as total_best_area_m2,
        sum(capacity_mw) as total_capacity_mw,
        sum(best_capacity_mw) as total_best_capacity_mw,
        count(capacity_mw) as n_with_capacity
    from installations
    group by country_code, dataset_id

),

final as (

    select
        coalesce(country_code, 'unassigned') || '/' || dataset_id as country_dataset_key,
        country_code,
        country_name,
        dataset_id,
        country_code is not null as is_assigned,
        n_installations,
        n_within_land,
        n_within_territorial,
        n_nearest,
        n_regions,
        total_area_m2,
        total_best_area_m2,
        total_capacity_mw,
        total_best_capacity_mw,
        n_with_capacity
    from per_country

)

select * from final
