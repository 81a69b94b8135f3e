"""Read-only ids, a User managing themself, control characters and huge paging values.

RFC 7644 §3.5.2: changing `id` or `meta` is a 400 `mutability`; Okta's path-less replace
and its PUT carry the resource's own id, which must keep working. A PUT with another
resource's id is refused the same way (documented in scim_api.bodies).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Membership
from tests.scim.conftest import Scim
from tests.security.conftest import db_snapshot

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def world(scim: Scim) -> dict[str, str]:
    """Ann managed by Bob, and a group holding both."""
    bob = scim.create_user("bob@acme.example", displayName="Bob")
    ann = scim.create_user("ann@acme.example", displayName="Ann",
                           **{ENTERPRISE: {"manager": bob["id"]}})
    group = scim.create_group("Staff", [ann["id"], bob["id"]])
    return {"ann": ann["id"], "bob": bob["id"], "group": group["id"]}


def _error(response: Any, scim_type: str, mentions: str) -> dict[str, Any]:
    assert response.status_code == 400, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == "400" and body["scimType"] == scim_type, body
    assert mentions.lower() in body["detail"].lower(), body
    return body


# ---- read-only id and meta ---------------------------------------------------------------

READ_ONLY_PATHS = ["id", "ID", "meta", "meta.lastModified", "meta.created"]


@pytest.mark.parametrize("resource", ["Users", "Groups"])
@pytest.mark.parametrize("path", READ_ONLY_PATHS)
@pytest.mark.parametrize("op", ["replace", "Add", "remove"])
def test_patch_path_naming_id_or_meta_is_400_mutability_and_changes_nothing(
    app: Flask, scim: Scim, world: dict[str, str], resource: str, path: str, op: str
) -> None:
    target = f"/{resource}/{world['ann' if resource == 'Users' else 'group']}"
    schema = CORE_USER if resource == "Users" else CORE_GROUP
    before = db_snapshot(app)
    for written in (path, f"{schema}:{path}"):
        operation = {"op": op, "path": written, "value": "x"}
        _error(scim.patch(target, operation), "mutability", path.split(".")[0])
    assert db_snapshot(app) == before


@pytest.mark.parametrize("resource", ["Users", "Groups"])
@pytest.mark.parametrize("other_id", ["hijack", 5, "OTHER"])
def test_pathless_value_changing_the_id_is_400_mutability_and_changes_nothing(
    app: Flask, scim: Scim, world: dict[str, str], resource: str, other_id: Any
) -> None:
    own = world["ann" if resource == "Users" else "group"]
    other_id = world["bob"] if other_id == "OTHER" else other_id
    before = db_snapshot(app)
    response = scim.patch(f"/{resource}/{own}", {"op": "replace", "value": {
        "id": other_id, "displayName": "Renamed"}})
    _error(response, "mutability", "id")
    assert db_snapshot(app) == before


def test_okta_pathless_replace_with_the_users_own_id_and_meta_still_applies(
    scim: Scim, world: dict[str, str]
) -> None:
    ann = world["ann"]
    response = scim.patch(f"/Users/{ann}", {"op": "replace", "value": {
        "id": ann, "meta": {"resourceType": "User"}, "active": False, "displayName": "Ann L"}})
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = scim.member(ann)
    assert stored.active is False and stored.display_name == "Ann L" and stored.public_id == ann


def test_okta_group_rename_with_its_own_id_in_the_value_still_applies(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    group = world["group"]
    response = scim.patch(f"/Groups/{group}", {"op": "replace", "value": {
        "id": group.upper(), "displayName": "Renamed"}})
    assert response.status_code == 204, response.get_data(as_text=True)
    assert scim.get(f"/Groups/{group}").get_json(force=True)["displayName"] == "Renamed"


def test_put_with_the_own_id_is_200_and_with_another_id_is_400_mutability(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    ann, bob, group = world["ann"], world["bob"], world["group"]
    doc = scim.get(f"/Users/{ann}").get_json(force=True)
    before = db_snapshot(app)
    _error(scim.put(f"/Users/{ann}", {**doc, "id": bob, "displayName": "X"}), "mutability", "id")
    _error(scim.put(f"/Groups/{group}", {"id": bob, "displayName": "X"}), "mutability", "id")
    assert db_snapshot(app) == before
    same = scim.put(f"/Users/{ann}", {**doc, "displayName": "Ann PUT"})  # Okta: GET then PUT
    assert same.status_code == 200 and scim.member(ann).display_name == "Ann PUT"
    renamed = scim.put(f"/Groups/{group}", {"id": group, "displayName": "Staff 2"})
    assert renamed.status_code == 200 and renamed.get_json(force=True)["displayName"] == "Staff 2"
    for unset in (None, ""):  # a null or empty id is unset, as null is for every attribute
        response = scim.put(f"/Users/{ann}", {**doc, "id": unset, "title": f"T{unset}"})
        assert response.status_code == 200 and scim.member(ann).title == f"T{unset}"


# ---- a User as their own manager ---------------------------------------------------------

def test_user_cannot_be_made_their_own_manager_in_any_write(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    ann = world["ann"]
    url = f"/Users/{ann}"
    before = db_snapshot(app)
    attempts = [
        scim.put(url, {"userName": "ann@acme.example", ENTERPRISE: {"manager": {"value": ann}}}),
        scim.patch(url, {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": ann}),
        scim.patch(url, {"op": "Add", "path": f"{ENTERPRISE}:manager.value", "value": ann}),
        scim.patch(url, {"op": "replace", "value": {f"{ENTERPRISE}:manager": [{"value": ann}]}}),
    ]
    for response in attempts:
        _error(response, "invalidValue", "own manager")
    assert db_snapshot(app) == before
    assert scim.member(ann).manager_id == scim.member(world["bob"]).id  # Bob is still it


# ---- control characters in userName ------------------------------------------------------

@pytest.mark.parametrize("name", ["ann\tb@acme.example", "ann\n@acme.example", "a\rb",
                                  "a\x7fb", "a\x1bb", "a\u0085b", "a\u2028b"])
def test_control_characters_in_user_name_are_400_in_every_write(
    app: Flask, scim: Scim, world: dict[str, str], name: str
) -> None:
    url = f"/Users/{world['ann']}"
    before = db_snapshot(app)
    for response in (scim.post("/Users", {"userName": name}),
                     scim.put(url, {"userName": name}),
                     scim.patch(url, {"op": "replace", "path": "userName", "value": name}),
                     scim.patch(url, {"op": "replace", "value": {"userName": name}})):
        _error(response, "invalidValue", "userName")
    assert db_snapshot(app) == before


def test_a_template_s_trailing_newline_around_user_name_is_trimmed(scim: Scim) -> None:
    created = scim.create_user("cy@acme.example\n")
    assert scim.member(created["id"]).user_name == "cy@acme.example"


def test_users_stored_before_the_rules_can_still_be_deactivated_and_replaced(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    """A PATCH re-reads the whole stored document: old values must not block a leaver."""
    ann = world["ann"]
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.public_id == ann))
        assert member is not None
        member.user_name, member.manager_id = "ann\t@acme.example", member.id
        db.session.commit()
    entra = scim.patch(f"/Users/{ann}", {"op": "Replace", "path": "active", "value": "False"})
    assert entra.status_code == 200, entra.get_data(as_text=True)
    assert scim.member(ann).active is False
    stored = scim.get(f"/Users/{ann}").get_json(force=True)
    okta = scim.put(f"/Users/{ann}", {**stored, "active": True})  # GET, then PUT it back
    assert okta.status_code == 200, okta.get_data(as_text=True)
    after = scim.member(ann)
    assert after.active is True and after.user_name == "ann\t@acme.example"
    assert after.manager_id == after.id
    # Only a change to such a value is refused.
    _error(scim.patch(f"/Users/{ann}", {"op": "replace", "path": "userName",
                                          "value": "ann\tb@acme.example"}),
           "invalidValue", "userName")


@pytest.mark.parametrize("name", ["zoë.łukasz@例え.jp", "Ünïcödé 名前", "محمد", "o'brien+x"])
def test_user_names_with_unicode_letters_still_work(scim: Scim, name: str) -> None:
    created = scim.create_user(name)
    assert scim.member(created["id"]).user_name == name


# ---- paging bounds -----------------------------------------------------------------------

HUGE = "1" + "0" * 30  # 10**30: 31 digits


@pytest.mark.parametrize("query, start, items", [
    (f"startIndex={HUGE}", 2**31, 0), (f"startIndex={'9' * 5000}", 2**31, 0),
    (f"startIndex=-{HUGE}", 1, 2), (f"count={HUGE}", 1, 2), (f"count=-{HUGE}", 1, 0),
    (f"startIndex=+{HUGE}&count={'9' * 200}", 2**31, 0), (f"startIndex=000{'0' * 40}2", 2, 1),
])
def test_huge_paging_values_in_the_query_string_are_clamped_not_refused(
    scim: Scim, world: dict[str, str], query: str, start: int, items: int
) -> None:
    response = scim.get(f"/Users?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json(force=True)
    assert (body["startIndex"], body["itemsPerPage"], body["totalResults"]) == (start, items, 2)
    searched = scim.post("/Users/.search", {"startIndex": query.split("=")[1].split("&")[0]})
    assert searched.status_code == 200, searched.get_data(as_text=True)


@pytest.mark.parametrize("raw, shown", [("ten", "'ten'"), ("1.5", "'1.5'"), ("²", "'²'"),
                                        ("1e3", "'1e3'"), ("12abc" * 20, "…")])
def test_a_non_integer_paging_value_is_400_quoting_it(
    scim: Scim, world: dict[str, str], raw: str, shown: str
) -> None:
    body = _error(scim.get(f"/Users?startIndex={raw}"), "invalidValue", "startIndex")
    assert body["detail"].startswith("startIndex must be an integer, not ") and shown in body["detail"]
