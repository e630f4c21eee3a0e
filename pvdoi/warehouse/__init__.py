"""The DuckDB spatial warehouse: its connection and schema, each dataset's load, the Overture division areas' load."""

from __future__ import annotations

from pvdoi.warehouse.connection import DDL, RTREE, RTREE_DDL, warehouse, warehouse_lock
from pvdoi.warehouse.datasets import load_dataset, load_datasets
from pvdoi.warehouse.divisions import ensure_division_areas_table, installations_bbox, load_division_areas

__all__ = ["DDL", "RTREE", "RTREE_DDL", "ensure_division_areas_table", "installations_bbox", "load_dataset",
           "load_datasets", "load_division_areas", "warehouse", "warehouse_lock"]
