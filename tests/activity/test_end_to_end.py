"""A real provisioning run through the SCIM API, then the log, audit trail and report it leaves."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Membership, Notification, Organisation
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.activity.conftest import ScimOrg, activity_rows, backdate_token, dump_database

PASSWORD_SENT = "Okta-Sent-This-Passw0rd!"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def _provision(scim: ScimOrg) -> dict[str, str]:
    """Run an Okta-like provisioning session, with a few failures; return the ids it made."""
    ids: dict[str, str] = {}
    for name in ("alice", "bob"):
        created = scim.call("POST", "/Users", json={
            "schemas": [USER], "userName": f"{name}@acme.example", "password": PASSWORD_SENT,
            "emails": [{"value": f"{name}@acme.example", "type": "work", "primary": True}],
            "active": True})
        assert created.status_code == 201, created.get_data(as_text=True)
        ids[name] = created.get_json(force=True)["id"]
    assert scim.call("POST", "/Users", json={"schemas": [USER], "userName": "ALICE@acme.example",
                                             "password": PASSWORD_SENT}).status_code == 409
    group = scim.call("POST", "/Groups", json={
        "schemas": [GROUP], "displayName": "Engineering",
        "members": [{"value": ids["alice"]}, {"value": ids["bob"]}]})
    assert group.status_code == 201
    ids["group"] = group.get_json(force=True)["id"]
    assert scim.call("PATCH", f"/Groups/{ids['group']}", json=_patch(
        {"op": "remove", "path": f'members[value eq "{ids["bob"]}"]'})).status_code in (200, 204)
    assert scim.call("PATCH", f"/Users/{ids['alice']}", json=_patch(
        {"op": "replace", "path": "password", "value": PASSWORD_SENT},
        {"op": "replace", "value": {"active": False}})).status_code in (200, 204)
    assert scim.call("DELETE", f"/Users/{ids['bob']}").status_code == 204
    assert scim.call("GET", "/Users/does-not-exist").status_code == 404
    assert scim.call("GET", "/Users", token="dpms_scim_wrong-token").status_code == 401
    return ids


def test_every_request_is_recorded_with_status_and_effect(scim_org: ScimOrg,
                                                          app: Flask) -> None:
    ids = _provision(scim_org)
    rows = activity_rows(app)
    assert [(r.method, r.status) for r in rows] == [
        ("POST", 201), ("POST", 201), ("POST", 409), ("POST", 201),
        (rows[4].method, rows[4].status), (rows[5].method, rows[5].status),
        ("DELETE", 204), ("GET", 404), ("GET", 401)]
    assert {r.organisation_id for r in rows} == {scim_org.org.id}
    assert rows[0].effect == "created user alice@acme.example"
    assert rows[0].resource_type == "User" and rows[0].resource_id == ids["alice"]
    assert rows[2].scim_type == "uniqueness" and rows[2].effect == "nothing changed"
    assert rows[3].effect == "created group Engineering; added 2 members to Engineering"
    assert rows[4].effect == "removed 1 member from Engineering"
    assert rows[5].effect.startswith("deactivated user alice@acme.example")
    assert rows[6].effect.startswith("deleted user bob@acme.example")
    assert rows[8].token_valid is False and rows[0].token_valid is True
    assert rows[5].request_body["Operations"][0]["value"] == "[removed]"
    assert "password" not in rows[0].request_body


def test_token_and_password_are_stored_nowhere_after_a_provisioning_run(
    scim_org: ScimOrg, app: Flask
) -> None:
    _provision(scim_org)
    everything = dump_database(app)
    assert PASSWORD_SENT not in everything
    assert scim_org.token not in everything
    assert scim_org.token[len(scim_tokens.TOKEN_PREFIX):] not in everything


def test_audit_log_and_export_hold_the_lifecycle_events(
    scim_org: ScimOrg, app: Flask, admin_client: FlaskClient
) -> None:
    _provision(scim_org)
    with app.app_context():
        actions = [e.action for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.organisation_id == scim_org.org.id)
            .order_by(AuditEvent.id))]
    for action in ("member.provisioned", "group.created", "group.members_added",
                   "group.members_removed", "member.deactivated", "member.deprovisioned"):
        assert action in actions
    rows = list(csv.DictReader(io.StringIO(
        admin_client.get("/settings/audit/export.csv").get_data(as_text=True))))
    provisioned = [r for r in rows if r["action"] == "member.provisioned"]
    assert {r["target"] for r in provisioned} == {"alice@acme.example", "bob@acme.example"}
    assert all(r["actor"] == "SCIM: Okta SCIM Client 1.0.0" for r in provisioned)
    assert all(r["ip_address"] == "127.0.0.1" for r in provisioned)


def test_report_credits_each_deprovisioning_to_the_idp_request(
    scim_org: ScimOrg, app: Flask, admin_client: FlaskClient
) -> None:
    backdate_token(app, scim_org.org, days=1)
    ids = _provision(scim_org)
    rows = activity_rows(app)
    report = json.loads(admin_client.get("/settings/iam/scim/report.json").data)
    assert report["managed_users"] == {"active": 0, "deactivated": 1, "deleted_by_idp": 1}
    assert report["managed_groups"] == 1
    assert report["last_successful_request"]["time"] == rows[6].time.isoformat()
    items = {d["member_id"]: d for d in report["deprovisionings"]["items"]}
    assert set(items) == {ids["alice"], ids["bob"]}
    with app.app_context():
        alice = db.session.scalar(select(Membership).where(Membership.public_id == ids["alice"]))
        bob = db.session.scalar(select(Membership).where(Membership.public_id == ids["bob"]))
        assert alice is not None and bob is not None
        # The IdP's own request removed access: same request, so the removal follows its start.
        assert items[ids["alice"]]["idp_request_at"] == rows[5].time.isoformat()
        assert items[ids["alice"]]["access_removed_at"] == alice.deactivated_at.isoformat()
        assert items[ids["bob"]]["idp_request_at"] == rows[6].time.isoformat()
        assert items[ids["bob"]]["access_removed_at"] == bob.deactivated_at.isoformat()
    assert all(d["seconds_to_removal"] is not None for d in items.values())


def test_rejected_requests_are_recorded_but_tell_nobody(
    app: Flask, factory, scim_org: ScimOrg
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    for _ in range(3):
        assert scim_org.call("GET", "/Users", token="dpms_scim_stale").status_code == 401
    with app.app_context():
        # Anyone who knows the URL can send a bad token: that alone notifies nobody.
        assert db.session.scalars(select(Notification)).all() == []
        assert db.session.get(Organisation, scim_org.org.id) is not None
    assert [r.status for r in activity_rows(app)] == [401, 401, 401]


def test_withdrawn_organisation_requests_are_recorded_as_refused(scim_org: ScimOrg,
                                                                 app: Flask) -> None:
    from portal.services import organisations

    with app.app_context():
        organisations.set_scim_rollout(db.session.get(Organisation, scim_org.org.id), False,
                                       CLI_ACTOR)
        db.session.commit()
    assert scim_org.call("GET", "/Users").status_code == 403
    [row] = activity_rows(app)
    assert row.status == 403 and row.token_valid is True
    assert "not yet available" in (row.detail or "")


def test_oversized_and_malformed_bodies_are_recorded_through_the_api(scim_org: ScimOrg,
                                                                     app: Flask) -> None:
    app.config["SCIM_MAX_BODY_BYTES"] = 2000
    big = scim_org.call("POST", "/Users", data=json.dumps({"userName": "x" * 5000}),
                        content_type="application/scim+json")
    bad = scim_org.call("POST", "/Users", data='{"userName": "a@b", ',
                        content_type="application/scim+json")
    assert (big.status_code, bad.status_code) == (413, 400)
    too_large, malformed = activity_rows(app)
    assert too_large.status == 413 and too_large.request_body["note"] == \
        "larger than accepted; not stored"
    assert (malformed.status, malformed.scim_type) == (400, "invalidSyntax")
    assert malformed.request_body["unparsed"] == '{"userName": "a@b", '
    assert malformed.detail and malformed.detail.startswith("The body is not valid JSON")


def test_activity_page_shows_the_run_newest_first(scim_org: ScimOrg, app: Flask,
                                                  admin_client: FlaskClient) -> None:
    _provision(scim_org)
    html = admin_client.get("/settings/iam/scim/activity").get_data(as_text=True)
    assert html.index("Authentication failed") < html.index("created user alice@acme.example")
    errors = admin_client.get("/settings/iam/scim/activity?status=errors").get_data(as_text=True)
    assert errors.count('class="activity-item is-error"') == 3
