{#- Analysis-ready installations: every feature of every dataset, with the datasets that also map it,
    best-available area and capacity, and its country and region (Overture Maps divisions).
    Incremental (macros/incremental.sql): the pre-hook deletes the rows that can have changed (those of the changed
    datasets, of installations in a match with one, now or before, and of installations matched with a dataset no
    longer in the manifest: macro delete_rebuilt_installations); the model then inserts every installation missing
    from the table, in place (macros/append_in_place.sql).
    The unioned installations and the matches are read where they are used (`not materialized`): a CTE named more
    than once is otherwise materialized whole, every column and geometry of every installation copied before the
    joins (2 to 3 s of a partial build's 4 at benchmark scale 1). -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_rebuilt_installations(ref('int_installations_cross_dataset_matched')) }}") }}
with

installations as not materialized (

    select * from {{ ref('int_installations_unioned') }}

),

matches as not materialized (

    select * from {{ ref('int_installations_cross_dataset_matched') }}

),

divisions as (

    select * from {{ ref('int_installations_divisions_assigned') }}

),

-- each match seen from both of its installations
match_edges as (

    select
        installation_key_a as installation_key,
        installation_key_b as matched_installation_key,
        dataset_id_b as matched_dataset_id,
        intersection_over_union
    from matches

    union all

    select
        installation_key_b as installation_key,
        installation_key_a as matched_installation_key,
        dataset_id_a as matched_dataset_id,
        intersection_over_union
    from matches

),

match_summary as (

    select
        match_edges.installation_key,
        count(*) as n_cross_dataset_matches,
        count(distinct match_edges.matched_dataset_id) as n_other_datasets,
        list(distinct match_edges.matched_dataset_id order by match_edges.matched_dataset_id) as matched_dataset_ids,
        -- only near-identical polygons (IoU) lend their capacity
        median(matched.capacity_mw) filter (
            where match_edges.intersection_over_union >= {{ var('capacity_borrow_min_iou') }}
        ) as matched_capacity_mw
    from match_edges
    inner join installations as matched
        on matched.installation_key = match_edges.matched_installation_key
    group by match_edges.installation_key

),

final as (

    select
        installations.*,

        case
            when installations.geometry_class = 'polygon' and installations.area_m2 > 0 then installations.area_m2
            else installations.source_area_m2
        end as best_area_m2,
        case
            when installations.geometry_class = 'polygon' and installations.area_m2 > 0 then 'geometry'
            when installations.source_area_m2 is not null then 'published'
        end as best_area_basis,

        coalesce(installations.capacity_mw, match_summary.matched_capacity_mw) as best_capacity_mw,
        case
            when installations.capacity_mw is not null then 'published'
            when match_summary.matched_capacity_mw is not null then 'matched_installation'
        end as best_capacity_basis,

        1 + coalesce(match_summary.n_other_datasets, 0) as mapped_by_n_datasets,
        coalesce(match_summary.matched_dataset_ids, []) as matched_dataset_ids,
        coalesce(match_summary.n_cross_dataset_matches, 0) as n_cross_dataset_matches,

        divisions.country_code,
        divisions.country_name,
        divisions.country_assignment,
        divisions.country_distance_km,
        divisions.region_code,
        divisions.region_name,
        divisions.region_assignment,
        divisions.region_distance_km

    from installations
    left join match_summary
        on match_summary.installation_key = installations.installation_key
    left join divisions
        on divisions.installation_key = installations.installation_key
    {%- if is_incremental() %}
    -- those the pre-hook deleted (all of them when every dataset counts as changed)
    where installations.installation_key not in (select installation_key from {{ this }})
    {%- endif %}

)

select * from final
