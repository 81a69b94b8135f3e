"""Writers to one SQLite file wait their turn in the kernel, not by polling SQLite's lock.

SQLite lets one writer in at a time. A writer that finds the lock taken polls it with
growing sleeps (1, 2, 5, 10 … 100 ms, its busy handler), and the writer that just
committed — already back with its next request — often takes the lock again first: under
a steady stream of SCIM writes from two workers, a 20 ms create waited 0.3–1 s at p99
(bench/results/history.md). An exclusive `flock` on a file beside the database, taken
before BEGIN IMMEDIATE, makes waiters sleep in the kernel and wake as soon as it is free.

The wait is bounded: past SQLITE_BUSY_TIMEOUT_SECONDS the request goes on without its
turn and SQLite's own busy timeout decides (503 with Retry-After if still locked). A
blocking flock cannot time out, so a contended wait runs in a helper thread; a turn that
comes after the caller gave up is handed back at once. The lock belongs to the open file
description, so it also orders threads of one process, and dies with its process.

A write that stands alone — the activity record of a read or a refusal, ~30 µs — takes
SQLite's lock itself (`write_alone`): it tries BEGIN IMMEDIATE a few times ~0.1 ms apart
before falling back to SQLite's busy handler, whose first sleep is a whole millisecond
(with two workers reading at full speed, 5-10% of reads found the other's record being
written), and commits straight after its statement, so the lock is held for the insert
alone and not through the rest of the request.

Ours: no library offers a bounded, cross-process writer queue for SQLite (SQLite's
busy handler is not exposed by Python's sqlite3 module); PostgreSQL needs none (writers
lock the rows they change).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from portal.flask_app import request_globals


class _Turn:
    """One request's place in the queue: an open lock file, held or being waited for."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._guard = threading.Lock()
        self._granted = threading.Event()
        self._abandoned = False  # the caller stopped waiting: the helper closes the file
        self._closed = False

    def take(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the lock; return whether it is held."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._granted.set()
            return True
        except BlockingIOError:
            pass
        threading.Thread(target=self._wait, name="sqlite-write-queue", daemon=True).start()
        if self._granted.wait(timeout):
            return True
        with self._guard:
            if self._granted.is_set():
                return True
            self._abandoned = True
        return False

    def _wait(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            with self._guard:
                self._abandoned = True  # never granted: whoever comes last closes
            self._close()
            return
        with self._guard:
            if not self._abandoned:
                self._granted.set()
                return
        self._close()  # too late for the caller: hand the turn straight back

    def give_back(self) -> None:
        """Release the lock and close the file, unless a helper still waits for it."""
        with self._guard:
            if self._abandoned and not self._granted.is_set():
                return  # the helper closes the file when its turn comes (or already did)
        self._close()

    def _close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
        os.close(self.fd)  # closing the file releases the lock


def lock_path(database: str | None) -> str | None:
    """Return the queue's lock file for an SQLite database file (None for in-memory ones)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}.writers"


def wait_for_turn(database: str | None, timeout: float) -> bool:
    """Queue this request behind the other writers of the file; True once it is first.

    Held until `end_turn()` (called when the request's transaction ends). A request that
    already holds its turn keeps it.
    """
    ctx_g = request_globals()
    if ctx_g.get("sqlite_write_turn") is not None:
        return True
    path = lock_path(database)
    if path is None:
        return False
    turn = _Turn(path)
    if turn.take(timeout):
        ctx_g.sqlite_write_turn = turn
        return True
    turn.give_back()
    return False


def end_turn() -> None:
    """Let the next writer in (after the commit or rollback); harmless when not queued."""
    turn: _Turn | None = request_globals().pop("sqlite_write_turn", None)
    if turn is not None:
        turn.give_back()


# Pauses between tries at SQLite's lock for a write that stands alone (~30 µs).
_QUICK_TRIES = (0.00005, 0.0001, 0.0002, 0.0004)


def sqlite_idle(connection: Connection) -> bool:
    """Return whether this is SQLite with no write begun in the transaction (False elsewhere)."""
    if connection.dialect.name != "sqlite":
        return False
    driver = connection.connection.driver_connection
    return driver is not None and not driver.in_transaction


def write_alone(connection: Connection, write: Callable[[], Any]) -> None:
    """Run `write` as a transaction of its own on an idle SQLite connection, committed at once.

    Errors come back as SQLAlchemy's (OperationalError …), like any statement's; after a
    failure the transaction is rolled back with the request's.
    """
    driver = connection.connection.dbapi_connection
    assert driver is not None
    try:
        _begin_quickly(driver, connection.connection.info)
    except BaseException as exc:  # wrapped, a lost connection invalidated
        connection._handle_dbapi_exception(exc, "BEGIN IMMEDIATE", (), None, None)
    write()
    try:
        driver.commit()
    except BaseException as exc:
        connection._handle_dbapi_exception(exc, "COMMIT", (), None, None)


def _begin_quickly(driver: Any, info: dict[str, Any]) -> None:
    """BEGIN IMMEDIATE, polling the lock briefly before SQLite's own (1 ms) waits."""
    if "busy_timeout" not in info:  # as configured at connect; kept with the connection
        info["busy_timeout"] = driver.execute("PRAGMA busy_timeout").fetchone()[0]
    driver.execute("PRAGMA busy_timeout = 0")
    try:
        for pause in _QUICK_TRIES:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            time.sleep(pause)
    finally:
        driver.execute(f"PRAGMA busy_timeout = {int(info['busy_timeout'])}")
    driver.execute("BEGIN IMMEDIATE")  # still taken: wait as any writer does
