"""Replays of Microsoft Entra ID provisioning, in both PATCH dialects (IDP-COMPAT.md)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask

from tests.scim.conftest import Scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


@pytest.fixture
def entra(scim: Scim) -> Scim:
    """The SCIM API as Entra's provisioning service calls it."""
    scim.user_agent = "Azure-SCIM-Provisioning/1.0"
    return scim


def _json(response: Any, status: int) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json(force=True) if response.data else None


def _entra_user(user_name: str, given: str, family: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": given.lower(), "userName": user_name, "active": True,
        "displayName": f"{given} {family}",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [], "title": None,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User": {"department": None},
        ENTERPRISE: {"department": "Engineering", "employeeNumber": None},
    }


def _test_connection(entra: Scim, suffix: str = "") -> None:
    guid = str(uuid.uuid4())
    body = _json(entra.get(f'/Users?filter=userName eq "{guid}"{suffix}'), 200)
    assert body["totalResults"] == 0 and body["Resources"] == []
    groups = _json(entra.get(f'/Groups?excludedAttributes=members&filter=displayName eq "{guid}"'
                             f'{suffix}'), 200)
    assert groups["totalResults"] == 0


def _create_user(entra: Scim, user_name: str, given: str, family: str,
                 suffix: str = "") -> dict[str, Any]:
    found = _json(entra.get(f'/Users?filter=userName eq "{user_name}"{suffix}'), 200)
    assert found["totalResults"] == 0
    return _json(entra.post(f"/Users{suffix.replace('&', '?', 1)}",
                            _entra_user(user_name, given, family)), 201)


def _create_group(entra: Scim, name: str) -> dict[str, Any]:
    found = _json(entra.get(f'/Groups?excludedAttributes=members&filter=displayName eq "{name}"'),
                  200)
    assert found["totalResults"] == 0
    return _json(entra.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                                                    MS_GROUP],
                                        "externalId": str(uuid.uuid4()), "displayName": name,
                                        "meta": {"resourceType": "Group"}}), 201)


def test_entra_default_dialect_full_cycle(app: Flask, entra: Scim) -> None:
    _test_connection(entra)
    alice = _create_user(entra, "alice@contoso.example", "Alice", "Adams")
    bob = _create_user(entra, "bob@contoso.example", "Bob", "Brown")
    assert alice[ENTERPRISE] == {"department": "Engineering"}
    # Update: only the changed attributes, Entra's capitalised ops.
    updated = _json(entra.patch(f"/Users/{alice['id']}",
                                {"op": "Replace", "path": "emails[type eq \"work\"].value",
                                 "value": "alice.adams@contoso.example"},
                                {"op": "Replace", "path": "name.familyName", "value": "Adams-Lee"},
                                {"op": "Add", "path": f"{ENTERPRISE}:department",
                                 "value": "Research"}), 200)
    assert updated["emails"] == [{"value": "alice.adams@contoso.example", "type": "work",
                                  "primary": True}]
    member = entra.member(alice["id"])
    assert (member.family_name, member.department) == ("Adams-Lee", "Research")
    # Manager arrives later, as a bare id; returned as an object.
    managed = _json(entra.patch(f"/Users/{bob['id']}", {"op": "Add", "path":
                                f"{ENTERPRISE}:manager", "value": alice["id"]}), 200)
    assert managed[ENTERPRISE]["manager"]["value"] == alice["id"]
    # Groups: created empty, members added with "$ref": null, removed with a value list.
    group = _create_group(entra, "Engineering")
    assert "members" not in group
    _json(entra.patch(f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": [
        {"$ref": None, "value": alice["id"]}, {"$ref": None, "value": bob["id"]}]}), 204)
    assert entra.group_member_ids(group["id"]) == {alice["id"], bob["id"]}
    _json(entra.patch(f"/Groups/{group['id']}", {"op": "Remove", "path": "members",
                                                 "value": [{"value": bob["id"]}]}), 204)
    assert entra.group_member_ids(group["id"]) == {alice["id"]}
    _json(entra.patch(f"/Groups/{group['id']}", {"op": "Replace", "path": "displayName",
                                                 "value": "Engineering EMEA"}), 204)
    # Deactivate with the string "False": still readable and filterable.
    _json(entra.patch(f"/Users/{bob['id']}", {"op": "Replace", "path": "active",
                                              "value": "False"}), 200)
    assert entra.member(bob["id"]).active is False
    found = _json(entra.get('/Users?filter=userName eq "bob@contoso.example"'), 200)
    assert found["Resources"][0]["active"] is False
    # Manager removal: Replace "" then Remove.
    _json(entra.patch(f"/Users/{bob['id']}", {"op": "Replace", "path": f"{ENTERPRISE}:manager",
                                              "value": ""}), 200)
    _json(entra.patch(f"/Users/{bob['id']}", {"op": "Remove",
                                              "path": f"{ENTERPRISE}:manager"}), 200)
    assert entra.member(bob["id"]).manager_id is None
    # Hard delete ~30 days later; group deleted.
    _json(entra.delete(f"/Users/{bob['id']}"), 204)
    _json(entra.delete(f"/Groups/{group['id']}"), 204)
    assert entra.get(f"/Users/{bob['id']}").status_code == 404
    assert entra.get(f"/Groups/{group['id']}").status_code == 404
    assert entra.member(bob["id"]).scim_deleted_at is not None


def test_entra_flag_dialect_full_cycle(app: Flask, entra: Scim) -> None:
    flag = "&aadOptscim062020"
    _test_connection(entra, flag)
    alice = _create_user(entra, "alice@contoso.example", "Alice", "Adams", flag)
    carol = _create_user(entra, "carol@contoso.example", "Carol", "Chen", flag)
    # Path-less replace mixing plain, dotted and URN-prefixed keys.
    updated = _json(entra.patch(f"/Users/{alice['id']}?aadOptscim062020", {"op": "replace",
                                "value": {"displayName": "Alice A.", "name.givenName": "Ali",
                                          f"{ENTERPRISE}:department": "Sales",
                                          "emails[type eq \"work\"].value": "ali@contoso.example",
                                          "active": True}}), 200)
    assert updated["name"]["givenName"] == "Ali" and updated[ENTERPRISE]["department"] == "Sales"
    assert updated["emails"][0]["value"] == "ali@contoso.example" and len(updated["emails"]) == 1
    group = _create_group(entra, "Sales")
    _json(entra.patch(f"/Groups/{group['id']}?aadOptscim062020", {"op": "add", "path": "members",
          "value": [{"value": alice["id"]}, {"value": carol["id"]}]}), 204)
    _json(entra.patch(f"/Groups/{group['id']}?aadOptscim062020",
                      {"op": "remove", "path": f"members[value eq \"{carol['id']}\"]"}), 204)
    assert entra.group_member_ids(group["id"]) == {alice["id"]}
    _json(entra.patch(f"/Users/{alice['id']}?aadOptscim062020",
                      {"op": "replace", "path": "active", "value": False}), 200)
    member = entra.member(alice["id"])
    assert member.active is False and member.deactivated_at is not None
    single = _json(entra.get(f"/Groups/{group['id']}?excludedAttributes=members{flag}"), 200)
    assert "members" not in single


def test_entra_retried_create_after_timeout_gets_409(entra: Scim) -> None:
    body = _entra_user("dora@contoso.example", "Dora", "Diaz")
    _json(entra.post("/Users", body), 201)
    conflict = _json(entra.post("/Users", body), 409)
    assert conflict["scimType"] == "uniqueness" and conflict["status"] == "409"
