"""Database faults: unavailable or slow → 503 with Retry-After; a dropped commit → nothing written.

tests/security/test_portal_hardening.py shows the portal's friendly 503 page; here the
SCIM API answers in its own error format (IdPs retry on 503), and a connection that
drops at COMMIT leaves no row of a request behind, so the IdP's retry starts clean.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text

from portal import create_app
from portal.extensions import db
from portal.permissions import IT_ADMINISTRATOR
from tests.conftest import Factory, csrf_from, login
from tests.scim.conftest import Scim
from tests.security.conftest import db_snapshot

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_scim_503(response: Any) -> None:
    """Assert a SCIM Error 503 that tells the IdP when to retry."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    assert int(response.headers["Retry-After"]) > 0
    body = json.loads(response.get_data(as_text=True))
    assert body["schemas"] == [ERROR] and body["status"] == "503"
    assert "Traceback" not in body["detail"]


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://nobody@127.0.0.1:{port}/none",
    "sqlite:////nonexistent-directory/{port}/dpms.sqlite3",
], ids=["postgresql-down", "sqlite-unopenable"])
def test_scim_answers_503_with_retry_after_when_the_database_is_unavailable(url: str) -> None:
    broken = create_app({
        "TESTING": True, "SECRET_KEY": "test",
        "SQLALCHEMY_DATABASE_URI": url.format(port=_closed_port()),
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}}
        if url.startswith("postgresql") else {},
    })
    client = broken.test_client()
    headers = {"Authorization": "Bearer dpms_scim_" + "x" * 43}
    for method, path, body in [("GET", "/Users", None), ("POST", "/Users", {"userName": "a@b.c"}),
                               ("PATCH", "/Groups/x", {"Operations": []}),
                               ("GET", "/ServiceProviderConfig", None)]:
        response = client.open(f"/scim/v2/some-org/{path.lstrip('/')}", method=method,
                               json=body, headers=headers)
        assert_scim_503(response)


@pytest.mark.postgres_only
def test_scim_answers_503_when_the_database_times_out_and_writes_nothing(
    app: Flask, scim: Scim
) -> None:
    ann = scim.create_user("ann@acme.example")
    group = scim.create_group("Staff")
    slow = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
                       "TESTING": True, "SQLALCHEMY_ENGINE_OPTIONS": {
                           "connect_args": {"options": "-c statement_timeout=300"}}})
    client = slow.test_client()
    headers = {"Authorization": f"Bearer {scim.token}"}
    before = db_snapshot(app)
    holder = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with holder.connect() as conn:  # another session holds the member table
            conn.execute(text('LOCK TABLE group_member IN ACCESS EXCLUSIVE MODE'))
            response = client.patch(f"/scim/v2/{scim.key}/Groups/{group['id']}", headers=headers,
                                    json={"Operations": [{"op": "add", "path": "members",
                                                          "value": [{"value": ann["id"]}]}]})
            assert_scim_503(response)
            conn.rollback()
    finally:
        holder.dispose()
    assert db_snapshot(app) == before
    retried = client.patch(f"/scim/v2/{scim.key}/Groups/{group['id']}", headers=headers,
                           json={"Operations": [{"op": "add", "path": "members",
                                                 "value": [{"value": ann["id"]}]}]})
    assert retried.status_code == 204
    assert scim.group_member_ids(group["id"]) == {ann["id"]}
    with slow.app_context():
        db.engine.dispose()


@contextmanager
def connection_dropped_at_commit(app: Flask) -> Iterator[list[int]]:
    """Drop the app's database connection at its next COMMIT, as a network fault would.

    PostgreSQL: the server terminates the session. SQLite: the file handle goes away.
    Yields a list that receives one entry per dropped commit.
    """
    dropped: list[int] = []
    with app.app_context():
        engine = db.engine

    def drop(conn: Any) -> None:
        if dropped:
            return
        raw = conn.connection.dbapi_connection
        if conn.dialect.name == "postgresql":
            admin = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"),
                              {"pid": raw.info.backend_pid})
            admin.dispose()
        else:
            raw.close()
        dropped.append(1)

    event.listen(engine, "commit", drop)
    try:
        yield dropped
    finally:
        event.remove(engine, "commit", drop)


def test_a_connection_dropped_at_commit_leaves_nothing_of_a_scim_request(
    app: Flask, scim: Scim
) -> None:
    boss = scim.create_user("boss@acme.example")
    group = scim.create_group("Staff")
    body = {"userName": "ann@acme.example", "title": "Engineer",
            "emails": [{"value": "ann@acme.example", "type": "work"},
                       {"value": "ann@home.example", "type": "home"}],
            ENTERPRISE: {"manager": boss["id"], "department": "R&D"}}
    before = db_snapshot(app)
    with connection_dropped_at_commit(app) as dropped:
        assert_scim_503(scim.post("/Users", body))
    assert dropped and db_snapshot(app) == before
    retried = scim.post("/Users", body)  # the IdP's retry starts from a clean slate
    assert retried.status_code == 201
    created = retried.get_json(force=True)
    with connection_dropped_at_commit(app) as dropped:
        assert_scim_503(scim.patch(f"/Groups/{group['id']}", {
            "op": "add", "path": "members", "value": [{"value": created["id"]},
                                                      {"value": boss["id"]}]},
            {"op": "replace", "path": "displayName", "value": "Everyone"}))
    assert dropped
    assert scim.group_member_ids(group["id"]) == set()
    assert scim.get(f"/Groups/{group['id']}").get_json(force=True)["displayName"] == "Staff"


def test_a_connection_dropped_at_commit_leaves_nothing_of_a_portal_change(
    app: Flask, client: Any, factory: Factory
) -> None:
    org = factory.org()
    factory.member(org, "it-admin@acme.example", IT_ADMINISTRATOR)
    staff = factory.member(org, "staff@acme.example")
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get("/").data)
    before = db_snapshot(app)
    with connection_dropped_at_commit(app) as dropped:
        response = client.post(f"/people/{staff.public_id}/profile",
                               data={"title": "Boss", "csrf_token": token})
    assert dropped
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert b"Temporarily unavailable" in response.data
    assert db_snapshot(app) == before


def test_cli_rotation_shows_no_token_when_the_commit_fails(app: Flask, scim: Scim) -> None:
    runner = app.test_cli_runner()
    with connection_dropped_at_commit(app) as dropped:
        result = runner.invoke(args=["scim", "rotate-token", "--org", scim.key])
    assert dropped and result.exit_code != 0
    assert "dpms_scim_" not in result.output
    assert scim.get("/Users").status_code == 200  # the old token still works


@pytest.mark.sqlite_only
def test_scim_answers_503_when_sqlite_stays_locked_by_another_writer_and_writes_nothing(
    app: Flask, scim: Scim
) -> None:
    ann = scim.create_user("ann@acme.example")
    group = scim.create_group("Staff")
    slow = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
                       "TESTING": True, "SQLITE_BUSY_TIMEOUT_SECONDS": 0.2})
    client = slow.test_client()
    headers = {"Authorization": f"Bearer {scim.token}"}
    patch = {"Operations": [{"op": "add", "path": "members", "value": [{"value": ann["id"]}]}]}
    before = db_snapshot(app)
    holder = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with holder.connect() as conn:  # another process holds SQLite's write lock
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            for method, path, body in [("PATCH", f"/Groups/{group['id']}", patch),
                                       ("POST", "/Users", {"userName": "bob@acme.example"}),
                                       ("DELETE", f"/Users/{ann['id']}", None)]:
                assert_scim_503(client.open(f"/scim/v2/{scim.key}{path}", method=method,
                                            json=body, headers=headers))
            conn.exec_driver_sql("ROLLBACK")
    finally:
        holder.dispose()
    assert db_snapshot(app) == before
    assert client.patch(f"/scim/v2/{scim.key}/Groups/{group['id']}", headers=headers,
                        json=patch).status_code == 204  # the IdP's retry goes through
    assert scim.group_member_ids(group["id"]) == {ann["id"]}
    with slow.app_context():
        db.engine.dispose()


@contextmanager
def connection_dropped_after_first_write(app: Flask) -> Iterator[list[str]]:
    """Drop the app's connection right after the request's first INSERT/UPDATE/DELETE.

    PostgreSQL: the server terminates the session, so the next statement fails and the
    server discards the open transaction. SQLite (a local file, no network): the next
    statement fails as a dropped connection would. Yields the statements that ran first.
    """
    written: list[str] = []
    with app.app_context():
        engine = db.engine

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if written or not statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            return
        written.append(statement)
        if conn.dialect.name == "postgresql":
            admin = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"),
                              {"pid": conn.connection.dbapi_connection.info.backend_pid})
            admin.dispose()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if written and len(written) == 1 and conn.dialect.name == "sqlite":
            written.append(statement)
            import sqlite3

            from sqlalchemy.exc import OperationalError
            raise OperationalError(statement, None, sqlite3.OperationalError("disk I/O error"))

    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield written
    finally:
        event.remove(engine, "after_cursor_execute", after)
        event.remove(engine, "before_cursor_execute", before)


def test_a_connection_dropped_mid_request_leaves_nothing_half_written(
    app: Flask, scim: Scim
) -> None:
    boss = scim.create_user("boss@acme.example")
    group = scim.create_group("Staff", [boss["id"]])
    body = {"userName": "ann@acme.example", "title": "Engineer",
            "emails": [{"value": "ann@acme.example", "type": "work"}],
            ENTERPRISE: {"manager": boss["id"]}}
    before = db_snapshot(app)
    requests = [
        lambda: scim.post("/Users", body),
        lambda: scim.put(f"/Users/{boss['id']}", {"userName": "boss@acme.example",
                                                  "title": "Chief",
                                                  "emails": [{"value": "b@acme.example"}]}),
        lambda: scim.patch(f"/Groups/{group['id']}",
                           {"op": "replace", "path": "displayName", "value": "Everyone"},
                           {"op": "remove", "path": "members"}),
        lambda: scim.delete(f"/Groups/{group['id']}"),
    ]
    for send in requests:
        with connection_dropped_after_first_write(app) as written:
            assert_scim_503(send())
        assert written, "the request wrote nothing before the drop"
        assert db_snapshot(app) == before, written[0]
    assert scim.post("/Users", body).status_code == 201  # the retry starts clean


@pytest.mark.sqlite_only
def test_portal_shows_a_friendly_503_when_sqlite_stays_locked_and_writes_nothing(
    app: Flask, factory: Factory
) -> None:
    org = factory.org()
    factory.member(org, "it-admin@acme.example", IT_ADMINISTRATOR)
    staff = factory.member(org, "staff@acme.example")
    slow = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
                       "TESTING": True, "SQLITE_BUSY_TIMEOUT_SECONDS": 0.2})
    client = slow.test_client()
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get("/").data)
    before = db_snapshot(app)
    holder = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            for headers in ({}, {"HX-Request": "true"}):
                response = client.post(f"/people/{staff.public_id}/profile", headers=headers,
                                       data={"title": "Boss", "csrf_token": token})
                assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
                assert b"Temporarily unavailable" in response.data
                assert b"Traceback" not in response.data
            conn.exec_driver_sql("ROLLBACK")
    finally:
        holder.dispose()
    assert db_snapshot(app) == before
    with slow.app_context():
        db.engine.dispose()
