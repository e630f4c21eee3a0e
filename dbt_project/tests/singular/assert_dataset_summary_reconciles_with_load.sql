-- Every dataset in the warehouse is registered in raw_data.datasets, and holds as many installations
-- as the load says it wrote.
select
    dataset_id,
    n_installations,
    features_written,
    is_registered
from {{ ref('dataset_summary') }}
where not is_registered
   or not coalesce(is_count_reconciled, false)
