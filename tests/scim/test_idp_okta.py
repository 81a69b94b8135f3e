"""Replay of Okta provisioning: import, create, PUT updates, deactivation, group push."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.scim.conftest import Scim

OKTA_JSON = "application/scim+json; charset=utf-8"


@pytest.fixture
def okta(scim: Scim) -> Scim:
    """The SCIM API as Okta calls it."""
    scim.user_agent = "Okta SCIM Client 1.0.0"
    return scim


def _json(response: Any, status: int) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json(force=True) if response.data else None


def _okta_user(n: int) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"user{n}@ex.com", "name": {"givenName": f"U{n}", "familyName": "Okta"},
            "emails": [{"primary": True, "value": f"user{n}@ex.com", "type": "work"}],
            "displayName": f"U{n} Okta", "locale": "en-US", "externalId": f"00u{n}",
            "groups": [], "password": "1mz050nq", "active": True}


def test_okta_import_create_update_deactivate_and_group_push(app: Flask, okta: Scim) -> None:
    # Import pages through Users and Groups.
    page = _json(okta.get("/Users?startIndex=1&count=100"), 200)
    assert page["totalResults"] == 0 and page["Resources"] == []
    _json(okta.get("/Groups?startIndex=1&count=100"), 200)
    # Create: filter (URL-encoded, + for spaces), then POST with the whole profile.
    users = []
    for n in range(3):
        found = _json(okta.get(f"/Users?filter=userName+eq+%22user{n}%40ex.com%22"
                               "&startIndex=1&count=100"), 200)
        assert found["totalResults"] == 0
        created = _json(okta.post("/Users", _okta_user(n), content_type=OKTA_JSON), 201)
        assert created["id"] and created["active"] is True and "password" not in created
        users.append(created)
    assert okta.member(users[0]["id"]).account.password_hash is None
    # An upper-cased filter still finds the user.
    upper = _json(okta.get('/Users?filter=userName eq "USER1@EX.COM"'), 200)
    assert [r["id"] for r in upper["Resources"]] == [users[1]["id"]]
    # Update: GET, then PUT the whole object back (id, meta, groups and password included).
    current = _json(okta.get(f"/Users/{users[0]['id']}"), 200)
    current["name"]["familyName"] = "Renamed"
    current["password"] = "new-password-9"
    current["groups"] = [{"value": "ignored"}]
    replaced = _json(okta.put(f"/Users/{users[0]['id']}", current, content_type=OKTA_JSON), 200)
    assert replaced["name"]["familyName"] == "Renamed"
    assert okta.member(users[0]["id"]).family_name == "Renamed"
    # Deactivate with a path-less replace; reactivate; older integrations GET + PUT.
    _json(okta.patch(f"/Users/{users[1]['id']}", {"op": "replace", "value": {"active": False}}),
          200)
    assert okta.member(users[1]["id"]).active is False
    _json(okta.patch(f"/Users/{users[1]['id']}", {"op": "replace", "value": {"active": True}}),
          200)
    assert okta.member(users[1]["id"]).active is True
    legacy = _json(okta.get(f"/Users/{users[2]['id']}"), 200)
    legacy["active"] = False
    _json(okta.put(f"/Users/{users[2]['id']}", legacy), 200)
    assert okta.member(users[2]["id"]).active is False
    # Push a group with members; then membership PATCHes with remove + add.
    group = _json(okta.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                        "displayName": "Okta Pushers", "members": [
                                            {"value": users[0]["id"], "display": "user0@ex.com"},
                                            {"value": users[1]["id"], "display": "user1@ex.com"}]},
                            content_type=OKTA_JSON), 201)
    assert okta.group_member_ids(group["id"]) == {users[0]["id"], users[1]["id"]}
    _json(okta.patch(f"/Groups/{group['id']}",
                     {"op": "remove", "path": f'members[value eq "{users[1]["id"]}"]'},
                     {"op": "add", "path": "members",
                      "value": [{"value": users[2]["id"], "display": "user2@ex.com"}]}), 204)
    assert okta.group_member_ids(group["id"]) == {users[0]["id"], users[2]["id"]}
    # Rename with the id inside the value (re-sent with every membership update).
    _json(okta.patch(f"/Groups/{group['id']}", {"op": "replace", "value": {
        "id": group["id"], "displayName": "Okta Pushers EMEA"}}), 204)
    # Full push as replace, and some integrations PUT the group.
    _json(okta.patch(f"/Groups/{group['id']}", {"op": "replace", "path": "members",
                                                "value": [{"value": users[1]["id"]}]}), 204)
    assert okta.group_member_ids(group["id"]) == {users[1]["id"]}
    put = _json(okta.put(f"/Groups/{group['id']}", {"id": group["id"],
                                                    "displayName": "Okta Pushers EMEA",
                                                    "members": [{"value": u["id"]}
                                                                for u in users]}), 200)
    assert put["displayName"] == "Okta Pushers EMEA" and len(put["members"]) == 3
    _json(okta.delete(f"/Groups/{group['id']}"), 204)
    assert okta.get(f"/Groups/{group['id']}").status_code == 404


def test_okta_error_expectations(okta: Scim) -> None:
    okta.post("/Users", _okta_user(1))
    missing = _json(okta.get("/Users/00u-not-here"), 404)
    assert missing["detail"] and missing["status"] == "404"
    assert _json(okta.post("/Users", _okta_user(1)), 409)["scimType"] == "uniqueness"
    assert okta.get("/Users", token="stale").status_code == 401
    assert _json(okta.get('/Users?filter=userName eq "unterminated'), 400)["scimType"] == \
        "invalidFilter"


def test_okta_pages_are_integers_and_stable(okta: Scim) -> None:
    for n in range(5):
        okta.post("/Users", _okta_user(n))
    first = _json(okta.get("/Users?startIndex=1&count=3"), 200)
    second = _json(okta.get("/Users?startIndex=4&count=3"), 200)
    assert (first["itemsPerPage"], second["itemsPerPage"]) == (3, 2)
    names = [r["userName"] for r in first["Resources"] + second["Resources"]]
    assert names == [f"user{n}@ex.com" for n in range(5)]
