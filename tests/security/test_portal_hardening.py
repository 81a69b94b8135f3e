"""Portal hardening: cookies, production settings, proxy headers, database faults."""

from __future__ import annotations

import socket

import pytest
from flask import Flask, request

from portal import create_app
from portal.config import ConfigError
from tests.conftest import Factory, login


def test_session_cookie_is_httponly_and_samesite_lax(client, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    response = login(client, "max@acme.example")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over plain HTTP


def test_production_refuses_to_start_without_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        create_app()


def test_production_cookies_are_secure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_proxy_fix_trusts_forwarded_proto_only_when_configured(app: Flask) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dpms.example.com"}
    plain = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                        "TESTING": True})
    proxied = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                          "TESTING": True, "PROXY_FIX_HOPS": 1})
    assert plain.test_client().get("/login", headers=headers).request.host_url == "http://localhost/"
    seen: dict[str, str] = {}

    @proxied.get("/__probe")
    def probe() -> str:
        seen["url"] = request.host_url
        return "ok"

    proxied.test_client().get("/__probe", headers=headers)
    assert seen["url"] == "https://dpms.example.com/"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_unavailable_gives_a_friendly_503_page(app: Flask, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    client = app.test_client()
    login(client, "max@acme.example")
    broken = create_app({
        "TESTING": True, "SECRET_KEY": app.config["SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none",
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
    })
    broken_client = broken.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    broken_client.set_cookie("session", cookie.value)
    response = broken_client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert b"Temporarily unavailable" in response.data
    assert b"Traceback" not in response.data
