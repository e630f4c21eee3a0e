-- The shape metrics measure every polygonal installation, and nothing else.
select
    installations.installation_key,
    installations.geometry_class,
    metrics.installation_key is not null as has_metrics
from {{ ref('installations') }} as installations
full outer join {{ ref('installation_shape_metrics') }} as metrics
    on metrics.installation_key = installations.installation_key
where (installations.geometry_class = 'polygon') is distinct from (metrics.installation_key is not null)
