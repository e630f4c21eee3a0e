"""DuckDB extensions installed from their PyPI wheels (no network), and connections that load them."""

from __future__ import annotations

import glob
import importlib
import os
from functools import cache

import duckdb

_WHEELS = {"spatial": "duckdb_extension_spatial", "httpfs": "duckdb_extension_httpfs"}


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
    """A DuckDB connection with the given extensions loaded (installed from their wheels first if need be)."""
    con = duckdb.connect(path, read_only=read_only)
    try:
        _load(con, extensions)
    except BaseException:
        con.close()
        raise
    return con


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
