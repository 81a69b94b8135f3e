"""Tenant isolation beyond tests/scim/test_isolation.py: filters, references, portal HTMX.

tests/scim/test_isolation.py proves GET/PUT/PATCH/DELETE of another organisation's ids
are 404, `id eq` finds nothing across organisations, and that a POSTed foreign manager or
a PATCH-added foreign member is refused. Here: HEAD and the search endpoints, the filters
that reach across resources (`members.value`, `manager.value`, `groups.value`), every
other way of naming a foreign member or manager (POST/PUT/PATCH-replace, mixed with valid
ids), and the portal's HTMX requests, forms and organisation switch.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation, ScimToken
from portal.permissions import IT_ADMINISTRATOR
from tests.conftest import Factory, csrf_from, login
from tests.scim.conftest import Scim
from tests.security.conftest import db_snapshot

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager"


@pytest.fixture
def theirs(other_scim: Scim) -> dict[str, str]:
    """Globex's boss, her report (managed by her) and a group holding both."""
    boss = other_scim.create_user("boss@globex.example")
    report = other_scim.create_user("report@globex.example", **{ENTERPRISE: {"manager": boss["id"]}})
    group = other_scim.create_group("Globex Staff", [boss["id"], report["id"]])
    return {"boss": boss["id"], "report": report["id"], "group": group["id"]}


def _total(scim: Scim, path: str, body: dict[str, Any] | None = None) -> int:
    response = scim.post(path, body) if body is not None else scim.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    total: int = response.get_json(force=True)["totalResults"]
    return total


def test_head_and_search_never_reveal_another_organisations_resources(
    scim: Scim, other_scim: Scim, theirs: dict[str, str]
) -> None:
    for path in (f"/Users/{theirs['boss']}", f"/Groups/{theirs['group']}"):
        assert scim.request("HEAD", path).status_code == 404
        assert other_scim.request("HEAD", path).status_code == 200
    for endpoint in ("/.search", "/Users/.search", "/Groups/.search"):
        for resource_id in theirs.values():
            body = {"filter": f'id eq "{resource_id}"'}
            assert _total(scim, endpoint, body) == 0, (endpoint, resource_id)
    assert _total(other_scim, "/.search", {"filter": f'id eq "{theirs["group"]}"'}) == 1


@pytest.mark.parametrize("query, owner_total", [
    ('/Groups?filter=members.value eq "{boss}"', 1),
    ('/Groups?filter=members[value eq "{report}"]', 1),
    ('/Groups?filter=id eq "{group}"', 1),
    ('/Users?filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value '
     'eq "{boss}"', 1),
    ('/Users?filter=manager.value eq "{boss}"', 1),
    ('/Users?filter=groups.value eq "{group}"', 2),
    ('/Users?filter=id eq "{report}" or groups.value eq "{group}"', 2),
])
def test_filters_naming_another_organisations_ids_find_nothing(
    scim: Scim, other_scim: Scim, theirs: dict[str, str], query: str, owner_total: int
) -> None:
    ours = scim.create_user("boss@globex.example")  # the same userName, in our organisation
    scim.create_group("Globex Staff", [ours["id"]])
    url = query.format(**theirs)
    assert _total(other_scim, url) == owner_total  # the filter works where the ids live
    assert _total(scim, url) == 0


def test_group_with_a_foreign_member_is_refused_whole_in_every_write(
    app: Flask, scim: Scim, theirs: dict[str, str]
) -> None:
    mine = scim.create_user("ann@acme.example")
    group = scim.create_group("Acme Staff", [mine["id"]])
    path = f"/Groups/{group['id']}"
    before = db_snapshot(app)
    mixed = [{"value": mine["id"]}, {"value": theirs["report"]}]
    attempts = [
        scim.post("/Groups", {"displayName": "Poached", "members": mixed}),
        scim.put(path, {"displayName": "Renamed", "members": mixed}),
        scim.patch(path, {"op": "replace", "path": "members", "value": mixed}),
        scim.patch(path, {"op": "replace", "path": "displayName", "value": "Renamed"},
                   {"op": "add", "path": "members", "value": [{"value": theirs["boss"]}]}),
        scim.patch(path, {"op": "add", "value": {"members": mixed}}),
    ]
    for response in attempts:
        assert response.status_code == 400, response.get_data(as_text=True)
        body = response.get_json(force=True)
        assert body["scimType"] == "invalidValue" and body["status"] == "400"
    assert db_snapshot(app) == before
    assert scim.group_member_ids(group["id"]) == {mine["id"]}


def test_manager_from_another_organisation_is_refused_in_every_write(
    app: Flask, scim: Scim, other_scim: Scim, theirs: dict[str, str]
) -> None:
    boss = scim.create_user("boss@acme.example")
    ann = scim.create_user("ann@acme.example", **{ENTERPRISE: {"manager": boss["id"]}})
    path = f"/Users/{ann['id']}"
    before = db_snapshot(app)
    attempts = [
        scim.put(path, {"userName": "ann@acme.example", ENTERPRISE: {"manager": theirs["boss"]}}),
        scim.patch(path, {"op": "replace", "path": MANAGER, "value": theirs["boss"]}),
        scim.patch(path, {"op": "replace", "path": f"{MANAGER}.value", "value": theirs["boss"]}),
        scim.patch(path, {"op": "add", "value": {MANAGER: {"value": theirs["boss"]}}}),
        scim.post("/Users", {"userName": "bob@acme.example",
                             ENTERPRISE: {"manager": {"value": theirs["boss"]}}}),
    ]
    for response in attempts:
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json(force=True)["scimType"] == "invalidValue"
    assert db_snapshot(app) == before
    assert scim.member(ann["id"]).manager_id == scim.member(boss["id"]).id
    report = other_scim.get(f"/Users/{theirs['report']}").get_json(force=True)
    assert report[ENTERPRISE]["manager"]["value"] == theirs["boss"]


# ---- the portal ------------------------------------------------------------------------

HTMX = {"HX-Request": "true"}


@pytest.fixture
def two_orgs(app: Flask, factory: Factory, scim: Scim, other_scim: Scim,
             theirs: dict[str, str]) -> dict[str, Any]:
    """Acme's IT admin signed in; Globex's people and groups exist through its SCIM API."""
    acme = Organisation(id=scim.org_id, name="Acme Corp")
    factory.member(acme, "it-admin@acme.example", IT_ADMINISTRATOR)
    mine = scim.create_user("ann@acme.example")
    ours = scim.create_group("Acme Staff", [mine["id"]])
    return {**theirs, "mine": mine["id"], "ours": ours["id"]}


def _portal_requests(ids: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    member, group = ids["boss"], ids["group"]
    return [
        ("GET", f"/people/{member}", {}),
        ("GET", f"/groups/{group}", {}),
        ("GET", f"/people/?group={group}", {}),
        ("POST", f"/people/{member}/profile", {"display_name": "Poached"}),
        ("POST", f"/people/{member}/roles", {"role_id": "1"}),
        ("POST", f"/people/{member}/roles/1/revoke", {}),
        ("POST", f"/groups/{group}/roles", {"role_id": "1"}),
        ("POST", f"/groups/{group}/roles/1/unmap", {}),
        ("POST", f"/people/{member}/grants", {"role_id": "1", "until": "2099-01-01T00:00",
                                              "reason": "Poaching"}),
        ("POST", f"/people/{member}/grants/1/end", {}),
    ]


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_portal_answers_404_for_another_organisations_ids_and_changes_nothing(
    app: Flask, client: FlaskClient, two_orgs: dict[str, str], headers: dict[str, str]
) -> None:
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get("/people/").data)
    before = db_snapshot(app)
    for method, url, form in _portal_requests(two_orgs):
        if method == "GET":
            response = client.get(url, headers=headers)
        elif headers:
            response = client.post(url, data=form, headers={**headers, "X-CSRFToken": token})
        else:
            response = client.post(url, data={**form, "csrf_token": token})
        assert response.status_code == 404, (method, url, response.status_code)
        text = response.get_data(as_text=True)
        assert "boss@globex.example" not in text and "Globex Staff" not in text
        if headers:
            assert "<html" not in text  # the HTMX error fragment, not a page
    assert db_snapshot(app) == before
    own = client.get(f"/people/{two_orgs['mine']}", headers=headers)
    assert own.status_code == 200  # the same requests work on the organisation's own ids


def test_switching_organisation_moves_people_and_groups_to_the_new_scope(
    app: Flask, client: FlaskClient, factory: Factory, two_orgs: dict[str, str],
    other_scim: Scim
) -> None:
    globex = Organisation(id=other_scim.org_id, name="Globex")
    factory.member(globex, "it-admin@acme.example", IT_ADMINISTRATOR)  # an admin in both
    login(client, "it-admin@acme.example")
    # The list lets e-mails wrap at <wbr>; compare the text a reader sees.
    assert "ann@acme.example" in client.get("/people/").get_data(as_text=True).replace("<wbr>", "")
    assert client.get(f"/people/{two_orgs['boss']}").status_code == 404
    token = csrf_from(client.get("/").data)
    client.post("/switch-organisation", data={"organisation_id": str(other_scim.org_id),
                                              "csrf_token": token})
    people = client.get("/people/").get_data(as_text=True).replace("<wbr>", "")
    assert "boss@globex.example" in people and "ann@acme.example" not in people
    assert client.get(f"/people/{two_orgs['boss']}").status_code == 200
    for url in (f"/people/{two_orgs['mine']}", f"/groups/{two_orgs['ours']}"):
        assert client.get(url).status_code == 404
        assert client.get(url, headers=HTMX).status_code == 404


def test_break_glass_form_cannot_reach_a_member_of_another_organisation(
    app: Flask, client: FlaskClient, factory: Factory, two_orgs: dict[str, str],
    other_scim: Scim
) -> None:
    globex = Organisation(id=other_scim.org_id, name="Globex")
    factory.member(globex, "admin@globex.example", IT_ADMINISTRATOR)
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get("/settings/iam/sso").data)
    before = db_snapshot(app)
    response = client.post("/settings/iam/sso/break-glass", follow_redirects=True,
                           data={"email": "admin@globex.example", "break_glass": "on",
                                 "csrf_token": token})
    assert "No member of this organisation has that email address." in response.get_data(
        as_text=True)
    assert db_snapshot(app) == before


def test_rotate_form_with_another_organisations_token_id_rotates_nothing(
    app: Flask, client: FlaskClient, two_orgs: dict[str, str], scim: Scim, other_scim: Scim
) -> None:
    with app.app_context():
        foreign_id = db.session.scalar(select(ScimToken.id).where(
            ScimToken.organisation_id == other_scim.org_id))
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get("/settings/iam/scim").data)
    before = db_snapshot(app)
    for headers in ({}, HTMX):
        response = client.post("/settings/iam/scim/token/rotate",
                               data={"token_id": str(foreign_id), "csrf_token": token},
                               headers=headers)
        # Refused like a stale id (409), so the answer does not tell whether the id exists.
        assert response.status_code == 409
        assert "dpms_scim_" not in response.get_data(as_text=True).replace("dpms_scim_…", "")
    assert db_snapshot(app) == before
    assert scim.get("/Users").status_code == 200 and other_scim.get("/Users").status_code == 200


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_ending_another_organisations_grant_through_an_own_member_is_404(
    app: Flask, client: FlaskClient, two_orgs: dict[str, str], other_scim: Scim,
    headers: dict[str, str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from portal.models import Membership, RoleGrant
    from portal.services import roles

    with app.app_context():
        boss = db.session.scalar(select(Membership).where(
            Membership.public_id == two_orgs["boss"]))
        assert boss is not None
        grant = RoleGrant(organisation_id=other_scim.org_id, membership_id=boss.id,
                          role_id=roles.get_role(IT_ADMINISTRATOR).id, reason="Audit",
                          until=datetime.now(UTC) + timedelta(days=3),
                          granted_by_label="Globex admin")
        db.session.add(grant)
        db.session.commit()
        grant_id = grant.id
    login(client, "it-admin@acme.example")
    token = csrf_from(client.get("/people/").data)
    before = db_snapshot(app)
    for member in (two_orgs["mine"], two_orgs["boss"]):  # our member, or theirs: both 404
        url = f"/people/{member}/grants/{grant_id}/end"
        if headers:
            response = client.post(url, headers={**headers, "X-CSRFToken": token})
        else:
            response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 404, (member, response.status_code)
    assert db_snapshot(app) == before
    with app.app_context():
        assert db.session.get(RoleGrant, grant_id).ended_at is None


# ---- CSRF on every state-changing portal route ------------------------------------------

CSRF_EXEMPT = {"sso.acs"}  # the IdP posts the SAML response cross-site; it carries a signature


def test_every_state_changing_portal_route_refuses_a_request_without_csrf_token(
    app: Flask, client: FlaskClient, factory: Factory, two_orgs: dict[str, str], scim: Scim
) -> None:
    acme = Organisation(id=scim.org_id, name="Acme Corp")
    factory.member(acme, "support@acme.example", IT_ADMINISTRATOR, support=True)
    login(client, "support@acme.example")
    values = {"public_id": two_orgs["mine"], "role_id": "1", "grant_id": "1", "key": scim.key,
              "note_id": "1",
              "org_key": scim.key}
    routes = [(rule, method) for rule in app.url_map.iter_rules()
              if rule.endpoint.split(".")[0] != "scim" and rule.endpoint not in CSRF_EXEMPT
              for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"})]
    assert len(routes) >= 15  # sign-in, sign-out, switch, tokens, SSO, people, groups, support
    before = db_snapshot(app)
    for rule, method in routes:
        url = rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]
        for headers in ({}, {**HTMX, "X-CSRFToken": "forged"}):
            response = client.open(url, method=method, headers=headers,
                                   data={"display_name": "x", "role_id": "1", "token_id": "1"})
            assert response.status_code == 400, (rule.endpoint, headers, response.status_code)
    assert db_snapshot(app) == before
    assert client.get("/people/").status_code == 200  # still signed in: sign-out was refused too
