"""DuckDB extensions installed from their PyPI wheels (no network), and connections that load them: to a DuckDB file,
or to a DuckLake (a ``ducklake:`` URI, attached as ``lake`` and in use; the warehouse's side of it is
:mod:`pvdoi.warehouse.lake`)."""

from __future__ import annotations

import glob
import importlib
import os
from functools import cache

import duckdb

from pvdoi.errors import WarehouseError

LAKE = "lake"  # the name a DuckLake is attached under
# For the warehouse's writers (the loads, the record of a dbt build; dbt's in dbt_project/profiles.yml): checkpoints
# do not vacuum. The vacuum merges row groups that hold deleted or too few rows, rewriting them whole: a replaced
# dataset's neighbours at every load and model COMMIT, or, left to any later writer's checkpoint, there. Row groups
# whose rows are all deleted are still dropped (what this leaves in file size: BENCHMARKS.md, dbt_project/README.md).
NO_VACUUM = "SET max_vacuum_tasks = 0"
_WHEELS = {"spatial": "duckdb_extension_spatial", "httpfs": "duckdb_extension_httpfs",
           # the DuckLake backend (pvdoi/warehouse/lake.py) and its catalogs
           "ducklake": "duckdb_extension_ducklake", "sqlite": "duckdb_extension_sqlite",
           "postgres": "duckdb_extension_postgres",
           "aws": "duckdb_extension_aws"}  # S3 secrets from the AWS credential chain (s3_secret)


def _wheel_binary(name: str) -> str:
    module = importlib.import_module(_WHEELS[name])
    pattern = os.path.join(os.path.dirname(module.__file__), "extensions", "*", f"{name}.duckdb_extension")
    found = glob.glob(pattern)
    if not found:
        raise RuntimeError(f"the {name} extension binary is missing from the {_WHEELS[name]} wheel ({pattern})")
    return found[0]


@cache
def install_extensions(names: tuple[str, ...] = ("spatial", "httpfs")) -> None:
    """Install the extensions from their wheels into DuckDB's extension directory (idempotent)."""
    con = duckdb.connect()
    try:
        _load(con, names)
    finally:
        con.close()


def connect(path: str = ":memory:", *, extensions: tuple[str, ...] = ("spatial",), read_only: bool = False):
    """A DuckDB connection with the given extensions loaded (installed from their wheels first if need be); for a
    DuckLake URI (``ducklake:...``), an in-memory connection with the lake attached and in use."""
    if is_lake(path):
        return connect_lake(path, extensions=extensions, read_only=read_only)
    con = duckdb.connect(path, read_only=read_only)
    try:
        _load(con, extensions)
    except BaseException:
        con.close()
        raise
    return con


def is_lake(path: str) -> bool:
    """The warehouse named by ``path`` is a DuckLake URI, not a DuckDB file."""
    return str(path).startswith("ducklake:")


def catalog_file(uri: str) -> str | None:
    """The SQLite catalog file of a lake URI (None for a PostgreSQL catalog)."""
    return uri.removeprefix("ducklake:sqlite:") if uri.startswith("ducklake:sqlite:") else None


def lake_data_path(uri: str) -> str:
    """Where the lake's data files go: ``PVDOI_LAKE_DATA_PATH``, else ``files/`` beside a SQLite catalog."""
    from pvdoi.settings import get_settings  # not at import: most connections are to a file

    configured = get_settings().lake_data_path
    if configured:
        return configured if configured.endswith("/") else configured + "/"
    catalog = catalog_file(uri)
    if catalog is None:
        raise WarehouseError(f"the lake {uri!r} has no local catalog folder: set PVDOI_LAKE_DATA_PATH to a folder or "
                             "an s3:// URL for its data files")
    return os.path.join(os.path.dirname(os.path.abspath(catalog)), "files") + "/"


def connect_lake(uri: str, *, extensions: tuple[str, ...] = ("spatial",), read_only: bool = False,
                 snapshot: int | None = None):
    """An in-memory DuckDB connection with the lake attached as ``lake`` and in use (read-only as it was at
    ``snapshot`` when given)."""
    catalog = catalog_file(uri)
    if catalog is not None and not read_only:
        os.makedirs(os.path.dirname(os.path.abspath(catalog)), exist_ok=True)
    files = lake_data_path(uri)
    if "://" not in files and not read_only:
        os.makedirs(files, exist_ok=True)
    options = [f"DATA_PATH {_quote(files)}"]
    if read_only or snapshot is not None:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    con = duckdb.connect()
    try:
        for name in ("ducklake", "sqlite" if catalog is not None else "postgres", *extensions):
            load_extension(con, name)
        if files.startswith("s3://"):  # PVDOI_LAKE_S3_*, else PVDOI_S3_* (dbt's profile resolves the same)
            from pvdoi.settings import get_settings

            s3_secret(con, "pvdoi_lake", files, get_settings().s3(lake=True))
        con.execute(f"ATTACH {_quote(uri)} AS {LAKE} ({', '.join(options)})")
        con.execute(f"USE {LAKE}")
    except duckdb.Error as exc:
        con.close()
        raise WarehouseError(f"cannot attach the lake {uri!r} (data files {files}): {exc}") from None
    except BaseException:
        con.close()
        raise
    return con


def s3_secret(con, name: str, scope: str, s3) -> None:
    """A DuckDB secret ``name`` for the ``s3://`` URLs under ``scope`` (a :class:`pvdoi.settings.S3Settings`): its
    keys, or without keys the AWS credential chain (the ``aws`` extension's ``credential_chain`` provider: AWS_*
    variables, ~/.aws, the instance's role); an explicit endpoint is addressed by path."""
    load_extension(con, "httpfs")
    options = {"REGION": s3.region, "SCOPE": scope}
    if s3.host:
        options.update(ENDPOINT=s3.host, URL_STYLE="path", USE_SSL="true" if s3.use_ssl else "false")
    provider = ""
    if s3.key_id is None and s3.secret is None:
        load_extension(con, "aws")
        provider = "PROVIDER credential_chain, "
    for key, value in (("KEY_ID", s3.key_id), ("SECRET", s3.secret)):
        if value is not None:
            options[key] = value.get_secret_value()
    body = ", ".join(f"{key} {_quote(value)}" for key, value in options.items())
    try:
        con.execute(f"CREATE OR REPLACE SECRET {name} (TYPE s3, {provider}{body})")
    except duckdb.Error as exc:  # the credential chain found nothing
        raise WarehouseError(f"no S3 credentials for {scope} ({exc}); set PVDOI_S3_KEY_ID and PVDOI_S3_SECRET, or "
                             "AWS credentials (AWS_ACCESS_KEY_ID..., ~/.aws, an instance role)") from None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _load(con, names: tuple[str, ...]) -> None:
    # LOAD on the connection itself: a separate probe connection cost another LOAD (0.2 s for spatial) each time
    for name in names:
        load_extension(con, name)


def load_extension(con, name: str) -> None:
    """LOAD an extension on this connection, installed from its wheel first if DuckDB has none (a no-op when loaded)."""
    try:
        con.execute(f"LOAD {name}")
    except duckdb.Error:  # not installed in DuckDB's extension directory yet
        con.execute(f"FORCE INSTALL '{_wheel_binary(name)}'")
        con.execute(f"LOAD {name}")


def main() -> None:
    """Console entry: install every wheel-shipped extension (used by the set-up)."""
    install_extensions(tuple(_WHEELS))
    print("DuckDB extensions installed from wheels:", ", ".join(_WHEELS))


if __name__ == "__main__":
    main()
