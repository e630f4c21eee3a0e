-- An installation is mapped by more than one dataset exactly when it takes part in a cross-dataset match.
select installation_key, mapped_by_n_datasets, n_cross_dataset_matches
from {{ ref('installations') }}
where (mapped_by_n_datasets > 1) <> (n_cross_dataset_matches > 0)
