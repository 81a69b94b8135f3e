"""The User PATCH engine: RFC 7644 §3.5.2 and every dialect IdPs send, atomically."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent
from tests.scim.conftest import Scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def ann(scim: Scim) -> dict[str, Any]:
    """A provisioned User with a name, two emails, a title and a department."""
    return scim.create_user(
        "ann@acme.example", displayName="Ann Lee", title="Engineer",
        name={"givenName": "Ann", "familyName": "Lee"},
        emails=[{"value": "ann@acme.example", "type": "work", "primary": True},
                {"value": "ann@home.example", "type": "home"}],
        **{ENTERPRISE: {"department": "R&D", "costCenter": "7"}})


def _patch(scim: Scim, user: dict[str, Any], *ops: dict[str, Any]) -> dict[str, Any]:
    response = scim.patch(f"/Users/{user['id']}", *ops)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json(force=True)
    assert body == scim.get(f"/Users/{user['id']}").get_json(force=True)  # what was stored
    return body


@pytest.mark.parametrize("op", ["replace", "Replace", "REPLACE", "add", "Add"])
def test_op_names_are_case_insensitive(scim: Scim, ann: dict, op: str) -> None:
    body = _patch(scim, ann, {"op": op, "path": "title", "value": "Lead"})
    assert body["title"] == "Lead" and scim.member(ann["id"]).title == "Lead"


@pytest.mark.parametrize("value,expected", [("False", False), (False, False), ("false", False)])
def test_deactivate_with_entra_strings_or_booleans(
    scim: Scim, ann: dict, value: Any, expected: bool
) -> None:
    body = _patch(scim, ann, {"op": "Replace", "path": "active", "value": value})
    assert body["active"] is expected
    member = scim.member(ann["id"])
    assert member.active is False and member.deactivated_at is not None
    back = _patch(scim, ann, {"op": "Replace", "path": "active", "value": "True"})
    assert back["active"] is True and scim.member(ann["id"]).deactivated_at is None


def test_okta_pathless_replace_deactivates(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "replace", "value": {"active": False}})
    assert body["active"] is False and body["title"] == "Engineer"


def test_entra_pathless_replace_mixes_plain_dotted_and_urn_keys(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "replace", "value": {
        "displayName": "Ann Smith", "name.familyName": "Smith", "name.givenName": "Annie",
        f"{ENTERPRISE}:department": "Sales", "urn:example:unknown:1.0:User:shoe": "42",
        "emails[type eq \"work\"].value": "ann.smith@acme.example", "active": "True"}})
    assert body["displayName"] == "Ann Smith"
    assert body["name"] == {"givenName": "Annie", "familyName": "Smith"}
    assert body[ENTERPRISE] == {"department": "Sales", "costCenter": "7"}
    assert body["emails"][0] == {"value": "ann.smith@acme.example", "type": "work",
                                 "primary": True}
    assert len(body["emails"]) == 2
    member = scim.member(ann["id"])
    assert (member.family_name, member.department) == ("Smith", "Sales")


def test_entra_email_value_path_updates_the_matching_element_only(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "Replace", "path": "emails[type eq \"work\"].value",
                              "value": "new@acme.example"})
    assert [e["value"] for e in body["emails"]] == ["new@acme.example", "ann@home.example"]


@pytest.mark.parametrize("op", ["Add", "Replace"])
def test_value_path_matching_nothing_creates_the_element_and_keeps_the_others(
    scim: Scim, ann: dict, op: str
) -> None:
    body = _patch(scim, ann, {"op": op, "path": "emails[type eq \"other\"].value",
                              "value": "ann@other.example"})
    assert body["emails"][:2] == ann["emails"]
    assert body["emails"][2] == {"value": "ann@other.example", "type": "other",
                                 "primary": False}
    assert len(scim.member(ann["id"]).emails) == 3


def test_value_path_with_and_filter_creates_element_with_both_terms(scim: Scim) -> None:
    user = scim.create_user("bo@acme.example")
    body = _patch(scim, user, {"op": "add",
                               "path": "emails[type eq \"work\" and primary eq true].value",
                               "value": "bo@acme.example"})
    assert body["emails"] == [{"value": "bo@acme.example", "type": "work", "primary": True}]


def test_add_to_multi_valued_appends_and_replace_overwrites(scim: Scim, ann: dict) -> None:
    added = _patch(scim, ann, {"op": "add", "path": "phoneNumbers",
                               "value": [{"value": "555-1", "type": "work"}]})
    added = _patch(scim, ann, {"op": "add", "path": "phoneNumbers",
                               "value": {"value": "555-2", "type": "mobile"}})
    assert [p["value"] for p in added["phoneNumbers"]] == ["555-1", "555-2"]
    replaced = _patch(scim, ann, {"op": "replace", "path": "phoneNumbers",
                                  "value": [{"value": "555-3"}]})
    assert replaced["phoneNumbers"] == [{"value": "555-3"}]
    assert scim.member(ann["id"]).extra_attributes["phoneNumbers"] == [{"value": "555-3"}]


def test_adding_a_primary_email_takes_primary_from_the_old_one(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "add", "path": "emails",
                              "value": [{"value": "x@acme.example", "primary": True}]})
    assert [e["primary"] for e in body["emails"]] == [False, False, True]


def test_remove_by_value_filter_and_of_a_sub_attribute(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "remove", "path": "emails[type eq \"home\"]"},
                  {"op": "remove", "path": "name.familyName"})
    assert [e["value"] for e in body["emails"]] == ["ann@acme.example"]
    assert body["name"] == {"givenName": "Ann"}
    nothing = _patch(scim, ann, {"op": "remove", "path": "emails[type eq \"fax\"]"})
    assert len(nothing["emails"]) == 1  # removing what is not there is a no-op


def test_remove_simple_complex_and_enterprise_attributes(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "remove", "path": "title"}, {"op": "remove", "path": "name"},
                  {"op": "remove", "path": f"{ENTERPRISE}:department"})
    assert "title" not in body and "name" not in body
    assert body[ENTERPRISE] == {"costCenter": "7"}
    member = scim.member(ann["id"])
    assert (member.title, member.given_name, member.department) == (None, None, None)
    gone = _patch(scim, ann, {"op": "remove", "path": ENTERPRISE})
    assert ENTERPRISE not in gone and scim.member(ann["id"]).cost_center is None


def test_complex_replace_keeps_unnamed_sub_attributes(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann, {"op": "replace", "path": "name", "value": {"familyName": "Ng"}})
    assert body["name"] == {"givenName": "Ann", "familyName": "Ng"}


@pytest.mark.parametrize("manager", ["{boss}", {"value": "{boss}"},
                                     [{"$ref": None, "value": "{boss}"}]])
def test_manager_as_bare_id_object_or_list(scim: Scim, ann: dict, manager: Any) -> None:
    boss = scim.create_user("boss@acme.example")
    value = _fill(manager, boss["id"])
    body = _patch(scim, ann, {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": value})
    assert body[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert scim.member(ann["id"]).manager_id == scim.member(boss["id"]).id


def _fill(template: Any, boss: str) -> Any:
    if isinstance(template, str):
        return template.format(boss=boss)
    if isinstance(template, list):
        return [_fill(t, boss) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, boss) for k, v in template.items()}
    return template


def test_manager_removal_as_empty_string_then_remove(scim: Scim, ann: dict) -> None:
    boss = scim.create_user("boss@acme.example")
    _patch(scim, ann, {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss["id"]})
    emptied = _patch(scim, ann, {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""})
    assert "manager" not in emptied[ENTERPRISE]
    again = _patch(scim, ann, {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert "manager" not in again[ENTERPRISE] and scim.member(ann["id"]).manager_id is None


def test_groups_password_and_unknown_schema_paths_are_ignored(scim: Scim, ann: dict) -> None:
    body = _patch(scim, ann,
                  {"op": "replace", "path": "urn:example:custom:2.0:User:shoe", "value": "1"},
                  {"op": "add", "path": "groups", "value": [{"value": "x"}]},
                  {"op": "replace", "path": "password", "value": "s3cret-pass"})
    assert body["id"] == ann["id"] and "groups" not in body and "password" not in body


@pytest.mark.parametrize("op,scim_type", [
    ({"op": "replace", "path": "shoeSize", "value": "42"}, "invalidPath"),
    ({"op": "replace", "path": "title[type eq \"x\"]", "value": "x"}, "invalidPath"),
    ({"op": "replace", "path": "emails[type eq]", "value": "x"}, "invalidPath"),
    ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
    ({"op": "remove"}, "noTarget"),
    ({"op": "remove", "path": "userName"}, "invalidValue"),
    ({"op": "remove", "path": "active"}, "invalidValue"),
    ({"op": "replace", "path": "active", "value": "perhaps"}, "invalidValue"),
    ({"op": "replace", "path": "title", "value": {"nested": True}}, "invalidValue"),
    ({"op": "replace", "value": "not an object"}, "invalidValue"),
    ({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": "nobody"}, "invalidValue"),
    ({"op": "replace", "path": f"{ENTERPRISE}:shoe", "value": "1"}, "invalidPath"),
    ("not an object", "invalidSyntax"),
])
def test_invalid_operations_are_400_with_the_right_scim_type(
    scim: Scim, ann: dict, op: Any, scim_type: str
) -> None:
    response = scim.patch(f"/Users/{ann['id']}", op)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json(force=True)["scimType"] == scim_type
    assert scim.get(f"/Users/{ann['id']}").get_json(force=True) == ann


@pytest.mark.parametrize("body", [{}, {"Operations": []}, {"Operations": "x"}, []])
def test_patch_without_operations_is_400(scim: Scim, ann: dict, body: Any) -> None:
    assert scim.request("PATCH", f"/Users/{ann['id']}", body).status_code == 400


def test_one_invalid_operation_among_a_thousand_rejects_the_whole_patch(
    app: Flask, scim: Scim, ann: dict
) -> None:
    ops = [{"op": "replace", "path": "title", "value": f"T{n}"} for n in range(999)]
    ops.append({"op": "replace", "path": "active", "value": "not-a-boolean"})
    ops.insert(10, {"op": "replace", "path": "active", "value": False})
    response = scim.patch(f"/Users/{ann['id']}", *ops)
    assert response.status_code == 400
    member = scim.member(ann["id"])
    assert member.title == "Engineer" and member.active is True
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action)))
    assert "member.updated" not in actions and "member.deactivated" not in actions


def test_a_thousand_valid_operations_apply_in_order(scim: Scim, ann: dict) -> None:
    ops = [{"op": "replace", "path": "title", "value": f"T{n}"} for n in range(1000)]
    assert _patch(scim, ann, *ops)["title"] == "T999"


def test_patch_writes_one_audit_event_naming_what_changed(
    app: Flask, scim: Scim, ann: dict
) -> None:
    _patch(scim, ann, {"op": "replace", "path": "title", "value": "Lead"},
           {"op": "replace", "path": "active", "value": False})
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.target_id == ann["id"]).order_by(AuditEvent.id)).all()
        updated = [e for e in events if e.action == "member.updated"]
        assert len(updated) == 1 and updated[0].details["changed"] == ["title"]
        deactivated = [e for e in events if e.action == "member.deactivated"]
        assert deactivated[0].details["received_at"] == deactivated[0].details["access_ended_at"]
