"""Settings from the environment (``PVDOI_*``), validated by pydantic-settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    # an s3:// data path: the S3-compatible store (host:port or http(s)://host:port; None = AWS) and its keys; each
    # one unset falls back to its PVDOI_S3_* below (see s3())
    lake_s3_endpoint: str | None = None
    lake_s3_region: str | None = None
    lake_s3_key_id: SecretStr | None = None
    lake_s3_secret: SecretStr | None = None

    # Shared storage (pvdoi/objectstore.py): the download store and the GeoParquet outputs under a URL that several
    # machines share (s3://bucket/prefix); unset: <data_dir>/downloads and <data_dir>/geoparquet only, as on one machine
    store_url: str | None = None
    output_url: str | None = None
    # their S3-compatible store (host:port or http(s)://host:port; None = AWS) and keys (None = the AWS credential
    # chain: AWS_* variables, ~/.aws, the instance's role); the lake's data path uses them too (lake_s3_* above)
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_key_id: SecretStr | None = None
    s3_secret: SecretStr | None = None

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
    # ... into a DuckLake: a dataset's load is one transaction whose new rows stay pinned until its commit (the UK
    # dataset's 265,000 rows failed to pin a block at 256MB), so the lake's loads get more
    lake_memory_limit: str = "1GB"

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

    def s3(self, *, lake: bool = False) -> S3Settings:
        """How to reach the shared storage's bucket (``PVDOI_S3_*``), or with ``lake`` the lake's data path's: each
        ``PVDOI_LAKE_S3_*`` that is set, the shared one for the others."""
        own = (self.lake_s3_endpoint, self.lake_s3_region, self.lake_s3_key_id, self.lake_s3_secret) if lake else \
            (None,) * 4
        shared = (self.s3_endpoint, self.s3_region, self.s3_key_id, self.s3_secret)
        return S3Settings(*(mine if mine is not None else theirs for mine, theirs in zip(own, shared)))

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


@dataclass(frozen=True)
class S3Settings:
    """An S3-compatible store: its endpoint (``host:port`` or ``http(s)://host:port``; None = AWS), region and keys
    (None = the AWS credential chain)."""

    endpoint: str | None
    region: str
    key_id: SecretStr | None
    secret: SecretStr | None

    @property
    def host(self) -> str | None:
        """The endpoint without its scheme (None = AWS)."""
        return self.endpoint.rpartition("://")[2].rstrip("/") if self.endpoint else None

    @property
    def use_ssl(self) -> bool:
        """HTTPS, unless the endpoint says ``http://``."""
        return not (self.endpoint or "").startswith("http://")


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
