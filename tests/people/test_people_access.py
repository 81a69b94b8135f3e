"""Who may reach the People and Groups screens: permissions, organisation scope, CSRF, sidebar."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, GroupRoleMapping, Membership, MembershipRole, Organisation
from portal.permissions import ADMINISTRATOR, AUDITOR, IT_ADMINISTRATOR, MEMBER
from portal.services import roles
from tests.conftest import Factory, csrf_from, login
from tests.people.conftest import Directory

Endpoint = tuple[str, str]  # (method, path with {member}, {group} and {role})

GETS: list[Endpoint] = [
    ("GET", "/people/"), ("GET", "/people/?q=a&status=active"), ("GET", "/people/{member}"),
    ("GET", "/groups/"), ("GET", "/groups/{group}"),
]
POSTS: list[Endpoint] = [
    ("POST", "/people/{member}/profile"), ("POST", "/people/{member}/roles"),
    ("POST", "/people/{member}/roles/{role}/revoke"), ("POST", "/groups/{group}/roles"),
    ("POST", "/groups/{group}/roles/{role}/unmap"),
]


@pytest.fixture
def targets(app: Flask, acme: Organisation, directory: Directory) -> dict[str, str]:
    """Ann (SCIM, manual Member role) in group IT, mapped to Member."""
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann], roles_=[MEMBER])
    with app.app_context():
        role = roles.get_role(MEMBER)
        member = db.session.scalar(select(Membership).where(Membership.public_id == ann))
        db.session.add(MembershipRole(membership_id=member.id, role_id=role.id))
        db.session.commit()
        return {"member": ann, "group": it, "role": str(role.id)}


def _state(app: Flask) -> tuple[int, int, int, list[str | None]]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(MembershipRole)) or 0,
            db.session.scalar(select(func.count()).select_from(GroupRoleMapping)) or 0,
            db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            list(db.session.scalars(select(Membership.display_name).order_by(Membership.id))),
        )


def _send(client: FlaskClient, method: str, path: str, ids: dict[str, str], token: str | None,
          headers: dict[str, str] | None = None) -> int:
    url = path.format(**ids)
    if method == "GET":
        return client.get(url, headers=headers or {}).status_code
    data = {"role_id": ids["role"], "display_name": "Changed", "given_name": "Changed"}
    if token:
        data["csrf_token"] = token
    return client.post(url, data=data, headers=headers or {}).status_code


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_member_without_people_permission_gets_403_everywhere_and_changes_nothing(
    app: Flask, client: FlaskClient, factory: Factory, acme: Organisation,
    targets: dict[str, str], headers: dict[str, str]
) -> None:
    factory.member(acme, "max@acme.example", MEMBER)
    login(client, "max@acme.example")
    token = csrf_from(client.get("/").data)
    before = _state(app)
    for method, path in GETS + POSTS:
        assert _send(client, method, path, targets, token, headers) == 403, (method, path)
    assert _state(app) == before
    fragment = client.get("/people/", headers={"HX-Request": "true"})
    assert b"403 Forbidden" in fragment.data and b"<html" not in fragment.data


def test_signed_out_visitor_is_sent_to_sign_in(client: FlaskClient,
                                                targets: dict[str, str]) -> None:
    for _method, path in GETS:
        response = client.get(path.format(**targets))
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_ids_from_another_organisation_are_404_on_every_endpoint(
    app: Flask, factory: Factory, directory: Directory, admin_client: FlaskClient,
    targets: dict[str, str]
) -> None:
    globex = factory.org("Globex")
    foreign = {"member": directory.scim_member(globex, "eve@globex.example"),
               "group": directory.group(globex, "Globex IT", roles_=[MEMBER]),
               "role": targets["role"]}
    token = csrf_from(admin_client.get("/people/").data)
    before = _state(app)
    for method, path in GETS + POSTS:
        if "{" not in path:
            continue
        assert _send(admin_client, method, path, foreign, token) == 404, (method, path)
    assert _send(admin_client, "POST", "/people/{member}/roles/999999/revoke", targets,
                 token) == 404
    assert _state(app) == before


def test_every_post_needs_the_csrf_token(
    app: Flask, admin_client: FlaskClient, targets: dict[str, str]
) -> None:
    before = _state(app)
    for method, path in POSTS:
        for headers in ({}, {"HX-Request": "true"}):
            assert _send(admin_client, method, path, targets, None, headers) == 400, path
            assert _send(admin_client, method, path, targets, "forged-token", headers) == 400
    assert _state(app) == before


@pytest.mark.parametrize("role, sees", [(IT_ADMINISTRATOR, True), (ADMINISTRATOR, True),
                                        (AUDITOR, True), (MEMBER, False)])
def test_sidebar_offers_people_and_groups_to_those_who_may_open_them(
    client: FlaskClient, factory: Factory, role: str, sees: bool
) -> None:
    factory.member(factory.org(), "someone@acme.example", role)
    login(client, "someone@acme.example")
    html = client.get("/").get_data(as_text=True)
    nav = html[html.index('<nav class="main-nav"'):html.index("</nav>", html.index("main-nav"))]
    assert ('href="/people/"' in nav) is sees and ('href="/groups/"' in nav) is sees
    assert ("IT Settings" in nav) is (role != MEMBER)  # a Member could only meet a 403 there


def test_the_people_entry_is_marked_current_on_people_pages(
    admin_client: FlaskClient, targets: dict[str, str]
) -> None:
    html = admin_client.get(f"/people/{targets['member']}").get_data(as_text=True)
    assert '<a href="/people/" class="active">People</a>' in html


def test_scim_screen_links_to_the_scim_provisioned_people(admin_client: FlaskClient) -> None:
    html = admin_client.get("/settings/iam/scim").get_data(as_text=True)
    assert '<a href="/people/?source=scim">Verify provisioned users' in html
    assert admin_client.get("/people/?source=scim").status_code == 200


def test_an_auditor_reads_people_groups_and_the_audit_log_and_changes_nothing(
    app: Flask, client: FlaskClient, factory: Factory, acme: Organisation,
    targets: dict[str, str]
) -> None:
    """The DPO's role: evidence without the power to rotate a token or change a person."""
    factory.member(acme, "dpo@acme.example", AUDITOR)
    login(client, "dpo@acme.example")
    token = csrf_from(client.get("/").data)
    before = _state(app)
    for method, path in GETS:
        assert _send(client, method, path, targets, token) == 200, (method, path)
    for method, path in POSTS:
        assert _send(client, method, path, targets, token) == 403, (method, path)
    home = client.get("/").get_data(as_text=True)
    assert '<a href="/people/">People</a> and <a href="/groups/">Groups</a>' in home
    group_page = client.get(f"/groups/{targets['group']}").get_data(as_text=True)
    assert "Roles for members of this group" in group_page
    assert "Changes apply immediately" not in group_page  # nothing here changes for them
    for path in ("/settings/iam/scim", "/settings/iam/sso", "/settings/general",
                 "/settings/iam/scim/activity", "/settings/iam/scim/health"):
        assert client.get(path).status_code == 403, path
    report = client.get("/settings/iam/scim/report").get_data(as_text=True)  # audit evidence
    assert "SCIM provisioning status report" in report and "Back to the Audit Log" in report
    assert re.search(r'aria-current="page">Audit Log</a>', report)
    assert 'href="/settings/iam/scim"' not in report.split("</nav>", 2)[-1]  # no way to 403
    assert client.get("/settings/iam/scim/report.json").status_code == 200
    rotate = client.post("/settings/iam/scim/token/rotate", data={"csrf_token": token})
    assert rotate.status_code == 403
    assert _state(app) == before
    assert client.get("/settings/").headers["Location"] == "/settings/audit"
    assert client.get("/settings/audit").status_code == 200
    export = client.get("/settings/audit/export.csv")  # (audited: "audit_log.exported")
    assert export.status_code == 200 and export.content_type.startswith("text/csv")
    html = client.get("/settings/audit").get_data(as_text=True)
    assert 'href="/settings/iam/scim/report"' in html
    sidebar = html[html.index('aria-label="IT Settings"'):]
    sidebar = sidebar[:sidebar.index("</nav>")]
    marked = [m.strip() for m in re.findall(r'class="nav-no-access"[^>]*>([^<]+)<', sidebar)]
    assert marked == ["General", "SCIM", "SSO"]  # listed, and marked: they lead to a 403
    assert re.search(r'aria-current="page">Audit Log</a>', sidebar)
