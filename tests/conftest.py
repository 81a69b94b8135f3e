"""Shared fixtures: the app on SQLite and PostgreSQL, clients, factories, a live server."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db
from portal.models import Membership, Organisation
from portal.permissions import IT_ADMINISTRATOR, MEMBER
from portal.services import accounts, organisations, roles
from portal.services.audit import CLI_ACTOR
from tests import pg_server

PASSWORD = "correct-horse-battery"
BACKENDS = [b.strip() for b in os.environ.get("TEST_DB_BACKENDS", "sqlite,postgresql").split(",")
            if b.strip()]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A PostgreSQL database for the run: TEST_DATABASE_URL, or a server we start."""
    url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not url:
        try:
            server = pg_server.start()
        except Exception as exc:  # pragma: no cover - reported below
            if _truthy("REQUIRE_POSTGRES"):
                raise
            print(f"PostgreSQL could not start: {exc}")
        url = server.url if server else None
    if url:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS dpms_test WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE dpms_test"))
        admin.dispose()
        url = re.sub(r"/[^/?]*(\?|$)", r"/dpms_test\1", url.split("://", 1)[1], count=1)
        url = "postgresql+psycopg://" + url
    yield url
    if server:
        server.stop()


_schema_ready: set[str] = set()


@pytest.fixture(autouse=True)
def _push_request_context() -> None:
    """Override pytest-flask's request context: a shared `g` would leak between requests."""


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: sqlite or postgresql."""
    backend: str = request.param
    return backend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run `sqlite_only` tests once, on SQLite, and `postgres_only` ones on PostgreSQL only."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("db_backend") if params else None
        if (backend == "postgresql" and item.get_closest_marker("sqlite_only")) or (
            backend == "sqlite" and item.get_closest_marker("postgres_only")
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def database_url(db_backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> str:
    """A clean database for one test."""
    if db_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    if url is None:
        if _truthy("REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required (REQUIRE_POSTGRES=1) but not available")
        pytest.skip("PostgreSQL not available")
    return str(url)


@pytest.fixture
def app(database_url: str, tmp_path: Any) -> Iterator[Flask]:
    """The application on a clean database, with the built-in roles."""
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "EXTERNAL_URL": "https://dpms.test",
        "SERVER_NAME": None,
    })
    with app.app_context():
        if database_url.startswith("postgresql") and database_url not in _schema_ready:
            db.drop_all()
            db.create_all()
            _schema_ready.add(database_url)
        elif database_url.startswith("postgresql"):
            _truncate_all()
        else:
            db.create_all()
        roles.ensure_builtin_roles()
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _truncate_all() -> None:
    names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client with cookies."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    """A CLI runner for `flask --app app ...` commands."""
    return app.test_cli_runner()


class Factory:
    """Creates organisations and people; every call commits."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def org(self, name: str = "Acme Corp", *, released: bool = True) -> Organisation:
        with self.app.app_context():
            org = organisations.create_organisation(name, CLI_ACTOR, released=released)
            db.session.commit()
            db.session.refresh(org)
            db.session.expunge(org)
            return org

    def member(self, org: Organisation, email: str, role: str = MEMBER,
               password: str = PASSWORD, *, support: bool = False) -> Membership:
        with self.app.app_context():
            fresh = db.session.get(Organisation, org.id)
            assert fresh is not None
            membership = accounts.add_member(fresh, email, CLI_ACTOR, role=roles.get_role(role),
                                             password=password)
            membership.account.is_support_staff = support
            db.session.commit()
            db.session.refresh(membership)
            _ = membership.account
            db.session.expunge_all()
            return membership

    def it_admin(self, org: Organisation, email: str = "it-admin@acme.example") -> Membership:
        return self.member(org, email, IT_ADMINISTRATOR)


@pytest.fixture
def factory(app: Flask) -> Factory:
    """Factory for organisations and members."""
    return Factory(app)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    """Sign in through the real form (CSRF included)."""
    page = client.get("/login")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    assert token, "sign-in form has no CSRF token"
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token.group(1).decode()})


def csrf_from(html: bytes) -> str:
    """Return the CSRF token rendered into a page."""
    match = re.search(rb'"X-CSRFToken": "([^"]+)"', html) or \
        re.search(rb'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1).decode()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on 127.0.0.1; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.path.exists(executable):
        if _truthy("REQUIRE_BROWSER"):
            pytest.fail(f"Chromium is required (REQUIRE_BROWSER=1) but {executable} is missing")
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; screenshots go to test-output/screenshots/."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-output", "screenshots")


def screenshot(page: Any, name: str) -> str:
    """Save a full-page screenshot under test-output/screenshots and return its path."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server on a free loopback port, for limits shared across workers."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        if _truthy("REQUIRE_REDIS"):
            pytest.fail("Redis is required (REQUIRE_REDIS=1) but redis-server is missing")
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="dpms-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


class FrozenClock:
    """portal.clock.now() held at one instant; tests advance it instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward (timedelta keywords) and return the new instant."""
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """Freeze the app's clock (portal.clock.now, behind models.utcnow) at 2026-11-02 09:00 UTC."""
    frozen = FrozenClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    monkeypatch.setattr("portal.clock.now", frozen)
    return frozen


@contextmanager
def count_statements(engine: Any = None) -> Iterator[list[str]]:
    """Collect every SQL statement the engine (the app's, in an app context) runs in the block."""
    seen: list[str] = []
    engine = engine if engine is not None else db.engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
