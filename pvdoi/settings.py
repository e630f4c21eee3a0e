"""Settings from the environment (``PVDOI_*``), validated by pydantic-settings."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pvdoi import DEFAULT_MANIFEST


class Settings(BaseSettings):
    """Where repositories live, where outputs go and how hard to try."""

    model_config = SettingsConfigDict(env_prefix="PVDOI_", extra="ignore")

    zenodo_url: str = "https://zenodo.org"
    figshare_api_url: str = "https://api.figshare.com"
    github_api_url: str = "https://api.github.com"
    github_raw_url: str = "https://raw.githubusercontent.com"
    doi_resolver_url: str = "https://doi.org"  # GET {this}/{doi} answers 302 to the record's landing page
    github_token: SecretStr | None = None
    zenodo_token: SecretStr | None = None
    figshare_token: SecretStr | None = None
    # names of Prefect Secret blocks to read a token from when its variable above is not set
    github_token_block: str | None = None
    zenodo_token_block: str | None = None
    figshare_token_block: str | None = None

    manifest_path: str = str(DEFAULT_MANIFEST)
    data_dir: str = "data"
    cache_path: str = ".hamilton_cache"
    database_path: str | None = None  # a DuckDB file, or a DuckLake URI (ducklake:sqlite:... / ducklake:postgres:...)

    # The warehouse backend: one DuckDB file (default), or a DuckLake (pvdoi/warehouse/lake.py): a catalog (a SQLite
    # file for several processes on one machine, `postgres:<libpq conninfo>` for several machines) and its data
    # files in a folder or an s3:// URL (default: files/ beside a SQLite catalog; required with Postgres).
    warehouse_backend: Literal["duckdb", "ducklake"] = "duckdb"
    lake_catalog: str | None = None  # default <data_dir>/lake/catalog.sqlite
    lake_data_path: str | None = None
    # an s3:// data path: the S3-compatible store (host:port or http(s)://host:port; None = AWS) and its keys
    lake_s3_endpoint: str | None = None
    lake_s3_region: str = "us-east-1"
    lake_s3_key_id: SecretStr | None = None
    lake_s3_secret: SecretStr | None = None

    max_mb: float = 2048.0
    max_extract_ratio: float = 200.0
    max_extract_mb: float = 8192.0
    http_retries: int = 5
    http_backoff_factor: float = 0.5
    http_backoff_max: float = 30.0
    http_timeout_s: float = 60.0
    max_workers: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    dask_address: str | None = None  # the dataset tasks on this Dask scheduler, or local[:N] (flows/dask_runner.py)
    warehouse_memory_limit: str = "64MB"  # DuckDB memory_limit of the loading connection (it streams)

    # Overture Maps divisions (country and region of every installation). The release is pinned: moving to a
    # new one (listed at https://stac.overturemaps.org) is a deliberate change and a new fetch. 2026-06-17.0
    # (schema 1.17) is a recent release whose division_area files are known to carry every column read here,
    # is_land / is_territorial included; Overture keeps past releases in the bucket. `{release}` in the base URL
    # is replaced by it; the base URL may also be a local directory or a bucket on another S3 endpoint.
    overture_release: str = "2026-06-17.0"
    overture_base_url: str = "s3://overturemaps-us-west-2/release/{release}/theme=divisions/type=division_area/"
    overture_s3_endpoint: str | None = None  # host:port or http(s)://host:port; None = AWS
    overture_s3_region: str = "us-west-2"
    overture_s3_use_ssl: bool | None = None  # None: from the endpoint's scheme (https unless http://)
    overture_s3_url_style: Literal["vhost", "path"] | None = None  # None: vhost on AWS, path elsewhere
    overture_s3_key_id: SecretStr | None = None  # None: unsigned requests (the public bucket needs none)
    overture_s3_secret: SecretStr | None = None
    overture_fallback_km: float = Field(default=25.0, gt=0, le=200)  # nearest-division fallback (coast, offshore)

    @property
    def repository_urls(self) -> dict[str, str]:
        """Base URLs of the repository APIs, trailing slashes removed."""
        return {
            "zenodo": self.zenodo_url.rstrip("/"),
            "figshare": self.figshare_api_url.rstrip("/"),
            "github_api": self.github_api_url.rstrip("/"),
            "github_raw": self.github_raw_url.rstrip("/"),
        }

    def warehouse_path(self, data_dir: str | None = None) -> str:
        """The warehouse: ``PVDOI_DATABASE_PATH``, else with the ``ducklake`` backend the lake's URI
        (``ducklake:sqlite:<catalog>`` or ``ducklake:postgres:<conninfo>``), else ``eo_pv_data.duckdb`` in
        ``data_dir`` (default: the settings' data folder)."""
        if self.database_path:
            return self.database_path
        folder = data_dir or self.data_dir
        if self.warehouse_backend == "ducklake":
            catalog = self.lake_catalog or os.path.join(folder, "lake", "catalog.sqlite")
            return "ducklake:" + (catalog if catalog.startswith("postgres:") else "sqlite:" + os.path.abspath(catalog))
        return os.path.join(folder, "eo_pv_data.duckdb")


def token(settings: Settings, repository: str) -> str | None:
    """The repository's token: from ``PVDOI_<REPO>_TOKEN``, else from the named Prefect Secret block."""
    value: SecretStr | None = getattr(settings, f"{repository}_token")
    if value is not None:
        return value.get_secret_value()
    block = getattr(settings, f"{repository}_token_block")
    if block:
        from prefect.blocks.system import Secret

        return Secret.load(block).get()
    return None


def get_settings() -> Settings:
    """Fresh settings read from the current environment."""
    return Settings()
