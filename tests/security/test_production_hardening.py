"""Production settings that protect secrets and sessions: SQL logs, cookies, headers, SQLite.

tests/security/test_portal_hardening.py checks the configuration values; here the
running app is checked: what a DEBUG logger prints, the Set-Cookie a browser receives
behind a TLS proxy, the headers on every kind of response, the SQLite connection.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal import create_app
from portal.extensions import db
from portal.permissions import IT_ADMINISTRATOR
from portal.services import scim_tokens
from tests.conftest import PASSWORD, Factory, csrf_from, login
from tests.scim.conftest import Scim

SECRET_PERSON = "hidden.person@acme.example"


def _app_as(app: Flask, monkeypatch: pytest.MonkeyPatch, env: str, **config: Any) -> Flask:
    """Return the app as started with APP_ENV=env, on the test's database."""
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    return create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                       "TESTING": True, **config})


def _sql_log_of_a_scim_run(started: Flask, scim: Scim, caplog: pytest.LogCaptureFixture,
                           user_name: str) -> str:
    """Run an authenticated SCIM list and create under a DEBUG root logger; return the log."""
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    client = started.test_client()
    headers = {"Authorization": f"Bearer {scim.token}"}
    assert client.get(f"/scim/v2/{scim.key}/Users", headers=headers).status_code == 200
    created = client.post(f"/scim/v2/{scim.key}/Users", headers=headers,
                          json={"userName": user_name})
    assert created.status_code == 201
    with started.app_context():
        db.engine.dispose()
    return caplog.text


def test_production_sql_logging_never_prints_bound_parameters(
    app: Flask, scim: Scim, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = scim_tokens.digest(scim.token)  # what the token lookup binds
    development = _app_as(app, monkeypatch, "development")
    logged = _sql_log_of_a_scim_run(development, scim, caplog, "shown.person@acme.example")
    assert digest in logged and "shown.person@acme.example" in logged  # the capture works

    production = _app_as(app, monkeypatch, "production")
    logged = _sql_log_of_a_scim_run(production, scim, caplog, SECRET_PERSON)
    assert "SELECT" in logged and "INSERT INTO membership" in logged  # SQL was logged...
    assert "parameters hidden" in logged
    assert digest not in logged and SECRET_PERSON not in logged  # ...without its values


def test_production_database_errors_never_carry_bound_parameters(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = _app_as(app, monkeypatch, "production",
                         SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True})  # overridden options
    with production.app_context():
        with pytest.raises(DBAPIError) as raised:
            db.session.execute(text("SELECT * FROM no_such_table WHERE secret = :secret"),
                               {"secret": "pbkdf2-hash-of-a-password"})
        db.session.rollback()
        db.engine.dispose()
    assert "no_such_table" in str(raised.value)
    assert "pbkdf2-hash-of-a-password" not in str(raised.value)


@pytest.mark.parametrize("env", ["production", "development"])
def test_session_cookie_is_secure_httponly_and_lax_behind_an_https_proxy(
    app: Flask, factory: Factory, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    factory.member(factory.org(), "max@acme.example")
    proxied = _app_as(app, monkeypatch, env, PROXY_FIX_HOPS=1)
    client = proxied.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    page = client.get("/login", headers=https)
    # Over HTTPS, Flask-WTF also wants a same-origin Referer, as a browser sends it.
    signed_in = client.post("/login", headers={**https, "Referer": "https://localhost/login"}, data={
        "email": "max@acme.example", "password": PASSWORD, "csrf_token": csrf_from(page.data)})
    assert signed_in.status_code == 302
    for response in (page, signed_in):
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("session=")
        assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/", headers=https).status_code == 200


def test_forwarded_https_is_not_believed_without_proxy_fix(
    app: Flask, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.member(factory.org(), "max@acme.example")
    direct = _app_as(app, monkeypatch, "development")
    page = direct.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" not in cookie  # plain http, as it really was


# ---- headers on every kind of response --------------------------------------------------

def _assert_headers(response: Any, *, portal: bool, what: str) -> None:
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("Referrer-Policy") == "same-origin", what
    if portal:
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, what
        assert "frame-ancestors 'none'" in csp, what
        assert response.headers.get("X-Frame-Options") == "DENY", what


def test_every_kind_of_response_carries_the_security_headers(
    app: Flask, factory: Factory, scim: Scim
) -> None:
    from portal.models import Organisation

    factory.member(Organisation(id=scim.org_id, name="Acme Corp"), "it-admin@acme.example",
                   IT_ADMINISTRATOR)
    anonymous = app.test_client()
    client = app.test_client()
    login(client, "it-admin@acme.example")
    htmx = {"HX-Request": "true"}
    app.config["SCIM_MAX_BODY_BYTES"] = 1024
    portal_responses = {
        "sign-in page": anonymous.get("/login"),
        "redirect to sign-in": anonymous.get("/people/"),
        "failed sign-in": anonymous.post("/login", data={"email": "x@y.z", "password": "x"}),
        "page": client.get("/people/"),
        "htmx fragment": client.get("/people/?q=a", headers=htmx),
        "redirect": client.post("/switch-organisation",
                                data={"organisation_id": str(scim.org_id),
                                      "csrf_token": csrf_from(client.get("/").data)}),
        "404 page": client.get("/people/no-such-person"),
        "404 fragment": client.get("/people/no-such-person", headers=htmx),
        "CSRF 400": client.post("/people/x/profile", data={"title": "x"}),
        "403": client.get("/support/rollout"),
        "405": client.delete("/people/"),
        "static file": client.get("/static/app.js"),
        "CSV export": client.get("/settings/audit/export.csv"),
    }
    for what, response in portal_responses.items():
        _assert_headers(response, portal=True, what=what)
    scim_responses = {
        "SCIM 200": scim.get("/Users"),
        "SCIM 401": scim.get("/Users", token="dpms_scim_wrong"),
        "SCIM 404": scim.get("/Users/nobody"),
        "SCIM 400": scim.post("/Users", raw=b"{"),
        "SCIM 413": scim.post("/Users", raw=b" " * 2048),
        "SCIM discovery": scim.get("/ServiceProviderConfig"),
    }
    for what, response in scim_responses.items():
        _assert_headers(response, portal=False, what=what)


def test_an_unexpected_error_page_carries_the_security_headers(app: Flask) -> None:
    fresh = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                        "SECRET_KEY": "x", "TESTING": False})

    @fresh.get("/__boom")
    def boom() -> str:
        raise RuntimeError("unexpected")

    response = fresh.test_client().get("/__boom")
    assert response.status_code == 500 and b"Traceback" not in response.data
    _assert_headers(response, portal=True, what="500")


# ---- SQLite: concurrent writers wait instead of failing ----------------------------------

@pytest.mark.sqlite_only
def test_sqlite_connections_use_wal_and_a_busy_timeout(app: Flask) -> None:
    with app.app_context():
        conn = db.session.connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.session.rollback()
