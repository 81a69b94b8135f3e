"""Replays of OneLogin, JumpCloud and authentik provisioning (IDP-COMPAT.md)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask

from tests.scim.conftest import Scim


def _json(response: Any, status: int) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json(force=True) if response.data else None


def _onelogin_user(email: str, active: str = "true") -> dict[str, Any]:
    # Admin-written template: SCIM 1.x-ish URN, one email object, string booleans.
    return {"schemas": ["urn:scim:schemas:core:2.0"], "userName": email,
            "name": {"givenName": "Olivia", "familyName": "Login"},
            "emails": {"value": email, "type": "work", "primary": "true"},
            "title": "", "active": active}


def test_onelogin_test_create_update_groups_and_delete(app: Flask, scim: Scim) -> None:
    scim.user_agent = "OneLogin SCIM"
    assert _json(scim.get(f'/Users?filter=userName eq "{uuid.uuid4()}"?'), 200)[
        "totalResults"] == 0
    assert _json(scim.get('/Users?filter=userName eq "olivia@ex.com"'), 200)["totalResults"] == 0
    created = _json(scim.post("/Users?", _onelogin_user("olivia@ex.com")), 201)
    assert created["emails"] == [{"value": "olivia@ex.com", "type": "work", "primary": True}]
    assert "title" not in created
    updated = _onelogin_user("olivia@ex.com", active="false")
    updated["name"]["familyName"] = "Logan"
    put = _json(scim.put(f"/Users/{created['id']}?", updated), 200)
    assert put["name"]["familyName"] == "Logan" and put["active"] is False
    assert scim.member(created["id"]).active is False
    group = _json(scim.post("/Groups?", {"displayName": "OneLogin Role"}), 201)
    _json(scim.patch(f"/Groups/{group['id']}?", {"op": "add", "path": "members",
                                                 "value": [{"value": created["id"]}]}), 204)
    assert _json(scim.get("/Groups?"), 200)["Resources"][0]["members"][0]["value"] == \
        created["id"]
    _json(scim.delete(f"/Users/{created['id']}?"), 204)
    assert scim.group_member_ids(group["id"]) == set()


def test_jumpcloud_test_connection_writes_and_cleans_up(app: Flask, scim: Scim) -> None:
    scim.user_agent = "JumpCloud"
    user = _json(scim.post("/Users", {"userName": "jc-test-user@example.com",
                                      "name": {"givenName": "Test", "familyName": "User"},
                                      "emails": [{"value": "jc-test-user@example.com"}],
                                      "active": True}), 201)
    group = _json(scim.post("/Groups", {"displayName": "JumpCloud Test Group"}), 201)
    _json(scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members",
                                                "value": [{"value": user["id"]}]}), 204)
    _json(scim.patch(f"/Groups/{group['id']}", {"op": "remove", "path": "members",
                                                "value": [{"value": user["id"]}]}), 204)
    assert scim.group_member_ids(group["id"]) == set()
    _json(scim.delete(f"/Users/{user['id']}"), 204)
    _json(scim.delete(f"/Groups/{group['id']}"), 204)
    assert scim.get(f"/Users/{user['id']}").status_code == 404
    assert scim.get(f"/Groups/{group['id']}").status_code == 404
    # Running "Test connection" again works: the user is re-linked, not duplicated.
    again = _json(scim.post("/Users", {"userName": "jc-test-user@example.com"}), 201)
    assert again["id"] == user["id"]


def test_authentik_reads_config_puts_updates_and_diffs_members(app: Flask, scim: Scim) -> None:
    scim.user_agent = "authentik"
    config = _json(scim.get("/ServiceProviderConfig"), 200)
    assert config["patch"]["supported"] and config["filter"]["supported"]
    chunk = config["bulk"]["maxOperations"] or 2  # authentik falls back without bulk
    users = [_json(scim.post("/Users", {"userName": f"ak{n}@ex.com", "active": True,
                                        "emails": [{"value": f"ak{n}@ex.com", "primary": True}]}),
                   201) for n in range(5)]
    # Every update is a PUT of the whole user.
    for user in users[:2]:
        body = {**user, "displayName": f"AK {user['userName']}"}
        assert _json(scim.put(f"/Users/{user['id']}", body), 200)["displayName"].startswith("AK")
    # Group: create; a second create collides and authentik adopts it through a filter.
    group = _json(scim.post("/Groups", {"displayName": "ak-admins"}), 201)
    assert _json(scim.post("/Groups", {"displayName": "ak-admins"}), 409)["scimType"] == \
        "uniqueness"
    adopted = _json(scim.get('/Groups?filter=displayName eq "ak-admins"'), 200)["Resources"][0]
    assert adopted["id"] == group["id"]
    # Update: a path-less replace whose value is the whole group, schemas and id included.
    _json(scim.patch(f"/Groups/{group['id']}", {"op": "replace", "value": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": group["id"],
        "displayName": "ak-admins", "externalId": "ak-group-1"}}), 204)
    # Membership: diff against GET /Groups/{id}, then add/remove in chunks.
    wanted = {u["id"] for u in users[:4]}
    current = {m["value"] for m in _json(scim.get(f"/Groups/{group['id']}"), 200).get(
        "members", [])}
    to_add = sorted(wanted - current)
    for start in range(0, len(to_add), chunk):
        _json(scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [
            {"value": i} for i in to_add[start:start + chunk]]}), 204)
    assert scim.group_member_ids(group["id"]) == wanted
    _json(scim.patch(f"/Groups/{group['id']}", {"op": "remove", "path": "members",
                                                "value": [{"value": users[0]["id"]}]}), 204)
    assert scim.group_member_ids(group["id"]) == wanted - {users[0]["id"]}
    # Pages with startIndex and no count.
    page = _json(scim.get("/Users?startIndex=1"), 200)
    assert page["totalResults"] == 5 and page["itemsPerPage"] == 5
    _json(scim.delete(f"/Users/{users[4]['id']}"), 204)
    assert _json(scim.get("/Users?startIndex=1"), 200)["totalResults"] == 4
