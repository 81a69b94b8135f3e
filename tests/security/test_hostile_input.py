"""Hostile and broken SCIM input: always a SCIM 4xx (or a 2xx that stores only valid data).

Never a 500 and never a partial write: every refused request leaves every row of every
table as it was (tests.security.conftest.db_snapshot). tests/scim/test_wire.py covers
malformed JSON on POST /Users and the body limit with a lowered limit; this file covers
every write endpoint, wrong types for every attribute, and the limits as shipped.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.scim.conftest import Scim
from tests.security.conftest import db_snapshot

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def world(scim: Scim) -> dict[str, str]:
    """Ann (managed by Bob, with a work email) and a group holding both."""
    bob = scim.create_user("bob@acme.example", displayName="Bob")
    ann = scim.create_user("ann@acme.example", title="Engineer",
                           emails=[{"value": "ann@acme.example", "type": "work", "primary": True}],
                           **{ENTERPRISE: {"manager": bob["id"], "department": "R&D"}})
    group = scim.create_group("Staff", [ann["id"], bob["id"]], externalId="ext-staff")
    return {"ann": ann["id"], "bob": bob["id"], "group": group["id"]}


def assert_scim_error(response: Any, *statuses: int) -> dict[str, Any]:
    """Assert the response is a SCIM Error with one of the statuses; return its body."""
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/scim+json"
    body: dict[str, Any] = json.loads(response.get_data(as_text=True))
    assert body["schemas"] == [ERROR] and body["status"] == str(response.status_code)
    assert "Traceback" not in body.get("detail", "")
    return body


# ---- wrong types, attribute by attribute -------------------------------------------------

NOT_A_STRING = [{"nested": {"object": 1}}, [1, 2], True, [{"value": "x"}], "nul\x00byte",
                "lone \ud800 surrogate", "x" * 5000]
NOT_A_BOOLEAN = [{"x": 1}, [True], "yes", 1, 0, 1.5, ""]
NOT_MULTI_VALUED = [42, "just text", True, [42], [[1]], [{"value": {"a": 1}}],
                    [{"value": "a@b.example", "primary": "maybe"}], [{"value": "x" * 5000}]]

USER_ATTRIBUTES: list[tuple[str, dict[str, Any] | None, str, list[Any]]] = [
    # (name, body template with VALUE, PATCH path, wrong values)
    *[(name, None, name, NOT_A_STRING)
      for name in ("userName", "externalId", "displayName", "nickName", "profileUrl", "title",
                   "userType", "preferredLanguage", "locale", "timezone")],
    *[(f"name.{part}", {"name": {part: "VALUE"}}, f"name.{part}", NOT_A_STRING)
      for part in ("formatted", "familyName", "givenName", "middleName", "honorificPrefix",
                   "honorificSuffix")],
    ("name", None, "name", [42, [1], True, "x" * 5000]),
    *[(f"enterprise.{part}", {ENTERPRISE: {part: "VALUE"}}, f"{ENTERPRISE}:{part}", NOT_A_STRING)
      for part in ("employeeNumber", "costCenter", "organization", "division", "department")],
    ("enterprise.manager", {ENTERPRISE: {"manager": "VALUE"}}, f"{ENTERPRISE}:manager",
     [{"value": {"a": 1}}, [[1]], True, "no-such-user", {"value": "x" * 5000}]),
    ("enterprise", {ENTERPRISE: "VALUE"}, ENTERPRISE, ["text", 42, [1], True]),
    ("active", None, "active", NOT_A_BOOLEAN),
    *[(name, None, name, NOT_MULTI_VALUED)
      for name in ("emails", "phoneNumbers", "ims", "photos", "entitlements", "roles",
                   "x509Certificates")],
    ("addresses", None, "addresses", [42, "text", [42], [{"formatted": {"a": 1}}],
                                      [{"streetAddress": "x" * 5000}], [{"primary": "maybe"}]]),
]


def _user_body(user_name: str, name: str, template: dict[str, Any] | None, value: Any) -> dict:
    if name == "userName":
        return {"userName": value}
    if template is None:
        return {"userName": user_name, name: value}
    text = json.dumps(template).replace('"VALUE"', json.dumps(value))
    return {"userName": user_name, **json.loads(text)}


@pytest.mark.parametrize("name, template, path, values", USER_ATTRIBUTES,
                         ids=[a[0] for a in USER_ATTRIBUTES])
def test_wrong_type_for_any_user_attribute_is_400_in_every_write_and_stores_nothing(
    app: Flask, scim: Scim, world: dict[str, str], name: str, template: dict[str, Any] | None,
    path: str, values: list[Any]
) -> None:
    ann = f"/Users/{world['ann']}"
    before = db_snapshot(app)
    for value in values:
        attempts = {
            "POST": scim.post("/Users", _user_body("new@acme.example", name, template, value)),
            "PUT": scim.put(ann, _user_body("ann@acme.example", name, template, value)),
            "PATCH path": scim.patch(ann, {"op": "replace", "path": path, "value": value}),
            "PATCH add": scim.patch(ann, {"op": "add", "path": path, "value": value}),
            "PATCH no path": scim.patch(ann, {"op": "replace", "value": {path: value}}),
        }
        for verb, response in attempts.items():
            body = assert_scim_error(response, 400)
            assert body["scimType"] in ("invalidValue", "invalidPath"), (verb, value, body)
    assert db_snapshot(app) == before


GROUP_ATTRIBUTES: list[tuple[str, list[Any]]] = [
    ("displayName", [*NOT_A_STRING, "", "   ", None]),
    ("externalId", NOT_A_STRING),
    ("members", [42, "text", True, [42], [[1]], [{"value": {"a": 1}}], [{"value": ""}],
                 [{"value": None}], [{"$ref": 5}], [{"value": "no-such-user"}]]),
]


@pytest.mark.parametrize("name, values", GROUP_ATTRIBUTES, ids=[a[0] for a in GROUP_ATTRIBUTES])
def test_wrong_type_for_any_group_attribute_is_400_in_every_write_and_stores_nothing(
    app: Flask, scim: Scim, world: dict[str, str], name: str, values: list[Any]
) -> None:
    group = f"/Groups/{world['group']}"
    before = db_snapshot(app)
    for value in values:
        body = {"displayName": "New group", name: value}
        attempts = [scim.post("/Groups", body), scim.put(group, {**body, "displayName": "Staff",
                                                                 name: value}),
                    scim.patch(group, {"op": "replace", "path": name, "value": value}),
                    scim.patch(group, {"op": "replace", "value": {name: value}})]
        if name == "members":
            attempts.append(scim.patch(group, {"op": "add", "path": "members", "value": value}))
        for response in attempts:
            assert assert_scim_error(response, 400)["scimType"] in ("invalidValue", "invalidPath")
    assert db_snapshot(app) == before


# ---- malformed, nested, huge and oversized bodies ----------------------------------------

def _write_requests(world: dict[str, str]) -> list[tuple[str, str]]:
    return [("POST", "/Users"), ("PUT", f"/Users/{world['ann']}"),
            ("PATCH", f"/Users/{world['ann']}"), ("POST", "/Groups"),
            ("PUT", f"/Groups/{world['group']}"), ("PATCH", f"/Groups/{world['group']}"),
            ("POST", "/.search"), ("POST", "/Users/.search"), ("POST", "/Groups/.search")]


BROKEN_BODIES = {
    "truncated": b'{"userName": "x@acme.example", "emails": [',
    "not json": b"userName=x",
    "NaN": b'{"userName": NaN, "Operations": NaN}',
    "bad utf-8": b'{"userName": "\xff\xfe"}',
    "10,000 nested objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "10,000 nested lists": b'{"userName": "x@acme.example", "x": ' + b"[" * 10_000
                           + b"]" * 10_000 + b"}",
    "5,000-digit number": b'{"userName": "x@acme.example", "count": ' + b"9" * 5000 + b"}",
    "empty": b"",
    "a list": b"[]",
}


@pytest.mark.parametrize("raw", BROKEN_BODIES.values(), ids=BROKEN_BODIES.keys())
def test_broken_bodies_are_a_scim_400_on_every_write_endpoint_and_change_nothing(
    app: Flask, scim: Scim, world: dict[str, str], raw: bytes
) -> None:
    before = db_snapshot(app)
    for method, path in _write_requests(world):
        response = scim.request(method, path, raw=raw)
        body = assert_scim_error(response, 400)
        assert body["scimType"] in ("invalidSyntax", "invalidValue"), (method, path, body)
    assert db_snapshot(app) == before


def test_body_over_the_default_limit_is_413_on_every_write_endpoint(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    limit = app.config["SCIM_MAX_BODY_BYTES"]
    assert limit == 1024 * 1024
    padding = "x" * (limit + 1 - len('{"userName": "big@acme.example", "displayName": ""}'))
    raw = json.dumps({"userName": "big@acme.example", "displayName": padding}).encode()
    assert len(raw) == limit + 1
    before = db_snapshot(app)
    for method, path in _write_requests(world):
        assert_scim_error(scim.request(method, path, raw=raw), 413)
    assert db_snapshot(app) == before
    exactly = raw.replace(b"x", b"", 1)
    assert scim.request("POST", "/Users", raw=exactly).status_code == 400  # read, then refused


def test_chunked_body_without_content_length_is_cut_off_at_the_limit_over_real_http(
    app: Flask, scim: Scim, live_server: str
) -> None:
    app.config["SCIM_MAX_BODY_BYTES"] = 64 * 1024
    before = db_snapshot(app)
    url = urlsplit(live_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    chunk = b" " * 16 * 1024  # whitespace: valid JSON padding, so only the size can refuse it

    def body() -> Any:
        yield b'{"userName": "chunked@acme.example"'
        for _ in range(64):  # 1 MiB in all, never announced
            yield chunk
        yield b"}"

    conn.request("POST", f"/scim/v2/{scim.key}/Users", body=body(), encode_chunked=True,
                 headers={"Authorization": f"Bearer {scim.token}",
                          "Content-Type": "application/scim+json",
                          "Transfer-Encoding": "chunked"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    assert response.status == 413 and payload["status"] == "413"
    assert db_snapshot(app) == before


def test_huge_strings_anywhere_are_a_scim_4xx_never_truncated_into_the_database(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    big = "x" * 900_000
    before = db_snapshot(app)
    ann, group = f"/Users/{world['ann']}", f"/Groups/{world['group']}"
    refused = [
        scim.post("/Users", {"userName": big}),
        scim.post("/Users", {"userName": f"{big}@acme.example"}),
        scim.post("/Groups", {"displayName": big}),
        scim.patch(ann, {"op": "replace", "path": big, "value": "x"}),
        scim.patch(ann, {"op": "replace", "path": f"emails[{big}]", "value": "x"}),
        scim.patch(ann, {"op": "replace", "path": "title", "value": big}),
        scim.patch(group, {"op": "replace", "path": big, "value": "x"}),
        scim.patch(group, {"op": "add", "path": "members", "value": [{"value": big}]}),
        scim.post("/Users/.search", {"filter": f'userName eq "{big}"'}),
        scim.post("/Users/.search", {"sortBy": big}),
        scim.get("/Users/" + "x" * 100_000),
    ]
    for response in refused:
        assert_scim_error(response, 400, 404)
    assert db_snapshot(app) == before
    ignored = scim.patch(ann, {"op": "replace", "value": {big: "x"}})  # no such attribute
    assert ignored.status_code == 200
    for field in ("attributes", "excludedAttributes"):
        assert scim.post("/Users/.search", {field: [big]}).status_code == 200
    assert db_snapshot(app) == before


def test_unknown_attributes_are_ignored_on_write_and_refused_as_a_patch_path(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    created = scim.create_user("new@acme.example", favouriteColour={"deep": [1, {"x": 2}]},
                               **{"urn:example:params:scim:schemas:extension:acme:1.0:User":
                                  {"shoeSize": 44},
                                  "name": {"givenName": "New", "nickname2": "N"},
                                  "emails": [{"value": "new@acme.example", "colour": "blue"}]})
    stored = scim.get(f"/Users/{created['id']}").get_json(force=True)
    text = json.dumps(stored)
    assert "favouriteColour" not in text and "shoeSize" not in text
    assert "nickname2" not in text and "colour" not in text
    assert stored["name"] == {"givenName": "New"}
    before = db_snapshot(app)
    for path in ("favouriteColour", "name.shoeSize", f"{ENTERPRISE}:shoeSize", "emails.colour",
                 'emails[type eq "work"].colour', "emails.colour.x", f"{ENTERPRISE}:manager.shoe",
                 "addresses.shoeSize", "title.first"):
        response = scim.patch(f"/Users/{world['ann']}", {"op": "add", "path": path, "value": "1"})
        assert assert_scim_error(response, 400)["scimType"] == "invalidPath", path
    group = scim.patch(f"/Groups/{world['group']}", {"op": "add", "path": "colour", "value": "x"})
    assert assert_scim_error(group, 400)["scimType"] == "invalidPath"
    assert db_snapshot(app) == before


# ---- filters, paging and sorting ---------------------------------------------------------

HOSTILE_FILTERS = [
    "(" * 2000 + 'userName eq "a"' + ")" * 2000,
    "not (" * 500 + 'displayName eq "a"' + ")" * 500,
    " or ".join(['userName eq "a"'] * 400),
    'emails[' * 300 + 'value eq "a"' + ']' * 300,
    'displayName eq "' + '\\"' * 1500 + '"',
    'displayName eq "' + "\\\\" * 1500 + '"',
    'displayName eq "\\',
    'displayName eq "\u202e\u0000\U0001f600\ufffd"',
    'displayName eq "\\ud800"',
    "displayName eq 'single quoted'",
    'displayName eq "a" ; DROP TABLE "group"; --',
    'displayName eq "x" UNION SELECT password_hash FROM account',
    'displayName co "%" or displayName sw "_"',
    "password pr",
    'members[value eq "x" or value pr] and members.value eq "y"',
    "meta.lastModified gt \"not-a-date\"",
    'id eq 1e999',
    "",
    "   ",
]
LIST_ENDPOINTS = ["/Users", "/Groups", "/Users/.search", "/Groups/.search", "/.search"]


@pytest.mark.parametrize("text", HOSTILE_FILTERS, ids=range(len(HOSTILE_FILTERS)))
def test_hostile_filters_are_200_or_400_on_every_list_endpoint_and_change_nothing(
    app: Flask, scim: Scim, world: dict[str, str], text: str
) -> None:
    from urllib.parse import quote

    before = db_snapshot(app)
    for endpoint in LIST_ENDPOINTS:
        if endpoint.endswith(".search"):
            response = scim.post(endpoint, {"filter": text})
        else:
            response = scim.get(f"{endpoint}?filter={quote(text)}")
        if response.status_code == 200:
            assert response.get_json(force=True)["totalResults"] <= 3
        else:
            body = assert_scim_error(response, 400)
            assert body["scimType"] in ("invalidFilter", "invalidValue"), (endpoint, body)
    assert db_snapshot(app) == before


@pytest.mark.parametrize("field, value, status", [
    ("count", -1, 200), ("count", 10**30, 200), ("count", "5", 200), ("count", 1.5, 400),
    ("count", "ten", 400), ("count", [5], 400), ("count", {"n": 5}, 400), ("count", True, 400),
    ("startIndex", 0, 200), ("startIndex", -10**30, 200), ("startIndex", 10**30, 200),
    ("startIndex", "x", 400), ("startIndex", [1], 400), ("startIndex", False, 400),
    ("sortBy", "shoeSize", 400), ("sortBy", "account.password_hash", 400),
    ("sortBy", "password", 400), ("sortBy", "userName; DROP TABLE membership", 400),
    ("sortBy", 5, 400), ("sortBy", ["userName"], 400), ("sortOrder", "sideways", 400),
    ("attributes", ["userName", "'; DROP TABLE membership; --", "password"], 200),
    ("excludedAttributes", ['name"', "emails[", "urn:x:y"], 200),
    ("attributes", "userName", 200), ("attributes", 5, 400), ("attributes", [5], 400),
])
def test_paging_sorting_and_attribute_parameters_of_any_type_are_200_or_400(
    app: Flask, scim: Scim, world: dict[str, str], field: str, value: Any, status: int
) -> None:
    before = db_snapshot(app)
    for endpoint in ("/Users/.search", "/Groups/.search", "/.search"):
        response = scim.post(endpoint, {field: value})
        if status == 400:
            assert assert_scim_error(response, 400)["scimType"] == "invalidValue"
        else:
            assert response.status_code == 200, response.get_data(as_text=True)
            text = response.get_data(as_text=True)
            assert "pbkdf2" not in text and "scrypt" not in text and "password" not in text
    assert db_snapshot(app) == before


def test_sql_in_values_is_stored_and_matched_literally_never_executed(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    names = ["x' OR '1'='1", 'robert"); DROP TABLE membership;--', "100%_match\\",
             "a%", "a_"]
    ids = {n: scim.create_user(f"user{i}@acme.example", displayName=n)["id"]
           for i, n in enumerate(names)}
    for name, user_id in ids.items():
        quoted = json.dumps(name)
        found = scim.post("/Users/.search", {"filter": f"displayName eq {quoted}"})
        assert [r["id"] for r in found.get_json(force=True)["Resources"]] == [user_id], name
    starts = scim.post("/Users/.search", {"filter": 'displayName sw "a%"'}).get_json(force=True)
    assert [r["displayName"] for r in starts["Resources"]] == ["a%"]  # % is not a wildcard
    nothing = scim.post("/Users/.search", {"filter": "displayName eq \"nobody' OR '1'='1\""})
    assert nothing.get_json(force=True)["totalResults"] == 0
    everyone = scim.get("/Users").get_json(force=True)
    assert everyone["totalResults"] == 2 + len(names)  # no table dropped, no row lost


# ---- a long PATCH whose last operation is invalid ----------------------------------------

def _user_ops(world: dict[str, str]) -> list[dict[str, Any]]:
    cycle = [
        {"op": "replace", "path": "title", "value": "Lead"},
        {"op": "add", "path": "emails", "value": [{"value": "second@acme.example"}]},
        {"op": "replace", "path": "name.givenName", "value": "Annie"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "remove", "path": f"{ENTERPRISE}:manager"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Sales"},
        {"op": "replace", "value": {"displayName": "Ann A.", "nickName": "A"}},
        {"op": "remove", "path": 'emails[type eq "work"]'},
        {"op": "replace", "path": "userName", "value": "ann.a@acme.example"},
    ]
    return [cycle[n % len(cycle)] for n in range(999)]


@pytest.mark.parametrize("last, status", [
    ({"op": "replace", "path": "nickName.first", "value": "x"}, 400),
    ({"op": "replace", "path": "active", "value": "perhaps"}, 400),
    ({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": "no-such-user"}, 400),
    ({"op": "replace", "path": "userName", "value": "BOB@acme.example"}, 409),
    ({"op": "move", "path": "title"}, 400),
], ids=["bad path", "bad value", "unknown manager", "taken userName", "unknown op"])
def test_thousand_operation_user_patch_with_a_bad_last_operation_changes_nothing(
    app: Flask, scim: Scim, world: dict[str, str], last: dict[str, Any], status: int
) -> None:
    ops = [*_user_ops(world), last]
    assert len(ops) == 1000
    before = db_snapshot(app)
    assert_scim_error(scim.patch(f"/Users/{world['ann']}", *ops), status)
    assert db_snapshot(app) == before
    assert scim.patch(f"/Users/{world['ann']}", *ops[:-1]).status_code == 200  # the rest is valid
    assert scim.member(world["ann"]).user_name == "ann.a@acme.example"


@pytest.mark.parametrize("last", [
    {"op": "add", "path": "members.value", "value": "x"},
    {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]},
    {"op": "replace", "path": "displayName", "value": None},
    {"op": "replace", "path": "displayName", "value": ["Staff"]},
], ids=["bad path", "unknown member", "name removed", "name not a string"])
def test_thousand_operation_group_patch_with_a_bad_last_operation_changes_nothing(
    app: Flask, scim: Scim, world: dict[str, str], last: dict[str, Any]
) -> None:
    people = [scim.create_user(f"p{n}@acme.example")["id"] for n in range(10)]
    cycle = [{"op": "add", "path": "members", "value": [{"value": p}]} for p in people]
    cycle += [{"op": "remove", "path": f'members[value eq "{world["ann"]}"]'},
              {"op": "replace", "path": "displayName", "value": "Renamed"},
              {"op": "replace", "path": "externalId", "value": "ext-renamed"},
              {"op": "Remove", "path": "members", "value": [{"value": people[0]}]}]
    ops = [cycle[n % len(cycle)] for n in range(999)] + [last]
    before = db_snapshot(app)
    body = assert_scim_error(scim.patch(f"/Groups/{world['group']}", *ops), 400)
    assert body["scimType"] in ("invalidPath", "invalidValue")
    assert db_snapshot(app) == before
    assert scim.patch(f"/Groups/{world['group']}", *ops[:-1]).status_code == 204
    assert len(scim.group_member_ids(world["group"])) == 11


def test_taking_another_users_name_is_409_in_every_write_and_changes_nothing(
    app: Flask, scim: Scim, world: dict[str, str]
) -> None:
    ann = f"/Users/{world['ann']}"  # Ann has a manager: the lookup once flushed the clash early
    before = db_snapshot(app)
    for response in (
        scim.put(ann, {"userName": "BOB@acme.example", ENTERPRISE: {"manager": world["bob"]}}),
        scim.patch(ann, {"op": "replace", "path": "userName", "value": "bob@ACME.example"}),
        scim.patch(ann, {"op": "replace", "value": {"userName": "Bob@acme.example",
                                                    "title": "Boss"}}),
        scim.post("/Users", {"userName": "bOb@acme.example", ENTERPRISE: {"manager": world["ann"]}}),
    ):
        assert assert_scim_error(response, 409)["scimType"] == "uniqueness"
    assert db_snapshot(app) == before
