"""dbt builds on a lake with a PostgreSQL catalog take turns (pvdoi/warehouse/pglock.py): a PostgreSQL advisory lock
held on a session of its own, on a real server (pgserver); a second build waits for the first, gives up after its
timeout naming the lock, and gets the lock once a killed holder's session is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pvdoi.errors import WarehouseError
from pvdoi.warehouse import warehouse_lock
from pvdoi.warehouse.pglock import connect_kwargs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLDER = """
import sys, time
from pvdoi.warehouse import warehouse_lock
with warehouse_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_build_waits_until_the_first_releases_the_lock(postgres):
    uri = f"ducklake:postgres:{postgres}"
    first_held, second_held, release = threading.Event(), threading.Event(), threading.Event()
    times: dict[str, float] = {}

    def first():
        with warehouse_lock(uri):
            first_held.set()
            release.wait(60)
            times["released"] = time.monotonic()

    def second():
        with warehouse_lock(uri, lock_timeout_s=60):
            times["acquired"] = time.monotonic()
            second_held.set()

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert first_held.wait(30)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    assert not second_held.wait(2)  # still waiting while the first holds it
    release.set()
    for thread in threads:
        thread.join(60)
    assert second_held.is_set() and times["acquired"] >= times["released"]


def test_a_second_build_gives_up_after_its_timeout_naming_the_lock(postgres):
    uri = f"ducklake:postgres:{postgres}"
    with warehouse_lock(uri):
        started = time.monotonic()
        with pytest.raises(WarehouseError, match=r"dbt build: another run has held the lock \(PostgreSQL advisory "
                                                 r"lock -?\d+, session \d+\) for more than 1 s"):
            with warehouse_lock(uri, lock_timeout_s=1):
                pass
        assert time.monotonic() - started < 30
    with warehouse_lock(uri, lock_timeout_s=1):  # released with the block
        pass


def test_the_lock_of_a_killed_holder_is_released_with_its_session(postgres):
    uri = f"ducklake:postgres:{postgres}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, uri], env={**os.environ, "PYTHONPATH": ROOT},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        with pytest.raises(WarehouseError, match="another run has held the lock"):  # held by the other process
            with warehouse_lock(uri, lock_timeout_s=1):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        with warehouse_lock(uri, lock_timeout_s=30):  # PostgreSQL ended the dead process's session and its lock
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_a_lake_conninfo_becomes_the_lock_session_arguments():
    assert connect_kwargs("dbname=pvdoi host=db.internal port=5433 user=pvdoi") == {
        "database": "pvdoi", "host": "db.internal", "port": "5433", "user": "pvdoi"}
    assert connect_kwargs("host = /tmp/pg connect_timeout=5") == {"host": "/tmp/pg", "timeout": 5.0}
    assert connect_kwargs(r"password='a b\'c\\d' sslmode=require") == {"password": r"a b'c\d", "ssl": "require"}
    assert connect_kwargs("postgresql://pvdoi@db.internal/pvdoi") == {"dsn": "postgresql://pvdoi@db.internal/pvdoi"}
    with pytest.raises(WarehouseError, match=r"keyword 'target_session_attrs' is not supported .*\(supported: "
                                             r"connect_timeout, dbname, host"):
        connect_kwargs("dbname=pvdoi target_session_attrs=read-write")
    with pytest.raises(WarehouseError, match="cannot read the PostgreSQL conninfo"):
        connect_kwargs("dbname=pvdoi host")
