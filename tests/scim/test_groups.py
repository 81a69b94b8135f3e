"""Groups: members added and removed one row at a time, uniqueness, isolation, atomicity."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Group, GroupMember
from tests.scim.conftest import Scim


@pytest.fixture
def people(scim: Scim) -> list[str]:
    """Four provisioned Users; returns their ids."""
    return [scim.create_user(f"p{n}@acme.example")["id"] for n in range(4)]


def _patch(scim: Scim, group: dict[str, Any], *ops: dict[str, Any]) -> Any:
    response = scim.patch(f"/Groups/{group['id']}", *ops)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.data == b"" and response.headers["ETag"].startswith('W/"')
    return response


def test_post_creates_group_with_members(scim: Scim, people: list[str]) -> None:
    group = scim.create_group("Engineering", people[:2], externalId="e-1")
    assert {m["value"] for m in group["members"]} == set(people[:2])
    assert scim.group_member_ids(group["id"]) == set(people[:2])


def test_add_existing_member_and_remove_absent_member_are_no_ops(
    scim: Scim, people: list[str]
) -> None:
    group = scim.create_group("Eng", people[:1])
    _patch(scim, group, {"op": "add", "path": "members", "value": [{"value": people[0]}]})
    _patch(scim, group, {"op": "remove", "path": f'members[value eq "{people[3]}"]'})
    _patch(scim, group, {"op": "Remove", "path": "members", "value": [{"value": "unknown-id"}]})
    assert scim.group_member_ids(group["id"]) == {people[0]}


def test_entra_default_and_flag_dialects_for_membership(scim: Scim, people: list[str]) -> None:
    group = scim.create_group("Eng")
    _patch(scim, group, {"op": "Add", "path": "members",
                         "value": [{"$ref": None, "value": p} for p in people]})
    assert scim.group_member_ids(group["id"]) == set(people)
    _patch(scim, group, {"op": "Remove", "path": "members", "value": [{"value": people[0]}]})
    _patch(scim, group, {"op": "remove", "path": f'members[value eq "{people[1]}"]'})
    assert scim.group_member_ids(group["id"]) == set(people[2:])


def test_okta_replace_members_and_rename_with_id_inside_the_value(
    scim: Scim, people: list[str]
) -> None:
    group = scim.create_group("Eng", people[:2])
    _patch(scim, group, {"op": "replace", "value": {"id": group["id"], "displayName": "R&D"}},
           {"op": "replace", "path": "members", "value": [{"value": people[2], "display": "x"}]})
    body = scim.get(f"/Groups/{group['id']}").get_json(force=True)
    assert body["displayName"] == "R&D" and body["id"] == group["id"]
    assert scim.group_member_ids(group["id"]) == {people[2]}


def test_authentik_pathless_replace_with_whole_group(scim: Scim, people: list[str]) -> None:
    group = scim.create_group("Eng", people[:1])
    _patch(scim, group, {"op": "replace", "value": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": group["id"],
        "displayName": "Engineering", "externalId": "ak-1",
        "members": [{"value": people[1]}, {"value": people[2]}]}})
    body = scim.get(f"/Groups/{group['id']}").get_json(force=True)
    assert (body["displayName"], body["externalId"]) == ("Engineering", "ak-1")
    assert scim.group_member_ids(group["id"]) == {people[1], people[2]}


def test_remove_with_other_member_filter_and_remove_all(scim: Scim, people: list[str]) -> None:
    group = scim.create_group("Eng", people)
    _patch(scim, group, {"op": "remove",
                         "path": f'members[value eq "{people[0]}" or value eq "{people[1]}"]'})
    assert scim.group_member_ids(group["id"]) == set(people[2:])
    _patch(scim, group, {"op": "remove", "path": 'members[type eq "User"]'})
    assert scim.group_member_ids(group["id"]) == set()
    _patch(scim, group, {"op": "add", "path": "members", "value": [{"value": people[0]}]},
           {"op": "remove", "path": "members"})
    assert scim.group_member_ids(group["id"]) == set()


def test_a_removal_by_filter_applies_where_it_stands_among_the_operations(
    scim: Scim
) -> None:
    """RFC 7644 §3.5.2: operations apply in order, a filtered removal included."""
    alice = scim.create_user("alice@acme.example", displayName="Alice Adams")["id"]
    bob = scim.create_user("bob@acme.example", displayName="Bob Brown")["id"]
    carol = scim.create_user("carol@acme.example", displayName="Carol Alice")["id"]
    group = scim.create_group("Eng")
    by_name = {"op": "remove", "path": 'members[display eq "alice adams"]'}

    _patch(scim, group, {"op": "replace", "path": "members",
                         "value": [{"value": alice}, {"value": bob}]}, by_name)
    assert scim.group_member_ids(group["id"]) == {bob}

    _patch(scim, group, {"op": "add", "path": "members", "value": [{"value": alice}]}, by_name)
    assert scim.group_member_ids(group["id"]) == {bob}

    _patch(scim, group, {"op": "add", "path": "members", "value": [{"value": alice}]})
    _patch(scim, group, by_name,
           {"op": "add", "path": "members", "value": [{"value": alice}, {"value": carol}]})
    assert scim.group_member_ids(group["id"]) == {alice, bob, carol}

    _patch(scim, group, {"op": "remove", "path": 'members[display co "alice"]'},
           {"op": "add", "path": "members", "value": [{"value": carol}]},
           {"op": "remove", "path": 'members[display sw "bob"]'})
    assert scim.group_member_ids(group["id"]) == {carol}


def test_patch_asking_for_attributes_answers_200_with_the_group(
    scim: Scim, people: list[str]
) -> None:
    group = scim.create_group("Eng")
    response = scim.patch(f"/Groups/{group['id']}?excludedAttributes=members",
                          {"op": "add", "path": "members", "value": [{"value": people[0]}]})
    assert response.status_code == 200
    body = response.get_json(force=True)
    assert "members" not in body and body["meta"]["version"] == response.headers["ETag"]


def test_member_from_another_organisation_is_400_and_nothing_is_stored(
    app: Flask, scim: Scim, other_scim: Scim, people: list[str]
) -> None:
    stranger = other_scim.create_user("stranger@globex.example")
    group = scim.create_group("Eng", people[:1])
    response = scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [
        {"value": people[1]}, {"value": stranger["id"]}]})
    assert response.status_code == 400
    assert response.get_json(force=True)["scimType"] == "invalidValue"
    assert scim.group_member_ids(group["id"]) == {people[0]}
    created = scim.post("/Groups", {"displayName": "Other", "members": [{"value": "nope"}]})
    assert created.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Group).where(
            Group.display_name == "Other")) == 0


def test_whole_group_patch_is_atomic(scim: Scim, people: list[str]) -> None:
    group = scim.create_group("Eng", people[:1])
    ops = [{"op": "add", "path": "members", "value": [{"value": p}]} for p in people[1:]]
    ops += [{"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "replace", "path": "displayName", "value": None}]
    response = scim.patch(f"/Groups/{group['id']}", *ops)
    assert response.status_code == 400
    assert scim.group_member_ids(group["id"]) == {people[0]}
    assert scim.get(f"/Groups/{group['id']}").get_json(force=True)["displayName"] == "Eng"


def test_display_name_is_unique_per_organisation_case_insensitively(
    scim: Scim, other_scim: Scim
) -> None:
    scim.create_group("Engineering")
    duplicate = scim.post("/Groups", {"displayName": "ENGINEERING"})
    assert duplicate.status_code == 409
    assert duplicate.get_json(force=True)["scimType"] == "uniqueness"
    other_scim.create_group("Engineering")  # another organisation may use the name
    second = scim.create_group("Sales")
    rename = scim.patch(f"/Groups/{second['id']}",
                        {"op": "replace", "path": "displayName", "value": "engineering"})
    assert rename.status_code == 409


def test_put_replaces_name_and_members_and_keeps_members_when_omitted(
    scim: Scim, people: list[str]
) -> None:
    group = scim.create_group("Eng", people[:2])
    put = scim.put(f"/Groups/{group['id']}", {"displayName": "Eng", "externalId": "x",
                                              "members": [{"value": people[3]}]})
    assert put.status_code == 200 and put.get_json(force=True)["externalId"] == "x"
    assert scim.group_member_ids(group["id"]) == {people[3]}
    scim.put(f"/Groups/{group['id']}", {"id": group["id"], "displayName": "Renamed"})
    assert scim.group_member_ids(group["id"]) == {people[3]}


def test_delete_group_removes_it_and_its_memberships(
    app: Flask, scim: Scim, people: list[str]
) -> None:
    group = scim.create_group("Eng", people)
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert scim.get(f"/Groups/{group['id']}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GroupMember)) == 0
        actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-1] == "group.deleted"


def test_membership_changes_are_audited_with_counts(
    app: Flask, scim: Scim, people: list[str]
) -> None:
    group = scim.create_group("Eng")
    _patch(scim, group, {"op": "add", "path": "members", "value": [{"value": p} for p in people]})
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "group.members_added"))
        assert event.details["count"] == 4 and sorted(event.details["members"]) == sorted(people)


def test_deleted_user_leaves_its_groups(scim: Scim, people: list[str]) -> None:
    group = scim.create_group("Eng", people[:2])
    before = scim.get(f"/Groups/{group['id']}").get_json(force=True)["meta"]["version"]
    scim.delete(f"/Users/{people[0]}")
    after = scim.get(f"/Groups/{group['id']}").get_json(force=True)
    assert [m["value"] for m in after["members"]] == [people[1]]
    assert after["meta"]["version"] != before
