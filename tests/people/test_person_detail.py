"""One person's page: role sources, the IdP badge, read-only SCIM fields, manual roles, history."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Membership, MembershipRole, Organisation
from portal.permissions import ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER
from portal.services import roles
from portal.services.audit import CLI_ACTOR
from tests.conftest import csrf_from
from tests.people.conftest import Directory


def _get(app: Flask, public_id: str) -> Membership:
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.public_id == public_id))
        db.session.expunge(member)
        return member


def _admin_id(app: Flask) -> str:
    with app.app_context():
        return db.session.scalar(select(Membership.public_id)
                                 .where(Membership.user_name_lower == "it-admin@acme.example"))


def _count(app: Flask, action: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == action)) or 0


def _role_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-role="([^"]+)" data-source="(manual|group)">', html)


def test_detail_shows_every_role_and_where_it_comes_from(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    it = directory.group(acme, "IT Admins", members=[ann], roles_=[IT_ADMINISTRATOR])
    directory.group(acme, "Ops", members=[ann], roles_=[IT_ADMINISTRATOR, MEMBER])
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.public_id == ann))
        roles.grant_manual_role(member, roles.get_role(MEMBER), CLI_ACTOR)
        db.session.commit()
    html = admin_client.get(f"/people/{ann}").get_data(as_text=True)
    assert _role_rows(html) == [(IT_ADMINISTRATOR, "group"), (IT_ADMINISTRATOR, "group"),
                                (MEMBER, "manual"), (MEMBER, "group")]
    assert f'via group <a href="/groups/{it}">IT Admins</a>' in html
    assert "Ann Lee" in html and "ann@acme.example" in html


def test_scim_managed_member_has_a_read_only_profile_with_one_idp_badge_on_it(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    html = admin_client.get(f"/people/{ann}").get_data(as_text=True)
    # Said once, where it applies: on the Profile card whose fields the IdP owns.
    assert html.count("Managed by your identity provider") == 1
    assert html.count('data-testid="idp-badge"') == 1
    profile = html.split('id="profile-title"')[1].split("</section>")[0]
    assert 'data-testid="idp-badge"' in profile
    assert f'action="/people/{ann}/profile"' not in html and "Edit profile" not in html
    assert 'data-field="display_name">Ann Lee<' in html


def test_manual_member_has_no_idp_badge_and_an_editable_profile(
    app: Flask, admin_client: FlaskClient
) -> None:
    html = admin_client.get(f"/people/{_admin_id(app)}").get_data(as_text=True)
    assert 'data-testid="idp-badge"' not in html
    assert "Edit profile" in html and 'name="given_name"' in html


def test_server_refuses_changes_to_idp_owned_fields_of_a_scim_member(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    before = _get(app, ann)
    token = csrf_from(admin_client.get(f"/people/{ann}").data)
    response = admin_client.post(f"/people/{ann}/profile", data={
        "csrf_token": token, "display_name": "Mallory", "department": "Finance"})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Display name, Department: managed by your identity provider" in html
    assert "Nothing was changed" in html
    after = _get(app, ann)
    assert (after.display_name, after.department, after.version, after.updated_at) == \
        ("Ann Lee", None, before.version, before.updated_at)
    assert _count(app, "member.profile_updated") == 0


def test_manual_member_profile_is_saved_and_audited(
    app: Flask, admin_client: FlaskClient
) -> None:
    admin = _admin_id(app)
    token = csrf_from(admin_client.get(f"/people/{admin}").data)
    response = admin_client.post(f"/people/{admin}/profile", data={
        "csrf_token": token, "display_name": " Ada Admin ", "given_name": "Ada",
        "family_name": "", "title": "CISO", "department": "",
        "user_name": "evil@acme.example", "active": "false"})  # not editable: ignored
    assert response.status_code == 302
    member = _get(app, admin)
    assert (member.display_name, member.given_name, member.title) == ("Ada Admin", "Ada", "CISO")
    assert member.user_name == "it-admin@acme.example" and member.active
    assert member.version == 2
    with app.app_context():
        event = db.session.scalar(select(AuditEvent)
                                  .where(AuditEvent.action == "member.profile_updated"))
        assert event.target_id == admin
        assert event.details == {"fields": ["display_name", "given_name", "title"]}
    assert b"Profile saved." in admin_client.get(f"/people/{admin}").data


def test_too_long_profile_value_is_a_clear_error_and_saves_nothing(
    app: Flask, admin_client: FlaskClient
) -> None:
    admin = _admin_id(app)
    token = csrf_from(admin_client.get(f"/people/{admin}").data)
    response = admin_client.post(f"/people/{admin}/profile", data={
        "csrf_token": token, "title": "x" * 201, "given_name": "Ada"})
    assert response.status_code == 422
    assert b"Job title can have at most 200 characters." in response.data
    assert _get(app, admin).given_name is None


def test_history_lists_this_members_audit_events_only(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    bob = directory.scim_member(acme, "bob@acme.example")
    with app.app_context():
        for public_id in (ann, bob):
            member = db.session.scalar(select(Membership).where(Membership.public_id == public_id))
            roles.grant_manual_role(member, roles.get_role(MEMBER), CLI_ACTOR)
        db.session.commit()
    html = admin_client.get(f"/people/{ann}").get_data(as_text=True)
    history = html[html.index("Provisioning history"):]
    assert history.count('data-action="member.role_granted"') == 1
    assert '<span class="muted">Role:</span> Member' in history and "command line" in history


def test_granting_and_revoking_a_manual_role_through_the_page(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    with app.app_context():
        role_id = roles.get_role(ADMINISTRATOR).id
    token = csrf_from(admin_client.get(f"/people/{ann}").data)
    granted = admin_client.post(f"/people/{ann}/roles", data={"csrf_token": token,
                                                             "role_id": role_id})
    assert granted.status_code == 302
    assert directory.roles_of(ann) == {ADMINISTRATOR}
    assert "now holds Administrator" in admin_client.get(f"/people/{ann}").get_data(as_text=True)
    fragment = admin_client.post(f"/people/{ann}/roles/{role_id}/revoke",
                                 data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.data.startswith(b'<section class="card" id="member-roles"')
    assert b'data-testid="no-roles"' in fragment.data
    assert directory.roles_of(ann) == set()
    assert _count(app, "member.role_granted") == 2  # the IT admin's own, then Ann's
    assert _count(app, "member.role_revoked") == 1


def test_revoking_the_last_iam_admins_role_is_refused_next_to_the_form(
    app: Flask, admin_client: FlaskClient
) -> None:
    admin = _admin_id(app)
    with app.app_context():
        role_id = roles.get_role(IT_ADMINISTRATOR).id
    token = csrf_from(admin_client.get(f"/people/{admin}").data)
    for headers in ({}, {"HX-Request": "true"}):
        response = admin_client.post(f"/people/{admin}/roles/{role_id}/revoke",
                                     data={"csrf_token": token}, headers=headers)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        error = re.search(r'<p class="field-error" id="role-error"[^>]*>([^<]+)</p>', html)
        assert error and "nobody who can manage Identity &amp; Access Management" in error[1]
        assert ("<html" in html) is (not headers)
        if headers:  # app.js swaps a 4xx fragment in only when the server marks it so
            assert response.headers["HX-Reswap"] == "outerHTML"
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.public_id == admin))
        assert db.session.get(MembershipRole, (member.id, role_id)) is not None
    assert _count(app, "member.role_revoked") == 0


def test_granting_a_role_that_does_not_exist_is_a_clear_error(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    token = csrf_from(admin_client.get(f"/people/{ann}").data)
    for value in ("999999", "not-a-number", ""):
        response = admin_client.post(f"/people/{ann}/roles",
                                     data={"csrf_token": token, "role_id": value})
        assert response.status_code == 422, value
        assert b'data-testid="role-error"' in response.data
    assert directory.roles_of(ann) == set()


def test_history_and_audit_log_show_the_same_readable_details(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    from portal.services import audit

    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    with app.app_context():
        org = db.session.get(Organisation, acme.id)
        for action, details in (
            ("member.provisioned", {"active": True}),
            ("member.deprovisioned", {"received_at": "2026-03-02T12:00:05.123456+00:00",
                                      "was_active": False, "groups_left": 2}),
            ("member.updated", {"changed": ["display_name", "emails", "external_id"]}),
        ):
            audit.record(audit.Actor("Okta SCIM"), action, org, target_type="member",
                         target_id=ann, target_label="ann@acme.example", details=details)
        db.session.commit()
    person = admin_client.get(f"/people/{ann}").get_data(as_text=True)
    log = admin_client.get("/settings/audit").get_data(as_text=True)
    history = person[person.index('id="history-title"'):]
    for html in (history, log):
        assert '<span class="muted">Active:</span> Yes</div>' in html
        assert '<span class="muted">Was active:</span> No</div>' in html
        assert ('<span class="muted">Received:</span> <time datetime="2026-03-02T12:00:05.123456'
                '+00:00">2026-03-02 12:00:05</time>') in html
        assert '<span class="muted">Changed:</span> Display name, Emails, External ID</div>' in html
        cells = " ".join(re.findall(r'<td class="small cell-details">(.*?)</td>', html, re.S))
        shown = re.sub(r"<[^>]+>", "", cells)  # the words a reader sees
        assert "Yes" in shown and not re.search(r"\b(True|true|False|false)\b", shown)
        assert "2026-03-02T" not in shown and ann not in shown


def test_history_audit_log_and_group_history_name_actions_in_words_and_keep_the_code(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    from portal.services import audit

    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    staff = directory.group(acme, "Staff", members=[ann])
    with app.app_context():
        org = db.session.get(Organisation, acme.id)
        audit.record(audit.Actor("Okta SCIM"), "member.deactivated", org, target_type="member",
                     target_id=ann, target_label="ann@acme.example")
        audit.record(audit.Actor("Okta SCIM"), "group.members_removed", org, target_type="group",
                     target_id=staff, target_label="Staff", details={"count": 1, "members": [ann]})
        db.session.commit()
    person = admin_client.get(f"/people/{ann}").get_data(as_text=True)
    group = admin_client.get(f"/groups/{staff}").get_data(as_text=True)
    log = admin_client.get("/settings/audit").get_data(as_text=True)
    for html, code, words in ((person, "member.deactivated", "Person deactivated"),
                              (log, "member.deactivated", "Person deactivated"),
                              (group, "group.members_removed", "Members removed from the group"),
                              (log, "group.members_removed", "Members removed from the group")):
        cells = re.findall(r'<td class="cell-action">(.*?)</td>', html, re.S)
        cell = next(c for c in cells if f'title="{code}"' in c)
        assert f'<span class="action-label" title="{code}">{words}</span>' in cell
        assert re.sub(r"<[^>]+>", "", cell.split("<br>")[1]) == code  # the code, underneath
    # The action filter offers the words too, and still filters by the code.
    assert '<option value="member.deactivated" >Person deactivated (member.deactivated)' in log
