"""Prefect's default SQLite database, where a temporary server of ``flows.prefect_api`` keeps its runs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path


class DefaultDatabase:
    """Prefect's default SQLite database (``$PREFECT_HOME/prefect.db``) and whether its migrations are all applied.

    A server checks its migrations at every start (alembic loads every revision script: about a second here,
    a quarter of a temporary server's start-up). After a start that ran them, the database's revision is noted
    beside it with the Prefect version; a later start of the same Prefect on a database still at that revision
    skips the check (``PREFECT_API_DATABASE_MIGRATE_ON_START``). Any other case runs it: no note, another
    Prefect version, a new or replaced database, or settings that name another database (those are known only
    once Prefect's settings are imported, after the server was launched: it is then launched again).
    """

    def __init__(self) -> None:
        home = Path(os.path.expanduser(os.environ.get("PREFECT_HOME", "~/.prefect")))
        home.mkdir(parents=True, exist_ok=True)  # a new home whose parents do not exist yet
        self.path = (home / "prefect.db").resolve()
        self.note = home / "pvdoi-migrated.json"

    def _state(self) -> dict | None:
        try:
            with closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)) as con:
                revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            return None
        return revision and {"prefect": importlib.metadata.version("prefect"), "database": str(self.path),
                             "revision": revision[0]}

    def is_current(self) -> bool:
        if any(os.environ.get(f"PREFECT_{part}_DATABASE_CONNECTION_URL") for part in ("API", "SERVER")):
            return False  # another database, known without importing Prefect (profiles are checked after launch)
        try:
            noted = json.loads(self.note.read_text())
        except (OSError, ValueError):
            return False
        state = self._state()
        return state is not None and noted == state

    def is_the_configured_one(self) -> bool:
        from prefect.settings import get_current_settings

        url = get_current_settings().server.database.connection_url
        url = url.get_secret_value() if url is not None else ""
        return url.startswith("sqlite") and Path(url.split(":///", 1)[-1]).resolve() == self.path

    def move_aside(self) -> Path:
        """Rename the database (and its WAL files) to ``prefect.db.broken-<time>``; the new name."""
        moved = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{self.path}{suffix}").exists():
                os.replace(f"{self.path}{suffix}", f"{moved}{suffix}")
        self.note.unlink(missing_ok=True)
        return moved

    def record_current(self) -> None:
        """Note the database's revision (a home that cannot be written to only means the check runs next time)."""
        state = self._state()
        if state:
            tmp = self.note.with_name(f".{self.note.name}.{os.getpid()}")
            try:
                tmp.write_text(json.dumps(state))
                os.replace(tmp, self.note)
            except OSError:
                tmp.unlink(missing_ok=True)
