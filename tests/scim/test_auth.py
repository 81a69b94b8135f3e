"""Bearer authentication and tenancy: every SCIM request needs its organisation's token."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Membership, ScimToken
from tests.scim.conftest import Scim, make_scim

ENDPOINTS = ["/Users", "/Groups", "/ServiceProviderConfig", "/Schemas", "/ResourceTypes",
             "/Users/does-not-exist", "/Nope"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz"])
def test_missing_or_wrong_token_is_401_scim_error_with_www_authenticate(
    scim: Scim, path: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = scim.client.get(scim.base + path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.mimetype == "application/scim+json"
    body = response.get_json(force=True)
    assert body["status"] == "401"
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_token_of_one_organisation_is_refused_under_another(scim: Scim, other_scim: Scim) -> None:
    created = scim.create_user("alice@acme.example")
    for method, path in [("GET", "/Users"), ("GET", f"/Users/{created['id']}"),
                         ("DELETE", f"/Users/{created['id']}")]:
        response = other_scim.request(method, scim.base + path)  # Globex token, Acme URL
        assert response.status_code == 401, (method, path)
    assert scim.member(created["id"]).active is True


def test_unknown_organisation_key_is_401_not_404(scim: Scim) -> None:
    response = scim.get("/scim/v2/no-such-org/Users")
    assert response.status_code == 401


def test_organisation_without_scim_rollout_is_refused_with_403(app: Flask) -> None:
    pending = make_scim(app, "Globex", released=False)
    response = pending.post("/Users", {"userName": "x@globex.example"})
    assert response.status_code == 403
    assert "not yet available for this organisation" in response.get_json(force=True)["detail"]
    with app.app_context():
        assert db.session.scalar(select(Membership).where(
            Membership.organisation_id == pending.org_id)) is None


def test_rotated_token_stops_working_at_once_and_new_one_works(
    app: Flask, scim: Scim, runner
) -> None:
    assert scim.get("/Users").status_code == 200
    result = runner.invoke(args=["scim", "rotate-token", "--org", scim.key])
    assert result.exit_code == 0
    new_token = result.stdout.strip()
    assert scim.get("/Users").status_code == 401
    assert scim.get("/Users", token=new_token).status_code == 200


def test_use_of_a_token_is_recorded_with_the_client(app: Flask, scim: Scim) -> None:
    scim.user_agent = "Okta SCIM Client 1.0.0"
    scim.get("/Users")
    with app.app_context():
        token = db.session.scalar(select(ScimToken).where(ScimToken.organisation_id == scim.org_id,
                                                          ScimToken.revoked_at.is_(None)))
        assert token.last_used_at is not None
        assert token.last_used_agent == "Okta SCIM Client 1.0.0"


def test_writes_are_audited_with_the_client_as_actor(app: Flask, scim: Scim) -> None:
    from portal.models import AuditEvent

    scim.user_agent = "Okta SCIM Client 1.0.0"
    scim.create_user("alice@acme.example")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "member.provisioned"))
        assert event.actor_label == "SCIM: Okta SCIM Client 1.0.0"
        assert event.organisation_id == scim.org_id


def test_tokens_never_reach_the_logs(scim: Scim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scim.get("/Users")
    scim.get("/Users", token="dpms_scim_guessed-token-value")
    scim.post("/Users", raw=b"{not json")
    assert scim.token not in caplog.text
    assert "guessed-token-value" not in caplog.text


def test_scim_requests_set_no_session_cookie(scim: Scim) -> None:
    response = scim.get("/Users")
    assert "Set-Cookie" not in response.headers


def test_token_use_is_recorded_even_when_the_request_fails(app: Flask, scim: Scim) -> None:
    scim.user_agent = "Azure-SCIM-Provisioning/1.0"
    assert scim.get("/Users/no-such-user").status_code == 404
    with app.app_context():
        token = db.session.scalar(select(ScimToken).where(ScimToken.organisation_id == scim.org_id))
        assert token.last_used_agent == "Azure-SCIM-Provisioning/1.0"


def test_failed_authentication_is_rate_limited_but_a_valid_token_never_is(
    app: Flask, scim: Scim
) -> None:
    app.config["RATELIMIT_SCIM_AUTH_PER_ADDRESS"] = "3 per minute"
    statuses = [scim.get("/Users", token=f"guess-{n}").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    limited = scim.get("/Users", token="guess-6")
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json(force=True)["status"] == "429"
    assert scim.get("/Users").status_code == 200  # the IdP from the same address still works


def test_failures_against_one_organisation_are_limited_per_organisation(
    app: Flask, scim: Scim, other_scim: Scim
) -> None:
    app.config["RATELIMIT_SCIM_AUTH_PER_ORG"] = "2 per minute"
    assert [scim.get("/Users", token="x").status_code for _ in range(2)] == [401, 401]
    limited = scim.get("/Users", token="x")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json(force=True)["scimType"] == "tooMany"
    assert scim.get("/Users").status_code == 200
    assert other_scim.get("/Users", token="x").status_code == 401  # its own budget


def test_failed_authentication_limits_hold_across_workers_sharing_redis(
    app: Flask, scim: Scim, redis_url: str
) -> None:
    """Two workers (two app instances, as gunicorn runs them) count failures in one Redis."""
    import redis

    from portal import create_app

    redis.Redis.from_url(redis_url).flushall()
    config = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")}
    workers = [create_app({**config, "TESTING": True, "RATELIMIT_STORAGE_URI": redis_url,
                           "RATELIMIT_SCIM_AUTH_PER_ADDRESS": "4 per minute"})
               for _ in range(2)]
    url = f"/scim/v2/{scim.key}/Users"

    def call(worker: int, token: str) -> Any:
        return workers[worker].test_client().get(url, headers={"Authorization": f"Bearer {token}"})

    statuses = [call(n % 2, f"guess-{n}").status_code for n in range(4)]
    assert statuses == [401] * 4  # two failures through each worker
    for worker in (0, 1):
        limited = call(worker, "guess-more")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        body = limited.get_json(force=True)
        assert body["status"] == "429" and body["schemas"] == [
            "urn:ietf:params:scim:api:messages:2.0:Error"]
        assert call(worker, scim.token).status_code == 200  # the IdP is never refused
