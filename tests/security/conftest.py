"""Fixtures for the security properties: SCIM callers, database snapshots, a frozen clock."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db

# The SCIM fixtures of tests/scim, shared here rather than defined twice.
from tests.scim.conftest import Scim, make_scim, other_scim, scim  # noqa: F401

# Written on purpose whatever a request's outcome: the token's "last used" stamp and the
# provisioning activity log (one row per request). Everything else must stay untouched
# by a refused request.
USAGE_COLUMNS = {"scim_token": {"last_used_at", "last_used_agent"}}
# A refused request with a valid token may also open a provisioning incident
# (portal.services.scim_notices): written regardless, like the log row it follows.
REQUEST_LOGS = {"provisioning_activity", "scim_incident"}


def db_snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table (ordered by primary key), for before/after checks."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name in REQUEST_LOGS:
                continue
            skipped = USAGE_COLUMNS.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skipped]
            rows = db.session.execute(
                select(*columns).order_by(*table.primary_key.columns)).all()
            snapshot[table.name] = [tuple(row) for row in rows]
        db.session.rollback()
    return snapshot




class FrozenClock:
    """A `time` module stand-in whose time() moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrozenClock]:
    """Freeze the clock the rate limits read, so a whole test happens within one window."""
    import time

    import limits.storage.memory
    import limits.strategies

    import portal.ratelimit

    clock = FrozenClock(time.time())
    for module in (limits.storage.memory, limits.strategies, portal.ratelimit):
        monkeypatch.setattr(module, "time", clock)
    yield clock


# ---- a real multi-process server ----------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Server:
    """A gunicorn serving the app from this checkout, and where its logs go."""

    url: str
    error_log: Path
    access_log: Path
    output: Path  # the app's own log records (Python's last-resort handler) and prints

    def logs(self) -> str:
        """Return everything the server logged so far."""
        return "".join(p.read_text(errors="replace")
                       for p in (self.error_log, self.access_log, self.output) if p.exists())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gunicorn(app: Flask, tmp_path: Path) -> Iterator[Server]:
    """The app under gunicorn (3 worker processes x 4 threads) on 127.0.0.1, on the test's database."""
    port = _free_port()
    server = Server(f"http://127.0.0.1:{port}", tmp_path / "gunicorn-error.log",
                    tmp_path / "gunicorn-access.log", tmp_path / "gunicorn-output.log")
    output = server.output.open("wb")
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": app.config["SECRET_KEY"], "EXTERNAL_URL": "https://dpms.test",
           "APP_ENV": "development"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "--workers", "3", "--threads", "4",
         "--bind", f"127.0.0.1:{port}", "--timeout", "120", "--graceful-timeout", "5",
         "--log-level", "debug", "--error-logfile", str(server.error_log),
         "--access-logfile", str(server.access_log), "app:app"],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited ({proc.returncode}):\n{server.logs()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{server.logs()}")
                time.sleep(0.1)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)  # quick shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        output.close()


@dataclass
class Reply:
    """One HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(url: str, method: str = "GET", *, body: Any = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    """Send one request on its own connection (threads may call this in parallel)."""
    parts = urlsplit(url)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = dict(headers or {})
    if data is not None:
        sent.setdefault("Content-Type", "application/scim+json")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


class PortalSession:
    """A person's browser session against a real server: cookies, CSRF, no JavaScript."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))
        self.csrf = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        """Send a request (following redirects); 4xx/5xx come back as replies too."""
        data = None
        sent = dict(headers or {})
        if form is not None:
            data = urlencode({**form, "csrf_token": self.csrf}).encode()
            sent["X-CSRFToken"] = self.csrf
        req = Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with self.opener.open(req, timeout=120) as response:
                return Reply(response.status, dict(response.headers.items()), response.read())
        except HTTPError as exc:
            return Reply(exc.code, dict(exc.headers.items()), exc.read())

    def sign_in(self, email: str, password: str) -> None:
        """Sign in through the form and keep the CSRF token of the signed-in session."""
        from tests.conftest import csrf_from

        self.csrf = csrf_from(self.request("GET", "/login").body)
        signed_in = self.request("POST", "/login", {"email": email, "password": password})
        assert signed_in.status == 200 and b"Sign out" in signed_in.body, signed_in.status
        self.csrf = csrf_from(signed_in.body)
