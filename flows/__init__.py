"""Prefect orchestration: thin tasks around the Hamilton dataflow, the warehouse load and ``dbt build``."""
