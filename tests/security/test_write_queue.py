"""SQLite writers queue in the kernel (portal.write_queue): a turn each, always given back."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask

from portal import create_app, write_queue
from tests.scim.conftest import Scim

pytestmark = pytest.mark.sqlite_only


def _lock_file(app: Flask) -> str:
    database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    path = write_queue.lock_path(database)
    assert path is not None
    return path


def _is_free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases it again


@contextmanager
def _held(path: str) -> Iterator[None]:
    """Hold the queue's lock as another worker's write would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def test_lock_path_is_beside_the_file_and_absent_for_memory_databases(tmp_path) -> None:
    assert write_queue.lock_path(str(tmp_path / "a.sqlite3")) == str(tmp_path / "a.sqlite3.writers")
    assert write_queue.lock_path(":memory:") is None and write_queue.lock_path("") is None


def test_a_turn_waits_for_the_holder_and_a_given_up_turn_frees_the_lock_later(tmp_path) -> None:
    path = str(tmp_path / "db.sqlite3.writers")
    first = write_queue._Turn(path)
    assert first.take(1.0)
    second = write_queue._Turn(path)
    started = time.monotonic()
    assert not second.take(0.2)  # bounded: gives up after its timeout
    assert time.monotonic() - started < 2.0
    second.give_back()  # its helper still waits and will close the file itself
    third = write_queue._Turn(path)
    granted = threading.Event()
    threading.Thread(target=lambda: third.take(5.0) and granted.set()).start()
    assert not granted.wait(0.2)  # queued behind the holder
    first.give_back()
    assert granted.wait(5.0)  # handed over as soon as the holder let go
    third.give_back()
    deadline = time.monotonic() + 5.0
    while not _is_free(path):  # the abandoned helper got its turn and handed it back
        assert time.monotonic() < deadline, "an abandoned turn kept the lock"
        time.sleep(0.01)


def test_every_scim_write_gives_its_turn_back_whatever_its_outcome(app: Flask, scim: Scim) -> None:
    path = _lock_file(app)
    ann = scim.create_user("ann@acme.example")
    assert os.path.exists(path) and _is_free(path)
    assert scim.post("/Users", {"userName": "ann@acme.example"}).status_code == 409
    assert _is_free(path)
    assert scim.patch(f"/Users/{ann['id']}", {"op": "bogus"}).status_code == 400
    assert _is_free(path)
    assert scim.delete("/Users/no-such-id").status_code == 404
    assert _is_free(path)
    assert scim.delete(f"/Users/{ann['id']}").status_code == 204
    assert _is_free(path)


def test_a_scim_write_waits_its_turn_then_completes(app: Flask, scim: Scim) -> None:
    path = _lock_file(app)
    results: list[int] = []
    with _held(path):
        writer = threading.Thread(target=lambda: results.append(
            scim.post("/Users", {"userName": "queued@acme.example"}).status_code))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and results == []  # waiting behind the other writer
    writer.join(10)
    assert results == [201]
    assert scim.get('/Users?filter=userName eq "queued@acme.example"').get_json(
        force=True)["totalResults"] == 1
    assert _is_free(path)


def test_a_stuck_queue_delays_a_write_only_up_to_the_busy_timeout(app: Flask, scim: Scim) -> None:
    quick = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
                        "TESTING": True, "SQLITE_BUSY_TIMEOUT_SECONDS": 0.3})
    client = quick.test_client()
    headers = {"Authorization": f"Bearer {scim.token}", "Content-Type": "application/scim+json"}
    with _held(_lock_file(app)):
        started = time.monotonic()
        response = client.post(f"{scim.base}/Users", headers=headers,
                               data='{"userName": "impatient@acme.example"}')
        waited = time.monotonic() - started
    # SQLite itself was free: past its turn's timeout the write went ahead.
    assert response.status_code == 201, response.get_data(as_text=True)
    assert 0.3 <= waited < 5.0
