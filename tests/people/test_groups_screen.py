"""The Groups screen: list, detail, members, mapping and unmapping roles with the guard."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Group, GroupRoleMapping, Organisation
from portal.permissions import ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER
from portal.services import audit, roles
from tests.conftest import Factory, csrf_from, login
from tests.people.conftest import Directory


def _group_rows(html: bytes) -> list[str]:
    return re.findall(r'<tr data-group="([^"]+)">', html.decode())


def _role_id(app: Flask, name: str) -> int:
    with app.app_context():
        return roles.get_role(name).id


def test_groups_list_shows_name_source_member_count_and_mapped_roles(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    people = [directory.scim_member(acme, f"u{i}@acme.example", password=None) for i in range(3)]
    it = directory.group(acme, "IT Admins", members=people, roles_=[IT_ADMINISTRATOR, MEMBER])
    directory.group(acme, "Handmade", source="manual")
    html = admin_client.get("/groups/").get_data(as_text=True)
    row = re.search(rf'<tr data-group="{it}">(.*?)</tr>', html, re.S)[1]
    assert "IT Admins" in row and 'data-source="scim"' in row
    assert '<td data-testid="member-count">3</td>' in row
    assert '<span class="pill">IT Administrator</span><span class="pill">Member</span>' in row
    assert "2 groups" in html and 'data-source="manual"' in html


def test_groups_list_searches_and_pages_by_name(
    app: Flask, admin_client: FlaskClient, factory: Factory, acme: Organisation,
    directory: Directory
) -> None:
    app.config["GROUPS_PAGE_SIZE"] = 2
    ids = [directory.group(acme, name) for name in ("Alpha", "Beta", "Gamma", "Delta", "Epsilon")]
    directory.group(factory.org("Globex"), "Alpha Globex")
    first = admin_client.get("/groups/")
    assert len(_group_rows(first.data)) == 2 and b"5 groups" in first.data
    nxt = re.search(rb'rel="next" href="([^"]+)"', first.data)[1].decode().replace("&amp;", "&")
    second = admin_client.get(nxt, headers={"HX-Request": "true"})
    assert second.data.lstrip().startswith(b'<div id="groups-table"')
    assert set(_group_rows(first.data)).isdisjoint(_group_rows(second.data))
    assert _group_rows(admin_client.get("/groups/?q=ALPH").data) == [ids[0]]


def test_group_detail_lists_members_in_pages_and_its_mapped_roles(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    app.config["GROUP_MEMBERS_PAGE_SIZE"] = 2
    people = [directory.scim_member(acme, f"u{i}@acme.example", password=None) for i in range(3)]
    outsider = directory.scim_member(acme, "out@acme.example", password=None)
    it = directory.group(acme, "IT", members=people, roles_=[MEMBER])
    page = admin_client.get(f"/groups/{it}")
    html = page.get_data(as_text=True)
    first = re.findall(r'<tr data-member="([^"]+)">', html)
    assert len(first) == 2 and outsider not in first
    assert '<dd data-testid="group-member-total">3</dd>' in html
    assert '<li data-role="Member">' in html
    nxt = re.search(r'rel="next" href="([^"]+)"', html)[1].replace("&amp;", "&")
    rest = admin_client.get(nxt, headers={"HX-Request": "true"})
    assert rest.data.lstrip().startswith(b'<div id="group-members"')
    assert re.findall(r'<tr data-member="([^"]+)">', rest.get_data(as_text=True)) == \
        [p for p in people if p not in first]


def test_mapping_a_role_on_the_group_page_gives_its_members_the_role(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann])
    token = csrf_from(admin_client.get(f"/groups/{it}").data)
    response = admin_client.post(f"/groups/{it}/roles", headers={"HX-Request": "true"},
                                 data={"csrf_token": token,
                                       "role_id": _role_id(app, IT_ADMINISTRATOR)})
    assert response.status_code == 200
    assert response.data.startswith(b'<section class="card" id="group-mappings"')
    assert b'<li data-role="IT Administrator">' in response.data
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}
    plain = admin_client.post(f"/groups/{it}/roles", data={
        "csrf_token": token, "role_id": _role_id(app, MEMBER)})
    assert plain.status_code == 302 and plain.headers["Location"] == f"/groups/{it}"
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR, MEMBER}
    with app.app_context():
        events = db.session.scalars(select(AuditEvent.details)
                                    .where(AuditEvent.action == "group.role_mapped")).all()
        assert [e["role"] for e in events] == [IT_ADMINISTRATOR, MEMBER]
    assert b'data-action="group.role_mapped"' in admin_client.get(f"/groups/{it}").data


def _member_roles(html: str) -> dict[str, list[str]]:
    """Return each member row's role pills from an out-of-band members table in `html`."""
    oob = re.search(r'<div id="group-members" class="listing" hx-swap-oob="true">(.*?)</table>',
                    html, re.S)
    assert oob, "no out-of-band members table in the response"
    rows = re.findall(r'<tr data-member="([^"]+)">(.*?)</tr>', oob[1], re.S)
    return {member: [re.sub(r"<[^>]+>", "", pill) for pill in re.findall(
        r'<span class="pill[^"]*"[^>]*>(.*?)</span>', cells.split("</td>")[3])] or
        (["none"] if ">none<" in cells else []) for member, cells in rows}


def test_mapping_a_role_over_htmx_updates_the_members_roles_in_the_same_response(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    ben = directory.scim_member(acme, "ben@acme.example")
    it = directory.group(acme, "IT", members=[ann, ben])
    page = admin_client.get(f"/groups/{it}").get_data(as_text=True)
    assert page.count('<span class="muted small">none</span>') == 2
    token = csrf_from(page.encode())
    role_id = _role_id(app, IT_ADMINISTRATOR)
    mapped = admin_client.post(f"/groups/{it}/roles", headers={"HX-Request": "true"},
                               data={"csrf_token": token, "role_id": role_id})
    html = mapped.get_data(as_text=True)
    assert mapped.status_code == 200 and html.startswith('<section class="card" id="group-mappings"')
    assert _member_roles(html) == {ann: [IT_ADMINISTRATOR], ben: [IT_ADMINISTRATOR]}
    assert directory.roles_of(ann) == directory.roles_of(ben) == {IT_ADMINISTRATOR}
    history = html.split('<div id="group-history" hx-swap-oob="true">')[1]
    assert 'data-action="group.role_mapped"' in history
    unmapped = admin_client.post(f"/groups/{it}/roles/{role_id}/unmap",
                                 headers={"HX-Request": "true"}, data={"csrf_token": token})
    assert unmapped.status_code == 200
    assert _member_roles(unmapped.get_data(as_text=True)) == {ann: ["none"], ben: ["none"]}
    assert directory.roles_of(ann) == set()


def test_unmapping_refused_by_the_guard_shows_the_reason_next_to_the_form(
    app: Flask, client: FlaskClient, factory: Factory, directory: Directory
) -> None:
    org = factory.org("Solo Ltd")
    ann = directory.scim_member(org, "ann@solo.example")
    it = directory.group(org, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    login(client, "ann@solo.example")
    token = csrf_from(client.get(f"/groups/{it}").data)
    role_id = _role_id(app, IT_ADMINISTRATOR)
    for headers in ({"HX-Request": "true"}, {}):
        response = client.post(f"/groups/{it}/roles/{role_id}/unmap",
                               data={"csrf_token": token}, headers=headers)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        form_end = html.index("Map role</button>")
        error_at = html.index('<p class="field-error" id="mapping-error"')
        assert error_at > form_end and "would leave Solo Ltd with nobody" in html[error_at:]
        assert response.headers.get("HX-Reswap") == ("outerHTML" if headers else None)
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.public_id == it))
        assert db.session.get(GroupRoleMapping, (group.id, role_id)) is not None
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}


def test_an_it_admin_cannot_map_a_group_to_a_role_with_more_permissions_than_they_hold(
    app: Flask, client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    with app.app_context():  # a custom role with a permission IT Administrator lacks
        custom = roles.get_role(ADMINISTRATOR)
        custom.permissions = [*custom.permissions, "billing.manage"]
        db.session.commit()
    it = directory.group(acme, "IT")
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get(f"/groups/{it}").data)
    response = client.post(f"/groups/{it}/roles", data={
        "csrf_token": token, "role_id": _role_id(app, ADMINISTRATOR)})
    assert response.status_code == 422
    assert b"permissions you do not hold yourself (billing.manage)" in response.data
    with app.app_context():
        assert db.session.scalar(select(GroupRoleMapping)) is None


def test_group_history_names_members_and_shortens_long_lists(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    it = directory.group(acme, "IT")
    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    gone = "0b9f5b4e-0000-4000-8000-000000000000"  # no longer known: stays an id
    ids = [ann, gone, "m3", "m4", "m5", "m6", "m7"]
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.public_id == it))
        audit.record(audit.Actor("Okta SCIM"), "group.members_added", group.organisation,
                     target_type="group", target_id=it, target_label="IT",
                     details={"count": 9, "members": ids})
        db.session.commit()
    html = admin_client.get(f"/groups/{it}").get_data(as_text=True)
    history = html[html.index('id="history-title"'):]
    assert ('<div class="detail" data-key="count"><span class="muted">Count:</span> 9</div>'
            in history)
    assert ('<div class="detail" data-key="members"><span class="muted">Members:</span> '
            f"Ann Lee, {gone}, m3, m4, m5 … (+4 more)</div>") in history
    assert ann not in history.split('data-key="members"')[1].split("</div>")[0]
    assert "Okta SCIM" in html
