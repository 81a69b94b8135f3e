"""The Groups screen: list, detail, members, mapping and unmapping roles with the guard."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Group, GroupRoleMapping, Organisation, Role
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
                                 data={"csrf_token": token, "confirm": "yes",
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
                               data={"csrf_token": token, "role_id": role_id, "confirm": "yes"})
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


def _mappings(app: Flask, group_public_id: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(Role.name).join(GroupRoleMapping, GroupRoleMapping.role_id == Role.id)
            .join(Group, Group.id == GroupRoleMapping.group_id)
            .where(Group.public_id == group_public_id)))


def test_mapping_to_the_iam_role_needs_an_explicit_confirmation_or_changes_nothing(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann])
    page = admin_client.get(f"/groups/{it}").get_data(as_text=True)
    role_id = _role_id(app, IT_ADMINISTRATOR)
    # The page offers the dialog for that role (app.js opens it instead of submitting).
    assert f'<option value="{role_id}" data-confirm-dialog="#map-confirm-{role_id}">' in page
    assert f'<dialog id="map-confirm-{role_id}" class="confirm-dialog"' in page
    token = csrf_from(page.encode())
    for headers, confirm in (({"HX-Request": "true"}, None), ({}, None), ({}, "no")):
        data = {"csrf_token": token, "role_id": role_id}
        if confirm is not None:
            data["confirm"] = confirm
        refused = admin_client.post(f"/groups/{it}/roles", headers=headers, data=data)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422
        assert "Mapping IT to IT Administrator lets its 1 member" in html
        assert "nothing was changed" in html and 'data-testid="mapping-error"' in html
        # The refusal offers the confirmation right there (also without JavaScript).
        inline = html.split('data-testid="map-confirm"')[1]
        assert '<input type="hidden" name="confirm" value="yes">' in inline
        assert _mappings(app, it) == [] and directory.roles_of(ann) == set()
    assert refused.headers.get("HX-Reswap") is None  # the whole page, without HTMX
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "group.role_mapped")) is None
    confirmed = admin_client.post(f"/groups/{it}/roles", headers={"HX-Request": "true"},
                                  data={"csrf_token": token, "role_id": role_id, "confirm": "yes"})
    assert confirmed.status_code == 200
    assert _mappings(app, it) == [IT_ADMINISTRATOR]
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}
    # Roles without the IAM permission need no confirmation.
    plain = admin_client.post(f"/groups/{it}/roles", data={"csrf_token": token,
                                                          "role_id": _role_id(app, MEMBER)})
    assert plain.status_code == 302 and sorted(_mappings(app, it)) == [IT_ADMINISTRATOR, MEMBER]


def test_a_mapping_change_keeps_the_members_table_on_the_page_shown(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    app.config["GROUP_MEMBERS_PAGE_SIZE"] = 2
    people = [directory.scim_member(acme, f"u{i}@acme.example", password=None) for i in range(5)]
    it = directory.group(acme, "IT", members=people)
    page = admin_client.get(f"/groups/{it}").get_data(as_text=True)
    token = csrf_from(page.encode())
    nxt = re.search(r'rel="next" href="([^"]+)"', page)[1].replace("&amp;", "&")
    cursor = nxt.split("after=")[1]
    second = admin_client.get(nxt, headers={"HX-Request": "true"}).get_data(as_text=True)
    shown = re.findall(r'<tr data-member="([^"]+)">', second)
    assert shown == people[2:4]
    # The fragment carries its page for the mapping forms (hx-include="#group-members-page").
    assert f'<input type="hidden" name="after" value="{cursor}">' in second
    assert 'hx-include="#group-members-page"' in page
    role_id = _role_id(app, MEMBER)
    mapped = admin_client.post(f"/groups/{it}/roles", headers={"HX-Request": "true"},
                               data={"csrf_token": token, "role_id": role_id, "after": cursor,
                                     "before": ""})
    assert mapped.status_code == 200
    assert list(_member_roles(mapped.get_data(as_text=True))) == people[2:4]
    assert directory.roles_of(people[2]) == {MEMBER}
    unmapped = admin_client.post(f"/groups/{it}/roles/{role_id}/unmap",
                                 headers={"HX-Request": "true"},
                                 data={"csrf_token": token, "after": cursor, "before": ""})
    assert list(_member_roles(unmapped.get_data(as_text=True))) == people[2:4]
    # The table's own (empty) cursor wins over a stale one in the URL: page 1 stays page 1.
    first = admin_client.post(f"/groups/{it}/roles?after={cursor}",
                              headers={"HX-Request": "true"},
                              data={"csrf_token": token, "role_id": role_id, "after": ""})
    assert list(_member_roles(first.get_data(as_text=True))) == people[:2]
    # Without JavaScript the form's action carries the page, and so does the redirect.
    no_js = admin_client.get(f"/groups/{it}?after={cursor}").get_data(as_text=True)
    assert f'action="/groups/{it}/roles?after={cursor}"' in no_js
    plain = admin_client.post(f"/groups/{it}/roles/{role_id}/unmap?after={cursor}",
                              data={"csrf_token": token})
    assert plain.status_code == 302 and plain.headers["Location"] == f"/groups/{it}?after={cursor}"
