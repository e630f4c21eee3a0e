"""A PostgreSQL advisory lock held on a session of its own: the dbt builds of a lake whose catalog is PostgreSQL take
turns, from any number of machines, with no lock server but the catalog's own database.

``pg_advisory_lock`` is held by the session that took it until it unlocks or the session ends: a holder that is killed
releases it at once (its connection closes), one whose machine vanishes when PostgreSQL drops the dead connection
(``tcp_keepalives_*``); no lock file is left behind.
The session is asyncpg's (already installed with Prefect, whose server speaks PostgreSQL through it) on a private
event loop; it only waits for the lock and then idles, holding no transaction (nothing held back from VACUUM).

The conninfo is the lake's: libpq ``key=value`` pairs (``dbname=pvdoi host=db.internal user=pvdoi``; unset keys from
``PGHOST``, ``PGUSER``, ``PGPASSWORD``... as libpq does) or a ``postgresql://`` URI.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from contextlib import contextmanager

from pvdoi.errors import WarehouseError

log = logging.getLogger("pvdoi.warehouse")
# libpq keyword -> asyncpg.connect argument
_KEYWORDS = {"host": "host", "hostaddr": "host", "port": "port", "dbname": "database", "user": "user",
             "password": "password", "passfile": "passfile", "sslmode": "ssl", "connect_timeout": "timeout"}
_PAIR = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']+))")


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for ``name`` (advisory locks are per database: one key per lake's catalog)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def connect_kwargs(conninfo: str) -> dict:
    """asyncpg's ``connect`` arguments for a libpq conninfo (``key=value`` pairs, values optionally single-quoted
    with ``\\'`` and ``\\\\`` escapes) or a URI; WarehouseError naming a keyword asyncpg cannot take."""
    text = conninfo.strip()
    if text.startswith(("postgresql://", "postgres://")):
        return {"dsn": text}
    kwargs, at = {}, 0
    while text[at:].strip():
        match = _PAIR.match(text, at)
        if not match:
            raise WarehouseError(f"cannot read the PostgreSQL conninfo {conninfo!r} at {text[at:]!r}")
        key, quoted, bare = match.groups()
        if key not in _KEYWORDS:
            raise WarehouseError(f"the PostgreSQL conninfo keyword {key!r} is not supported for the dbt build lock "
                                 f"(supported: {', '.join(sorted(_KEYWORDS))})")
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        kwargs[_KEYWORDS[key]] = float(value) if key == "connect_timeout" else value
        at = match.end()
    return kwargs


@contextmanager
def advisory_lock(conninfo: str, name: str, *, timeout_s: float = 600.0):
    """Hold the session-level advisory lock ``name`` in the database of ``conninfo`` while the block runs; wait up
    to ``timeout_s`` for another session to release it, then fail with WarehouseError naming the holder."""
    import asyncpg

    key = lock_key(name)
    with asyncio.Runner() as runner:
        try:
            con = runner.run(asyncpg.connect(**connect_kwargs(conninfo)))
        except (OSError, asyncpg.PostgresError) as exc:
            raise WarehouseError(f"cannot connect to the lake's PostgreSQL catalog ({conninfo}) for the {name} "
                                 f"lock: {exc}") from None
        try:
            runner.run(_acquire(con, key, name, timeout_s))
            yield
        finally:
            runner.run(con.close())  # the session ends: PostgreSQL releases its advisory locks


async def _acquire(con, key: int, name: str, timeout_s: float) -> None:
    import asyncpg

    if await con.fetchval("SELECT pg_try_advisory_lock($1)", key):
        return
    holder = await con.fetchval("SELECT string_agg(l.pid::text || coalesce(' (' || a.client_addr::text || ')', ''), "
                                "', ') FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid) "
                                "WHERE l.locktype = 'advisory' AND l.granted "
                                "AND (l.classid::bigint << 32) | l.objid::bigint = $1", key)
    log.info("%s: waiting for the lock held by PostgreSQL session %s", name, holder or "(another run)")
    await con.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
    try:
        await con.execute("SELECT pg_advisory_lock($1)", key)
    except asyncpg.LockNotAvailableError:
        raise WarehouseError(f"{name}: another run has held the lock (PostgreSQL advisory lock {key}, session "
                             f"{holder or 'unknown'}) for more than {timeout_s:.0f} s; try again when it "
                             "finishes") from None
    finally:
        await con.execute("RESET lock_timeout")
