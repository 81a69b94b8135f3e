"""Failed sign-ins are rate limited per address and per account; only failures count."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from tests.conftest import PASSWORD, Factory, login


def _limited_app(app: Flask, **config: str) -> Flask:
    return create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
                       "TESTING": True, **config})


def test_failed_sign_ins_lock_the_account_even_for_the_right_password(
    app: Flask, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    limited = _limited_app(app, RATELIMIT_LOGIN_PER_ACCOUNT="3 per hour")
    client = limited.test_client()
    for _ in range(3):
        assert login(client, "max@acme.example", "wrong-password").status_code == 401
    blocked = login(client, "max@acme.example", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert b"Too many failed sign-in attempts" in blocked.data
    assert limited.test_client().get("/").status_code == 302  # not signed in


def test_other_accounts_are_not_locked_by_someone_elses_failures(
    app: Flask, factory: Factory
) -> None:
    org = factory.org()
    factory.member(org, "max@acme.example")
    factory.member(org, "ann@acme.example")
    limited = _limited_app(app, RATELIMIT_LOGIN_PER_ACCOUNT="3 per hour")
    client = limited.test_client()
    for _ in range(4):
        login(client, "max@acme.example", "wrong-password")
    assert login(client, "ann@acme.example").status_code == 302


def test_failed_sign_ins_from_one_address_are_limited_across_accounts(
    app: Flask, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    limited = _limited_app(app, RATELIMIT_LOGIN_PER_ADDRESS="5 per hour")
    client = limited.test_client()
    for i in range(5):
        login(client, f"guess{i}@acme.example", "wrong-password")
    assert login(client, "max@acme.example").status_code == 429


def test_successful_sign_ins_do_not_count(app: Flask, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    limited = _limited_app(app, RATELIMIT_LOGIN_PER_ACCOUNT="2 per hour")
    for _ in range(4):
        assert login(limited.test_client(), "max@acme.example").status_code == 302


def test_limits_are_shared_across_workers_through_redis(
    app: Flask, factory: Factory, redis_url: str
) -> None:
    factory.member(factory.org(), "max@acme.example")
    config = {"RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_LOGIN_PER_ACCOUNT": "3 per hour"}
    worker_a, worker_b = _limited_app(app, **config), _limited_app(app, **config)
    import redis

    redis.Redis.from_url(redis_url).flushall()
    for worker in (worker_a, worker_b, worker_a):
        login(worker.test_client(), "max@acme.example", "wrong-password")
    assert login(worker_b.test_client(), "max@acme.example", PASSWORD).status_code == 429


def test_in_memory_limits_belong_to_one_process(app: Flask, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    config = {"RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_LOGIN_PER_ACCOUNT": "3 per hour"}
    worker_a, worker_b = _limited_app(app, **config), _limited_app(app, **config)
    for _ in range(3):
        login(worker_a.test_client(), "max@acme.example", "wrong-password")
    assert login(worker_a.test_client(), "max@acme.example").status_code == 429
    assert login(worker_b.test_client(), "max@acme.example").status_code == 302


def test_default_app_allows_normal_use(client: FlaskClient, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    login(client, "max@acme.example", "wrong-password")
    assert login(client, "max@acme.example").status_code == 302
