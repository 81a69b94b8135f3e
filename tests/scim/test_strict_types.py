"""Wrong JSON types, read-only attributes, self-management and paging bounds are refused.

RFC 7643 §2.3 (a string attribute takes a JSON string), RFC 7644 §3.5.2 (a read-only
attribute is a 400 `mutability`), §3.4.2.4 (out-of-range paging is clamped). Every refusal
is a SCIM Error naming the attribute and leaves every row as it was; the IdP quirks
(Entra's "False" strings, Okta's own id inside a path-less value and a PUT) keep working.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.scim.conftest import Scim
from tests.security.conftest import db_snapshot

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def world(scim: Scim) -> dict[str, str]:
    """Ann (managed by Bob, with a work email and phone) and a group holding both."""
    bob = scim.create_user("bob@acme.example", displayName="Bob")
    ann = scim.create_user(
        "ann@acme.example", displayName="Ann", name={"givenName": "Ann"},
        emails=[{"value": "ann@acme.example", "type": "work", "primary": True}],
        phoneNumbers=[{"value": "+1 555", "type": "work"}],
        addresses=[{"streetAddress": "1 Main St", "type": "work"}],
        **{ENTERPRISE: {"manager": bob["id"], "department": "R&D"}})
    group = scim.create_group("Staff", [ann["id"], bob["id"]], externalId="ext-staff")
    return {"ann": ann["id"], "bob": bob["id"], "group": group["id"]}


def _error(response: Any, scim_type: str, mentions: str) -> dict[str, Any]:
    assert response.status_code == 400, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == "400" and body["scimType"] == scim_type, body
    assert mentions in body["detail"], body
    return body


# ---- numbers (and other non-strings) where a string is expected --------------------------

SIMPLE = ["userName", "externalId", "displayName", "nickName", "profileUrl", "title",
          "userType", "preferredLanguage", "locale", "timezone"]
NAME_PARTS = ["formatted", "familyName", "givenName", "middleName", "honorificPrefix",
              "honorificSuffix"]
ENTERPRISE_PARTS = ["employeeNumber", "costCenter", "organization", "division", "department",
                    "manager"]
# (label in the error, POST body fragment with VALUE, PATCH path, filtered PATCH path or None)
STRING_ATTRIBUTES: list[tuple[str, dict[str, Any], str, str | None]] = [
    *[(a, {a: "VALUE"}, a, None) for a in SIMPLE],
    *[(f"name.{p}", {"name": {p: "VALUE"}}, f"name.{p}", None) for p in NAME_PARTS],
    *[(p, {ENTERPRISE: {p: "VALUE"}}, f"{ENTERPRISE}:{p}", None) for p in ENTERPRISE_PARTS],
    *[(f"emails.{p}", {"emails": [{"value": "x@acme.example", p: "VALUE"}]}, "emails",
       f'emails[type eq "work"].{p}') for p in ("value", "type", "display")],
    ("phoneNumbers.value", {"phoneNumbers": [{"value": "VALUE"}]}, "phoneNumbers",
     'phoneNumbers[type eq "work"].value'),
    ("addresses.streetAddress", {"addresses": [{"streetAddress": "VALUE"}]}, "addresses",
     'addresses[type eq "work"].streetAddress'),
]


def _fill(fragment: Any, value: Any) -> Any:
    if fragment == "VALUE":
        return value
    if isinstance(fragment, dict):
        return {k: _fill(v, value) for k, v in fragment.items()}
    if isinstance(fragment, list):
        return [_fill(v, value) for v in fragment]
    return fragment


# Identifiers, emails and the manager reference take strings only; profile attributes also
# take a JSON integer as its text (OneLogin's templates: an unquoted employee id).
STRICT = {"userName", "manager", "emails.value", "emails.type", "emails.display"}
REFUSED = [(*attribute, value) for attribute in STRING_ATTRIBUTES
           for value in ([123, 5.5, 0] if attribute[0] in STRICT else [5.5, False])]


@pytest.mark.parametrize("label, fragment, path, filtered, value", REFUSED,
                         ids=[f"{a[0]}-{a[4]!r}" for a in REFUSED])
def test_a_non_string_for_any_user_string_attribute_is_400_naming_it_in_every_write(
    app: Flask, scim: Scim, world: dict[str, str], label: str, fragment: dict[str, Any],
    path: str, filtered: str | None, value: Any
) -> None:
    ann = f"/Users/{world['ann']}"
    filled = _fill(fragment, value)
    patch_value = filled.get(path, value)  # a multi-valued attribute's list, else the value
    before = db_snapshot(app)
    attempts = {
        "POST": scim.post("/Users", {"userName": "new@acme.example", **filled}),
        "PUT": scim.put(ann, {"userName": "ann@acme.example", **filled}),
        "PATCH replace": scim.patch(ann, {"op": "replace", "path": path, "value": patch_value}),
        "PATCH add": scim.patch(ann, {"op": "Add", "path": path, "value": patch_value}),
        "PATCH no path": scim.patch(ann, {"op": "replace", "value": {path: patch_value}}),
    }
    if label == "userName":
        attempts["POST"] = scim.post("/Users", {"userName": value})
        attempts["PUT"] = scim.put(ann, {"userName": value})
    if filtered:
        attempts["PATCH filtered"] = scim.patch(ann, {"op": "replace", "path": filtered,
                                                      "value": value})
    for verb, response in attempts.items():
        body = _error(response, "invalidValue", label)
        assert "must be a string" in body["detail"], (verb, body)
    assert db_snapshot(app) == before


def test_an_integer_for_a_profile_attribute_is_stored_as_its_text(
    scim: Scim, world: dict[str, str]
) -> None:
    created = scim.create_user(
        "num@acme.example", externalId=42, displayName=7, name={"givenName": 5},
        phoneNumbers=[{"value": 5551234, "type": "work"}], **{ENTERPRISE: {"employeeNumber": 12345}})
    assert (created["externalId"], created["displayName"], created["name"]["givenName"]) == \
        ("42", "7", "5")
    assert created["phoneNumbers"][0]["value"] == "5551234"
    assert created[ENTERPRISE]["employeeNumber"] == "12345"
    patched = scim.patch(f"/Users/{created['id']}",
                         {"op": "replace", "path": f"{ENTERPRISE}:costCenter", "value": 900})
    assert patched.status_code == 200 and patched.get_json()[ENTERPRISE]["costCenter"] == "900"
    assert scim.member(created["id"]).cost_center == "900"


def test_numeric_user_name_no_longer_creates_a_placeholder_account(
    app: Flask, scim: Scim
) -> None:
    before = db_snapshot(app)
    _error(scim.post("/Users", {"userName": 123}), "invalidValue", "userName")
    assert db_snapshot(app) == before
    assert scim.get('/Users?filter=userName eq "123"').get_json(force=True)["totalResults"] == 0


@pytest.mark.parametrize("label, body", [
    ("displayName", {"displayName": 123}), ("externalId", {"displayName": "G", "externalId": 7}),
    ("members.value", {"displayName": "G", "members": [{"value": 5}]}),
])
def test_a_number_for_any_group_string_attribute_is_400_naming_it_in_every_write(
    app: Flask, scim: Scim, world: dict[str, str], label: str, body: dict[str, Any]
) -> None:
    group = f"/Groups/{world['group']}"
    attr = label.split(".")[0]
    before = db_snapshot(app)
    for response in (scim.post("/Groups", body), scim.put(group, {"displayName": "G", **body}),
                     scim.patch(group, {"op": "replace", "path": attr, "value": body[attr]}),
                     scim.patch(group, {"op": "replace", "value": {attr: body[attr]}})):
        _error(response, "invalidValue", label)
    assert db_snapshot(app) == before


def test_entra_string_booleans_still_work_beside_the_strict_strings(
    scim: Scim, world: dict[str, str]
) -> None:
    ann = f"/Users/{world['ann']}"
    response = scim.patch(ann, {"op": "Replace", "path": "active", "value": "False"})
    assert response.status_code == 200 and scim.member(world["ann"]).active is False
    created = scim.create_user("cy@acme.example", active="True", externalId="123")
    assert created["active"] is True and scim.member(created["id"]).external_id == "123"
