-- The union holds exactly the rows of raw_data.doi_pv_features of the manifest's datasets: none lost, none duplicated.
with

unioned as (
    select count(*) as n from {{ ref('int_installations_unioned') }}
),

raw as (
    select count(*) as n from {{ source('raw_data', 'doi_pv_features') }}
    where {{ in_pv_datasets('dataset_id') }}
)

select unioned.n as unioned_rows, raw.n as raw_rows
from unioned
cross join raw
where unioned.n <> raw.n
