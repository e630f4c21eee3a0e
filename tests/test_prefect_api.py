"""The temporary Prefect server of a command-line run: it skips the migration check only on a database it migrated."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

# One run of a command-line process: the temporary server (each launch's `migrate` recorded), and a flow run on it,
# which fails if the server's database lacks Prefect's tables; its heartbeat interval is printed too.
SCRIPT = textwrap.dedent("""
    import gc, json, sys
    import flows.prefect_api as api

    launches = []
    start = api._start_server
    api._start_server = lambda port, *, migrate: launches.append(migrate) or start(port, migrate=migrate)
    with api.prefect_api():
        from prefect import flow

        from prefect.settings import get_current_settings

        @flow
        def heartbeat_frequency():
            return get_current_settings().flows.heartbeat_frequency

        print("heartbeat", heartbeat_frequency())
        print("collector", gc.isenabled(), gc.get_threshold())  # as it was, once both processes imported
    print(json.dumps(launches))
""")


def _run(home: Path, **env: str) -> list[bool]:
    env = {**os.environ, "PREFECT_HOME": str(home), **env}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "heartbeat None" in done.stdout  # a temporary server stops with the run: nothing to watch heartbeats
    assert "collector True (700, 10, 10)" in done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


LAUNCHES = textwrap.dedent("""
    import atexit, sys
    import flows.prefect_api as api

    launched = []
    start = api._start_server
    api._start_server = lambda port, *, migrate: launched.append(
        (start(port, migrate=migrate), "typer" in sys.modules, "prefect" in sys.modules)) or launched[-1][0]
    atexit.register(lambda: print("launched", [(imported, server.poll() is not None)
                                               for server, *imported in launched]))  # runs last: after the CLI's
    sys.argv = ["pvdoi", *sys.argv[1:]]
    import flows.cli

    flows.cli.main()
""")


@pytest.mark.parametrize("args", [["run", "not_a_dataset"], ["run", "--no-such-option"]], ids=["run", "bad-option"])
def test_pvdoi_run_launches_its_server_before_its_own_imports_and_stops_it(tmp_path, args):
    """`pvdoi run` launches the temporary server before the command line's modules import (a quarter of a second)
    and Prefect's (seconds): the server boots meanwhile; the run uses that one, and it is stopped even when
    nothing used it (an option the command refuses)."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", LAUNCHES, *args, "--data-dir", str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == (1 if args[1] == "not_a_dataset" else 2), done.stderr[-3000:]
    assert "launched [([False, False], True)]" in done.stdout, done.stdout + done.stderr[-3000:]


def test_migrations_are_checked_until_noted_and_again_when_the_database_changes(tmp_path):
    home = tmp_path / "home"
    assert _run(home) == [True]  # a new database: migrated, and its revision noted
    note = json.loads((home / "pvdoi-migrated.json").read_text())
    assert note["database"] == str((home / "prefect.db").resolve()) and note["revision"]
    assert _run(home) == [False]  # the same database at the same revision: no check

    (home / "prefect.db").unlink()  # a replaced (here: missing) database is migrated again before use
    assert _run(home) == [True]

    noted = json.loads((home / "pvdoi-migrated.json").read_text())
    (home / "pvdoi-migrated.json").write_text(json.dumps({**noted, "prefect": "0.0.0"}))  # another Prefect
    assert _run(home) == [True]


def test_settings_naming_another_database_launch_the_server_with_the_check(tmp_path):
    home = tmp_path / "home"
    assert _run(home) == [True]
    other, profiled = tmp_path / "other.db", tmp_path / "profiled.db"
    # the note matches the default database, but the settings name another one (new, without tables): in the
    # environment, seen before the launch; in the active profile, seen once Prefect's settings are read
    assert _run(home, PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{other}") == [True]
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'active = "other"\n[profiles.other]\n'
                        f'PREFECT_API_DATABASE_CONNECTION_URL = "sqlite+aiosqlite:///{profiled}"\n')
    assert _run(home, PREFECT_PROFILES_PATH=str(profiles)) == [False, True]
    assert other.exists() and profiled.exists()
    assert _run(home) == [False]  # the default database's note is untouched


def test_a_note_of_nothing_never_matches_a_database_without_prefects_tables(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "pvdoi-migrated.json").write_text("null")  # what _state() gives for a database without tables
    (home / "prefect.db").write_bytes(b"")  # an empty SQLite file: no alembic_version
    assert _run(home) == [True]


def test_a_note_that_cannot_be_written_only_means_the_check_runs_again(tmp_path):
    home = tmp_path / "home"
    (home / "pvdoi-migrated.json").mkdir(parents=True)  # neither readable nor replaceable as a file
    assert _run(home) == [True]
    assert _run(home) == [True]
    assert not [p for p in home.iterdir() if p.name.startswith(".pvdoi-migrated")]  # no temporary file left


def _run_once(workdir, home) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "PREFECT_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "flows.cli", "run", "ind_pv_solar_farms_2022", "--no-dbt",
                           "--data-dir", str(workdir / "data"), "--cache-path", str(workdir / "cache")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _half_migrated(db: Path) -> str:
    """Put the database back to the revision before the newest migration that adds a column, as a run killed after
    that migration's DDL but before its revision was recorded leaves it: migrating again fails (duplicate column)."""
    import prefect.server.database as database

    versions = Path(database.__file__).parent / "_migrations" / "versions" / "sqlite"
    adding = sorted(p for p in versions.glob("*.py") if "add_column" in p.read_text())[-1]
    down = re.search(r'down_revision\s*=\s*"(\w+)"', adding.read_text()).group(1)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = ?", [down])
    return adding.name


@pytest.mark.parametrize("damage", ["half-migrated", "not a database"])
def test_a_damaged_prefect_database_is_moved_aside_and_the_run_goes_on(repo, workdir, damage):
    home = workdir / "home"
    assert _run_once(workdir, home).returncode == 0
    db = home / "prefect.db"
    if damage == "half-migrated":
        _half_migrated(db)
    else:
        db.write_bytes(b"this is not a database" * 1000)
    out = _run_once(workdir, home)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "moved it to prefect.db.broken-" in out.stderr and "Traceback" not in out.stderr
    assert list(home.glob("prefect.db.broken-*")) and db.exists()
