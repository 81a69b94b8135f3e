"""Time-boxed access: a grant gives access now, takes it away at the expiry instant or when ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.models import GRANT_ENDED_EARLY, Organisation
from portal.permissions import ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER
from tests.conftest import Factory, FrozenClock, csrf_from, login
from tests.people.grant_helpers import (
    REASON,
    add_role,
    events,
    grants,
    notifications_by_email,
    post_end,
    post_grant,
    public_id,
    role_id,
)

IAM_PAGES = ("/settings/iam/scim", "/settings/iam/sso")


@pytest.fixture
def max_client(app: Flask, factory: Factory, acme: Organisation) -> FlaskClient:
    """Max, a plain Member of Acme, signed in in his own browser."""
    factory.member(acme, "max@acme.example", MEMBER)
    client = app.test_client()
    login(client, "max@acme.example")
    return client


def _statuses(client: FlaskClient, paths: tuple[str, ...] = IAM_PAGES) -> set[int]:
    return {client.get(path).status_code for path in paths}


def test_granted_member_reaches_the_iam_pages_until_the_expiry_instant(
    app: Flask, admin_client: FlaskClient, max_client: FlaskClient, clock: FrozenClock
) -> None:
    max_id = public_id(app, "max@acme.example")
    assert _statuses(max_client) == {403}
    response = post_grant(admin_client, app, max_id, IT_ADMINISTRATOR,
                          until=clock.current + timedelta(hours=1))
    assert response.status_code == 302
    [grant] = grants(app)
    assert grant["until"] == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert (grant["member"], grant["role"], grant["reason"]) == (
        "max@acme.example", IT_ADMINISTRATOR, REASON)

    assert _statuses(max_client) == {200}
    clock.advance(minutes=59, seconds=59)
    assert _statuses(max_client) == {200}
    clock.advance(seconds=1)  # the expiry instant itself: the grant no longer counts
    assert _statuses(max_client) == {403}
    assert max_client.get("/people/").status_code == 403
    assert grants(app)[0]["ended_at"] is None  # no job was needed; the tidy-up records it later


def test_ending_a_grant_early_takes_access_away_at_the_next_request(
    app: Flask, admin_client: FlaskClient, max_client: FlaskClient, clock: FrozenClock
) -> None:
    max_id = public_id(app, "max@acme.example")
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="8h")
    assert _statuses(max_client) == {200}
    clock.advance(minutes=30)
    response = post_end(admin_client, max_id, grants(app)[0]["id"])
    assert response.status_code == 302
    assert _statuses(max_client) == {403}
    [grant] = grants(app)
    assert grant["ended_at"] == clock.current
    assert (grant["end_reason"], grant["ended_by"]) == (GRANT_ENDED_EARLY, "it-admin@acme.example")
    again = post_end(admin_client, max_id, grant["id"], headers={"HX-Request": "true"})
    assert again.status_code == 200 and [e["action"] for e in events(app)].count(
        "member.role_grant_ended") == 1


def test_grant_and_early_end_write_audit_events_with_who_whom_role_reason_and_until(
    app: Flask, admin_client: FlaskClient, max_client: FlaskClient, clock: FrozenClock
) -> None:
    max_id = public_id(app, "max@acme.example")
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    post_end(admin_client, max_id, grants(app)[0]["id"])
    granted, ended = events(app)
    common = {"target": "max@acme.example", "target_id": max_id, "role": IT_ADMINISTRATOR,
              "reason": REASON, "until": "2026-11-02T10:00:00+00:00",
              "granted_by": "it-admin@acme.example"}
    assert granted["action"] == "member.role_granted_until"
    assert granted["actor"] == "it-admin@acme.example"
    assert common.items() <= granted.items()
    assert ended["action"] == "member.role_grant_ended"
    assert common.items() <= ended.items()
    assert ended["ended_by"] == "it-admin@acme.example"
    assert ended["ended_at"] == "2026-11-02T09:00:00+00:00"
    page = admin_client.get(f"/people/{max_id}").data
    assert b"member.role_granted_until" in page and b"member.role_grant_ended" in page


def test_an_iam_grant_notifies_every_other_iam_manager_exactly_once(
    app: Flask, factory: Factory, acme: Organisation, admin_client: FlaskClient,
    max_client: FlaskClient, clock: FrozenClock
) -> None:
    factory.member(acme, "ivy@acme.example", IT_ADMINISTRATOR)
    factory.member(acme, "ada@acme.example", ADMINISTRATOR)
    factory.member(acme, "mia@acme.example", MEMBER)
    max_id = public_id(app, "max@acme.example")
    post_grant(admin_client, app, max_id, MEMBER, preset="1h")  # no IAM permission: no news
    assert notifications_by_email(app) == {}

    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    grant_id = grants(app)[-1]["id"]
    expected = {"ivy@acme.example": [f"role-grant:{grant_id}"],
                "ada@acme.example": [f"role-grant:{grant_id}"]}
    # Not the granter (they did it), not the grantee, not a plain Member.
    assert notifications_by_email(app) == expected
    bell = app.test_client()
    login(bell, "ivy@acme.example")
    assert b"gave max@acme.example the role IT Administrator" in bell.get("/notifications").data
    clock.advance(hours=2)
    admin_client.get("/people/")
    post_end(admin_client, max_id, grant_id)
    app.test_cli_runner().invoke(args=["access", "expire"])
    assert notifications_by_email(app) == expected


def test_a_person_cannot_grant_a_role_carrying_permissions_they_do_not_hold(
    app: Flask, factory: Factory, acme: Organisation, client: FlaskClient, clock: FrozenClock
) -> None:
    add_role(app, "People Manager", ["people.view", "people.manage"])
    factory.member(acme, "pam@acme.example", "People Manager")
    login(client, "pam@acme.example")
    pam_id = public_id(app, "pam@acme.example")
    response = post_grant(client, app, pam_id, IT_ADMINISTRATOR, preset="1h")
    assert response.status_code == 422
    assert "it includes permissions you do not hold yourself" in response.get_data(as_text=True)
    assert grants(app) == [] and events(app) == []
    assert _statuses(client) == {403}


def test_a_temporary_it_administrator_cannot_hand_the_role_on_or_keep_it(
    app: Flask, factory: Factory, acme: Organisation, admin_client: FlaskClient,
    max_client: FlaskClient, clock: FrozenClock
) -> None:
    factory.member(acme, "mia@acme.example", MEMBER)
    max_id, mia_id = public_id(app, "max@acme.example"), public_id(app, "mia@acme.example")
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    assert max_client.get(f"/people/{max_id}").status_code == 200
    for target in (max_id, mia_id):
        refused = post_grant(max_client, app, target, IT_ADMINISTRATOR, preset="30d")
        assert refused.status_code == 422, target
    token_page = max_client.get("/").data
    by_hand = max_client.post(f"/people/{max_id}/roles", data={
        "role_id": role_id(app, IT_ADMINISTRATOR), "csrf_token": csrf_from(token_page)})
    assert by_hand.status_code == 422
    assert len(grants(app)) == 1
    clock.advance(hours=1)
    assert _statuses(max_client) == {403}


def test_the_last_iam_admin_guard_does_not_count_time_boxed_grants(
    app: Flask, admin_client: FlaskClient, max_client: FlaskClient, clock: FrozenClock
) -> None:
    max_id = public_id(app, "max@acme.example")
    admin_id = public_id(app, "it-admin@acme.example")
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="7d")
    response = admin_client.post(
        f"/people/{admin_id}/roles/{role_id(app, IT_ADMINISTRATOR)}/revoke",
        data={"csrf_token": csrf_from(admin_client.get("/").data)})
    assert response.status_code == 422
    assert "nobody who can manage Identity" in response.get_data(as_text=True)
    assert admin_client.get("/settings/iam/scim").status_code == 200
