"""The report's deprovisionings come from the audit trail: every removal, even if later undone."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, Membership, Organisation
from portal.services import scim_users
from portal.services.audit import CLI_ACTOR, Actor
from tests.activity.conftest import ScimOrg
from tests.conftest import Factory, FrozenClock, count_statements

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA = "SCIM: Okta SCIM Client 1.0.0"


def _post(scim: ScimOrg, name: str) -> str:
    created = scim.call("POST", "/Users", json={"schemas": [USER], "userName": name,
                                                "active": True})
    assert created.status_code in (200, 201), created.get_data(as_text=True)
    return str(created.get_json(force=True)["id"])


def _set_active(scim: ScimOrg, member_id: str, active: bool) -> None:
    answer = scim.call("PATCH", f"/Users/{member_id}", json={
        "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": active}}]})
    assert answer.status_code in (200, 204), answer.get_data(as_text=True)


def _delete(scim: ScimOrg, member_id: str) -> None:
    assert scim.call("DELETE", f"/Users/{member_id}").status_code == 204


def _admin_deactivates(app: Flask, member_id: str, admin_email: str) -> None:
    """Deactivate through the service as a signed-in administrator would."""
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.public_id == member_id))
        admin = db.session.scalar(select(Account).where(Account.email == admin_email))
        assert member is not None and admin is not None
        assert scim_users.set_active(member, False, Actor.of(admin))
        db.session.commit()


def _lifecycle(scim: ScimOrg, app: Flask, clock: FrozenClock) -> dict[str, Any]:
    """Remove access seven times (two later restored, one person twice); return ids and times."""
    old = _post(scim, "old@acme.example")
    _set_active(scim, old, False)  # outside the 90-day window by the end
    clock.advance(days=95)
    ids = {name: _post(scim, f"{name}@acme.example")
           for name in ("alice", "bob", "carl", "dan", "eve", "fay")}
    times: dict[str, Any] = {}
    times["bob_deleted"] = clock.advance(days=1)
    _delete(scim, ids["bob"])
    times["bob_back"] = clock.advance(days=1)
    assert _post(scim, "bob@acme.example") == ids["bob"]  # re-linked, access restored
    times["carl_off"] = clock.advance(days=1)
    _set_active(scim, ids["carl"], False)
    times["carl_on"] = clock.advance(days=1)
    _set_active(scim, ids["carl"], True)
    times["alice_off"] = clock.advance(days=1)
    _set_active(scim, ids["alice"], False)
    times["dan_deleted"] = clock.advance(days=1)
    _delete(scim, ids["dan"])
    times["fay_off"] = clock.advance(days=1)
    _set_active(scim, ids["fay"], False)
    clock.advance(days=1)
    _delete(scim, ids["fay"])  # already without access: no second removal
    times["eve_off"] = clock.advance(days=1)
    _admin_deactivates(app, ids["eve"], "it-admin@acme.example")
    times["bob_deleted_again"] = clock.advance(days=1)
    _delete(scim, ids["bob"])
    clock.advance(hours=2)
    return {"ids": ids, "times": times}


def test_report_lists_every_removal_of_access_including_ones_later_restored(
    admin_client: FlaskClient, scim_org: ScimOrg, app: Flask, factory: Factory,
    clock: FrozenClock
) -> None:
    run = _lifecycle(scim_org, app, clock)
    ids, times = run["ids"], run["times"]
    other = factory.org("Globex")  # another organisation's removals stay out of this report
    with app.app_context():
        globex = db.session.get(Organisation, other.id)
        assert globex is not None
        member = scim_users.create_user(
            globex, scim_users.UserData(user_name="alice@acme.example", active=True), CLI_ACTOR)
        scim_users.set_active(member, False, CLI_ACTOR)
        db.session.commit()

    report = json.loads(admin_client.get("/settings/iam/scim/report.json").data)
    section = report["deprovisionings"]
    assert (section["total"], section["people"], section["later_restored"]) == (7, 6, 2)
    assert section["listed"] == len(section["items"]) == 7
    got = [(d["user_name"], d["kind"], d["access_removed_at"], d["removed_by"],
            d["later_restored_at"]) for d in section["items"]]
    iso = {key: value.isoformat() for key, value in times.items()}
    assert got == [  # newest first
        ("bob@acme.example", "deleted", iso["bob_deleted_again"], OKTA, None),
        ("eve@acme.example", "deactivated", iso["eve_off"], "it-admin@acme.example", None),
        ("fay@acme.example", "deactivated", iso["fay_off"], OKTA, None),
        ("dan@acme.example", "deleted", iso["dan_deleted"], OKTA, None),
        ("alice@acme.example", "deactivated", iso["alice_off"], OKTA, None),
        ("carl@acme.example", "deactivated", iso["carl_off"], OKTA, iso["carl_on"]),
        ("bob@acme.example", "deleted", iso["bob_deleted"], OKTA, iso["bob_back"]),
    ]
    by_kind = {(d["user_name"], d["access_removed_at"]): d for d in section["items"]}
    carl = by_kind[("carl@acme.example", iso["carl_off"])]
    assert carl["member_id"] == ids["carl"]
    assert carl["idp_request_at"] == iso["carl_off"] and carl["seconds_to_removal"] == 0.0
    assert carl["client"] == "Okta SCIM Client 1.0.0"
    eve = by_kind[("eve@acme.example", iso["eve_off"])]
    assert eve["idp_request_at"] is None and eve["seconds_to_removal"] is None
    # The current-state figures still state the present: carl active; alice, eve and old
    # deactivated; bob, dan and fay deleted.
    assert report["managed_users"] == {"active": 1, "deactivated": 3, "deleted_by_idp": 3}


def test_printable_report_marks_restored_access_and_counts_every_removal(
    admin_client: FlaskClient, scim_org: ScimOrg, app: Flask, clock: FrozenClock
) -> None:
    run = _lifecycle(scim_org, app, clock)
    html = admin_client.get("/settings/iam/scim/report").get_data(as_text=True)
    assert "7 removals of access, affecting 6 people; 2 later restored." in html
    assert html.count("<tr data-member=") == 7
    carl_row = html.split(f'<tr data-member="{run["ids"]["carl"]}">')[1].split("</tr>")[0]
    assert f"later restored ({run['times']['carl_on']:%Y-%m-%d %H:%M:%S})" in carl_row
    assert f"<td>{OKTA}</td>" in carl_row
    eve_row = html.split(f'<tr data-member="{run["ids"]["eve"]}">')[1].split("</tr>")[0]
    assert "<td>it-admin@acme.example</td>" in eve_row and "not through SCIM" in eve_row
    assert "old@acme.example" not in html


def _toggle_many(app: Flask, org_id: int, clock: FrozenClock, people: int) -> None:
    """Deactivate and reactivate `people` SCIM users, each twice (4 events apiece)."""
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        assert org is not None
        for i in range(people):
            member = scim_users.create_user(org, scim_users.UserData(
                user_name=f"p{clock.current:%j%H%M%S}-{i}@acme.example", active=True), CLI_ACTOR)
            for active in (False, True, False, True):
                clock.advance(seconds=1)
                scim_users.set_active(member, active, CLI_ACTOR)
        db.session.commit()


def _report_statements(app: Flask, client: FlaskClient) -> tuple[list[str], list[str], Any]:
    """Return the statements of the JSON report and of the printable page, and the JSON."""
    with app.app_context(), count_statements() as as_json:
        report = json.loads(client.get("/settings/iam/scim/report.json").data)
    with app.app_context(), count_statements() as page:
        assert client.get("/settings/iam/scim/report").status_code == 200
    return as_json, page, report


def test_report_runs_the_same_statements_for_few_and_many_removals(
    admin_client: FlaskClient, scim_org: ScimOrg, app: Flask, clock: FrozenClock
) -> None:
    _toggle_many(app, scim_org.org.id, clock, 2)
    _report_statements(app, admin_client)  # warm-up (session, token last-used)
    few_json, few_page, small = _report_statements(app, admin_client)
    _toggle_many(app, scim_org.org.id, clock, 30)
    many_json, many_page, large = _report_statements(app, admin_client)
    assert small["deprovisionings"]["total"] == len(small["deprovisionings"]["items"]) == 4
    assert large["deprovisionings"]["total"] == len(large["deprovisionings"]["items"]) == 64
    assert large["deprovisionings"]["later_restored"] == 64
    assert len(few_json) == len(many_json), (few_json, many_json)
    assert len(few_page) == len(many_page), (few_page, many_page)
    # Totals, the listed removals with their restorations: two statements on the audit trail.
    assert sum("FROM audit_event" in s for s in many_json) == 2, many_json
