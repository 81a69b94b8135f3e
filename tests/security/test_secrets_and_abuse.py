"""Secrets stay secret, and abuse never costs a legitimate identity provider a request.

tests/scim/test_auth.py proves failed bearer auth is limited per address and per
organisation and that a valid token still works once; here a whole provisioning run is
checked for leaked secrets in every log, row and error body, and a full minute of
Entra-rate traffic is counted while an attacker on the same address is throttled.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation
from portal.permissions import IT_ADMINISTRATOR
from tests.conftest import Factory, csrf_from
from tests.scim.conftest import Scim
from tests.security.conftest import FrozenClock, PortalSession, Reply, send

ADMIN_PASSWORD = "Adm1n-pass-phrase-never-logged"
WRONG_PASSWORD = "Wr0ng-pass-phrase-never-logged"
USER_PASSWORD = "Us3r-pass-phrase-from-the-idp"
TOKEN_RE = re.compile(r"dpms_scim_[A-Za-z0-9_-]{40,}")


def _everything_stored(app: Flask) -> str:
    """Return every row of every table as text (audit details, activity records, tokens...)."""
    with app.app_context():
        rows = [repr(tuple(row)) for table in db.metadata.sorted_tables
                for row in db.session.execute(select(table)).all()]
        db.session.rollback()
    return "\n".join(rows)


def test_tokens_and_passwords_never_reach_logs_rows_or_error_bodies(
    app: Flask, factory: Factory, live_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: the app, werkzeug's access log, SQL
    for name in ("werkzeug", "sqlalchemy.engine", "portal", "scim_api", "flask_limiter"):
        caplog.set_level(logging.DEBUG, logger=name)
    org = factory.org("Acme Corp")
    factory.member(org, "it-admin@acme.example", IT_ADMINISTRATOR, password=ADMIN_PASSWORD)
    replies: list[Reply] = []
    tokens: list[str] = []

    browser = PortalSession(live_server)
    browser.csrf = csrf_from(browser.request("GET", "/login").body)
    replies.append(browser.request("POST", "/login", {"email": "it-admin@acme.example",
                                                      "password": WRONG_PASSWORD}))
    browser.sign_in("it-admin@acme.example", ADMIN_PASSWORD)
    generated = browser.request("POST", "/settings/iam/scim/token", {}, {"HX-Request": "true"})
    tokens += set(TOKEN_RE.findall(generated.body.decode()))
    assert len(tokens) == 1

    def scim(method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        reply = send(f"{live_server}/scim/v2/{org.key}{path}", method, body=body,
                     headers={"Authorization": f"Bearer {token or tokens[-1]}"})
        replies.append(reply)
        return reply

    ann = scim("POST", "/Users", {"userName": "ann@acme.example", "password": USER_PASSWORD,
                                  "emails": [{"value": "ann@acme.example"}]}).json()
    assert ann["userName"] == "ann@acme.example"
    scim("PATCH", f"/Users/{ann['id']}", {"Operations": [
        {"op": "replace", "path": "password", "value": USER_PASSWORD},
        {"op": "replace", "value": {"password": USER_PASSWORD, "title": "Engineer"}}]})
    scim("PUT", f"/Users/{ann['id']}", {"userName": "ann@acme.example", "password": USER_PASSWORD})
    scim("POST", "/Users", {"userName": {"bad": USER_PASSWORD}, "password": USER_PASSWORD})
    scim("POST", "/Groups", {"displayName": "Staff", "members": [{"value": ann["id"]}]})
    scim("GET", "/Users?filter=" + quote('userName eq "ann@acme.example"'))
    scim("GET", "/Users", token="dpms_scim_" + "W" * 43)  # a wrong token
    rotated = browser.request("POST", "/settings/iam/scim/token/rotate",
                              {"token_id": _active_token_id(app, org)}, {"HX-Request": "true"})
    tokens += set(TOKEN_RE.findall(rotated.body.decode()))
    scim("GET", "/Users", token=tokens[0])  # the rotated-away token
    cli = app.test_cli_runner().invoke(args=["scim", "rotate-token", "--org", org.key])
    tokens.append(cli.stdout.strip())
    assert scim("GET", "/Users").status == 200
    assert len(set(tokens)) == 3 and all(TOKEN_RE.fullmatch(t) for t in tokens)
    assert [r.status for r in replies[-3:]] == [401, 401, 200]
    assert replies[0].status == 401  # the wrong password

    secrets = [*tokens, *(t.removeprefix("dpms_scim_") for t in tokens),
               ADMIN_PASSWORD, WRONG_PASSWORD, USER_PASSWORD]
    logged = "\n".join([caplog.text, *(r.getMessage() for r in caplog.records),
                        *(r.exc_text or "" for r in caplog.records)])
    assert "GET /scim/v2/" in logged and "SELECT" in logged  # access log and SQL were captured
    stored = _everything_stored(app)
    for secret in secrets:
        assert secret not in logged
        assert secret not in stored
        for reply in replies:
            assert secret.encode() not in reply.body


def _active_token_id(app: Flask, org: Organisation) -> str:
    from portal.models import ScimToken

    with app.app_context():
        return str(db.session.scalar(select(ScimToken.id).where(
            ScimToken.organisation_id == org.id, ScimToken.revoked_at.is_(None))))


@pytest.mark.sqlite_only  # the limiter keeps its counts outside the database
def test_a_minute_of_entra_rate_traffic_is_never_throttled_while_an_attacker_fails(
    app: Flask, scim: Scim, frozen_clock: FrozenClock
) -> None:
    """Entra needs 25 requests/s per organisation: 1,500 in one frozen minute, all served."""
    people = [scim.create_user(f"p{n}@acme.example")["id"] for n in range(3)]
    group = scim.create_group("Staff")
    cycle = [
        lambda n: scim.get("/Users?count=1"),
        lambda n: scim.get(f"/Users/{people[n % 3]}"),
        lambda n: scim.patch(f"/Groups/{group['id']}", {
            "op": "add" if n % 2 else "remove", "path": "members",
            "value": [{"value": people[n % 3]}]}),
        lambda n: scim.get('/Groups?filter=displayName eq "Staff"'),
    ]
    served: list[int] = []
    attacker: list[int] = []
    for n in range(25 * 60):
        served.append(cycle[n % len(cycle)](n).status_code)
        if n % 10 == 0:  # the same address, the same organisation's URL, a wrong token
            attacker.append(scim.get("/Users", token=f"dpms_scim_guess{n}").status_code)
    assert set(served) <= {200, 204} and len(served) == 1500
    assert attacker[:20] == [401] * 20  # the per-address budget: 20 failures a minute
    assert set(attacker[20:]) == {429} and len(attacker) == 150
    frozen_clock.advance(61)
    assert scim.get("/Users", token="dpms_scim_guess-later").status_code == 401  # budget renewed
