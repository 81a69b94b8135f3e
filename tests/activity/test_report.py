"""The SCIM status report (audit evidence): JSON and printable HTML with figures from the data."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import (
    SOURCE_MANUAL,
    SOURCE_SCIM,
    Account,
    AuditEvent,
    Group,
    Membership,
    Organisation,
    ProvisioningActivity,
    utcnow,
)
from portal.services import scim_tokens
from tests.activity.conftest import AddActivity, ScimOrg, backdate_token

NOW = utcnow()  # one reference time, so computed delays are exact


def _managed(app: Flask, org: Organisation, name: str, *, active: bool = True,
             deactivated_ago: timedelta | None = None, deleted_ago: timedelta | None = None,
             managed: bool = True, actor: str = "SCIM: Microsoft.Identity.Provisioning") -> str:
    """Add a member as it stands now, and the audit events that removed its access."""
    with app.app_context():
        account = Account(email=name)
        db.session.add(account)
        db.session.flush()
        now = NOW
        member = Membership(
            organisation_id=org.id, account_id=account.id, user_name=name,
            user_name_lower=name, source=SOURCE_SCIM if managed else SOURCE_MANUAL,
            scim_managed=managed, active=active,
            deactivated_at=now - deactivated_ago if deactivated_ago is not None else None,
            scim_deleted_at=now - deleted_ago if deleted_ago is not None else None)
        db.session.add(member)
        db.session.flush()
        if deactivated_ago is not None:
            _removal(org, member, "member.deactivated", now - deactivated_ago, actor, {})
        if deleted_ago is not None:
            _removal(org, member, "member.deprovisioned", now - deleted_ago, actor,
                     {"was_active": deactivated_ago is None})
        db.session.commit()
        return member.public_id


def _removal(org: Organisation, member: Membership, action: str, at: datetime, actor: str,
             details: dict[str, object]) -> None:
    db.session.add(AuditEvent(
        organisation_id=org.id, actor_label=actor, action=action, target_type="member",
        target_id=member.public_id, target_label=member.user_name, created_at=at,
        details={"received_at": at.isoformat(), "access_ended_at": at.isoformat(), **details}))


def _deactivation_request(app: Flask, org: Organisation, member_id: str, ago: timedelta,
                          *, method: str = "PATCH") -> None:
    with app.app_context():
        db.session.add(ProvisioningActivity(
            organisation_id=org.id, time=NOW - ago, method=method,
            path=f"/scim/v2/{org.key}/Users/{member_id}", resource_type="User",
            resource_id=member_id, status=200 if method != "DELETE" else 204, duration_ms=4,
            client="Microsoft.Identity.Provisioning", token_valid=True))
        db.session.commit()


def test_json_report_figures_match_the_data(admin_client: FlaskClient, scim_org: ScimOrg,
                                            app: Flask, add_activity: AddActivity) -> None:
    org = scim_org.org
    issued = backdate_token(app, org, days=40)
    _managed(app, org, "alice@acme.example")
    _managed(app, org, "amy@acme.example")
    _managed(app, org, "manual@acme.example", managed=False)
    bob = _managed(app, org, "bob@acme.example", active=False,
                   deactivated_ago=timedelta(days=2))
    _deactivation_request(app, org, bob, timedelta(days=2, milliseconds=250))
    carl = _managed(app, org, "carl@acme.example", active=False,
                    deactivated_ago=timedelta(days=5), deleted_ago=timedelta(days=1))
    _deactivation_request(app, org, carl, timedelta(days=5, milliseconds=40))
    _managed(app, org, "old@acme.example", active=False, deactivated_ago=timedelta(days=100))
    hand = _managed(app, org, "hand@acme.example", active=False,
                    deactivated_ago=timedelta(days=3), actor="it-admin@acme.example")
    _deactivation_request(app, org, hand, timedelta(days=4))  # a day earlier: not the cause
    with app.app_context():
        for name, source in (("Engineering", SOURCE_SCIM), ("Local", SOURCE_MANUAL)):
            db.session.add(Group(organisation_id=org.id, display_name=name,
                                 display_name_lower=name.lower(), source=source))
        db.session.commit()
    last_ok = add_activity(org, minutes_ago=30, method="POST", path="/Users")
    add_activity(org, minutes_ago=1, status=401)

    response = admin_client.get("/settings/iam/scim/report.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    report = json.loads(response.data)
    assert report["organisation"] == {"name": "Acme Corp", "key": org.key}
    assert report["scim_base_url"] == f"https://dpms.test/scim/v2/{org.key}"
    assert report["token"] == {"issued": True, "issued_at": issued.isoformat()}
    assert report["last_successful_request"]["time"] == last_ok.time.isoformat()
    assert report["last_successful_request"]["method"] == "POST"
    assert report["managed_users"] == {"active": 2, "deactivated": 3, "deleted_by_idp": 1}
    assert report["managed_groups"] == 1
    deprovisionings = report["deprovisionings"]
    assert (deprovisionings["window_days"], deprovisionings["total"]) == (90, 3)
    by_user = {d["user_name"]: d for d in deprovisionings["items"]}
    assert set(by_user) == {"bob@acme.example", "carl@acme.example", "hand@acme.example"}
    assert by_user["bob@acme.example"]["seconds_to_removal"] == 0.25
    assert by_user["bob@acme.example"]["client"] == "Microsoft.Identity.Provisioning"
    assert by_user["carl@acme.example"]["seconds_to_removal"] == 0.04
    assert by_user["hand@acme.example"]["seconds_to_removal"] is None
    assert by_user["hand@acme.example"]["idp_request_at"] is None
    assert by_user["hand@acme.example"]["removed_by"] == "it-admin@acme.example"
    assert by_user["carl@acme.example"]["kind"] == "deactivated"  # deleted later: no 2nd removal
    assert report["generated_by"] == "it-admin@acme.example"
    assert report["generated_at"]
    assert scim_org.token not in response.get_data(as_text=True)


def test_report_without_a_token_or_requests(admin_client: FlaskClient, scim_org: ScimOrg,
                                            app: Flask) -> None:
    with app.app_context():
        token = scim_tokens.active_token(db.session.get(Organisation, scim_org.org.id))
        assert token is not None
        token.revoked_at = utcnow()
        db.session.commit()
    report = json.loads(admin_client.get("/settings/iam/scim/report.json").data)
    assert report["token"] == {"issued": False, "issued_at": None}
    assert report["last_successful_request"] is None
    assert report["connection_health"]["summary"] == "No requests received yet"
    assert report["deprovisionings"]["items"] == []


def test_printable_report_states_the_same_figures(admin_client: FlaskClient, scim_org: ScimOrg,
                                                  app: Flask) -> None:
    org = scim_org.org
    _managed(app, org, "alice@acme.example")
    bob = _managed(app, org, "bob@acme.example", active=False, deactivated_ago=timedelta(days=1))
    _deactivation_request(app, org, bob, timedelta(days=1, milliseconds=500))
    html = admin_client.get("/settings/iam/scim/report").get_data(as_text=True)
    assert "SCIM provisioning status report" in html
    assert f"https://dpms.test/scim/v2/{org.key}" in html
    assert "1 active, 1 deactivated" in html
    assert "1 removal of access, affecting 1 person." in html
    assert "<td>bob@acme.example</td>" in html and "0.5 s" in html
    assert "data-print" in html and 'href="/settings/iam/scim/report.json"' in html
    assert scim_org.token not in html


def test_report_of_an_unreleased_organisation_states_only_the_rollout_line(
    client: FlaskClient, factory, add_activity: AddActivity
) -> None:
    from tests.conftest import login

    org = factory.org("Globex", released=False)
    factory.it_admin(org, "gina@globex.example")
    add_activity(org, status=403)
    login(client, "gina@globex.example")
    response = client.get("/settings/iam/scim/report.json")
    report = json.loads(response.data)
    assert report["scim_released"] is False
    assert report["summary"].startswith("The SCIM controls are not yet available for Globex.")
    assert "scim_base_url" not in report and "token" not in report
    assert f"/scim/v2/{org.key}" not in response.get_data(as_text=True)
    html = client.get("/settings/iam/scim/report").get_data(as_text=True)
    assert 'data-testid="rollout-pending"' in html
    assert f"/scim/v2/{org.key}" not in html and "SCIM Base URL" not in html
    assert "SCIM provisioning status report" not in html and "data-print" not in html
