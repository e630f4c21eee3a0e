{#-
    Pairs of installations from different datasets that describe the same place.
      polygon_overlap: two polygons that intersect with a positive overlap; areas in EPSG:6933 (equal-area).
      proximity: a point, line or collection within match_max_distance_m metres of an installation of
        another dataset (0 when inside or touching a polygon); metres from a local frame at the point.
    One row per unordered pair, oriented so that dataset_id_a < dataset_id_b.

    One join per statement (macros/cross_dataset_matching.sql): this model's SQL creates the typed, empty table
    (or, in an incremental build, appends nothing); the post-hook inserts the matches of each join in its own
    statement, so DuckDB holds the build side of one join at a time (all joins in one statement needed about
    1.8 GB at benchmark scale 1 under a 1GB memory_limit; one at a time, the whole build passes at 384MB). A proximity join is generated only for the datasets
    that hold non-polygons when the model runs (one UK dataset of six here): each further dataset with points adds
    a join per other dataset.

    Incremental by pair of datasets (macros/incremental.sql): the matches of a pair change only when one of its two
    datasets does. A partial build deletes every match that involves a changed dataset (on either side) and runs
    the joins of the pairs that involve one: all pairs of a changed dataset with every other, no pair of two
    unchanged datasets. The rows of other datasets whose matches changed are found by the installations model.
-#}
{{ config(materialized='incremental', incremental_strategy='append',
          pre_hook="{{ delete_changed_datasets(['dataset_id_a', 'dataset_id_b']) }}",
          post_hook="{{ insert_cross_dataset_matches(ref('int_installations_unioned')) }}") }}

{{ cross_dataset_matches(ref('int_installations_unioned'), []) }}
