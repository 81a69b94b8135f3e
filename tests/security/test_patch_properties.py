"""Property tests over the PATCH engine, against a real User and a real Group.

Random lists of add/replace/remove operations with random paths (valid, unknown,
malformed, value filters) and random values (valid ids, ids of another organisation,
wrong types, nesting). Every answer is a 2xx or a SCIM 4xx error body; after a 4xx every
row of every table is as it was; after a 2xx no reference crosses organisations.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.models import Group, GroupMember, Membership
from tests.scim.conftest import Scim
from tests.security.conftest import db_snapshot

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, derandomize=False,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])

# Placeholders replaced by real ids once the fixtures exist.
IDS = ["@mine0", "@mine1", "@mine2", "@self", "@foreign", "@group", "no-such-id", ""]
PRIMITIVES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=False),
    st.text(max_size=12), st.sampled_from(IDS),
    st.sampled_from(["True", "false", "work", "home", "a@acme.example", "O'Brien", "%", "\\",
                     "\x00", "x" * 400]))
KEYS = st.sampled_from(["value", "type", "primary", "display", "$ref", "givenName",
                        "familyName", "formatted", "title", "active", "members", "displayName",
                        "externalId", "emails", "manager", "userName", "id", "meta", "shoeSize",
                        f"{ENTERPRISE}:department", f"{ENTERPRISE}:manager", ENTERPRISE,
                        "name.givenName", "urn:ietf:params:scim:schemas:core:2.0:User:title"])
VALUES = st.recursive(PRIMITIVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)
MEMBER_LISTS = st.lists(st.fixed_dictionaries({"value": st.sampled_from(IDS)}), max_size=4)

USER_PATHS = st.sampled_from([
    None, "userName", "displayName", "title", "active", "externalId", "nickName", "locale",
    "name", "name.givenName", "name.familyName", "name.shoeSize", "emails", "emails.value",
    'emails[type eq "work"]', 'emails[type eq "work"].value', 'emails[primary eq true].type',
    'emails[value co "@"].display', "phoneNumbers", 'addresses[type eq "work"].locality',
    "roles", "entitlements.value", f"{ENTERPRISE}:department", f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:manager.value", ENTERPRISE, "id", "meta.created", "groups", "password",
    "schemas", "urn:example:ext:1.0:User:shoe", "favouriteColour", "title.sub", "emails[",
    'emails[type eq "work"', "name..givenName", "", " "])
GROUP_PATHS = st.sampled_from([
    None, "displayName", "externalId", "members", 'members[value eq "@mine0"]',
    'members[value eq "@mine1" or value eq "@foreign"]', 'members[display co "a"]',
    'members[value eq "no-such-id"]', "members.value", "members.display", "id", "meta",
    "schemas", "shoeSize", "displayName.x", "members[", "", "urn:example:ext:1.0:Group:x"])
OP_NAMES = st.sampled_from(["add", "replace", "remove", "Add", "REPLACE", "Remove", "copy", ""])


NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20)
EMAILS = st.sampled_from(["a@acme.example", "target@acme.example", "m0@acme.example", "x@y",
                          "not an email"])
USER_CHANGES = st.one_of(  # well-formed (path, value) pairs, some refused by the rules
    st.tuples(st.sampled_from(["title", "displayName", "nickName", "locale", "externalId",
                               "name.givenName", "name.familyName", f"{ENTERPRISE}:department"]),
              NAMES),
    st.tuples(st.just("active"), st.sampled_from([True, False, "True", "False"])),
    st.tuples(st.just("userName"), EMAILS),
    st.tuples(st.just("emails"), st.lists(st.fixed_dictionaries(
        {"value": EMAILS, "type": st.sampled_from(["work", "home"]), "primary": st.booleans()}),
        max_size=3)),
    st.tuples(st.just('emails[type eq "work"].value'), EMAILS),
    st.tuples(st.sampled_from([f"{ENTERPRISE}:manager", f"{ENTERPRISE}:manager.value"]),
              st.sampled_from(IDS)),
    st.tuples(st.none(), st.fixed_dictionaries({}, optional={
        "title": NAMES, "name.givenName": NAMES, "active": st.booleans(),
        ENTERPRISE: st.fixed_dictionaries({"department": NAMES}),
        f"{ENTERPRISE}:manager": st.sampled_from(IDS)})),
)
GROUP_CHANGES = st.one_of(
    st.tuples(st.just("displayName"), st.one_of(NAMES, st.just("Other group"))),
    st.tuples(st.just("externalId"), NAMES),
    st.tuples(st.just("members"), MEMBER_LISTS),
    st.tuples(st.sampled_from(['members[value eq "@mine1"]', 'members[value eq "@mine2"]',
                               'members[display co "1"]']), st.none()),
    st.tuples(st.none(), st.fixed_dictionaries({}, optional={
        "displayName": NAMES, "externalId": NAMES, "members": MEMBER_LISTS})),
)


def _well_formed(changes: st.SearchStrategy[tuple[str | None, Any]]) -> st.SearchStrategy[Any]:
    def build(op: str, change: tuple[str | None, Any]) -> dict[str, Any]:
        path, value = change
        if op == "remove" and path is not None:
            return {"op": op, "path": path}
        return {"op": op, **({} if path is None else {"path": path}), "value": value}

    return st.builds(build, st.sampled_from(["add", "replace", "remove", "Replace"]), changes)


def _operations(paths: st.SearchStrategy[str | None],
                changes: st.SearchStrategy[tuple[str | None, Any]]) -> st.SearchStrategy[list[Any]]:
    anything = st.builds(
        lambda op, path, value, has_value: {"op": op, **({} if path is None else {"path": path}),
                                            **({"value": value} if has_value else {})},
        OP_NAMES, paths, st.one_of(VALUES, MEMBER_LISTS), st.booleans())
    well_formed = _well_formed(changes)
    mixed = st.one_of(well_formed, anything, PRIMITIVES)
    return st.one_of(st.lists(well_formed, min_size=1, max_size=5),
                     st.lists(mixed, min_size=1, max_size=5))


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    """Replace the placeholders with real ids, in strings, lists and objects alike."""
    text = json.dumps(value)
    for placeholder, real in ids.items():
        text = text.replace(placeholder, real)
    return json.loads(text)


def _cross_organisation_references(app: Flask) -> int:
    """Count group members and managers that belong to another organisation than their owner."""
    manager = aliased(Membership)
    with app.app_context():
        members = db.session.scalar(
            select(func.count()).select_from(GroupMember)
            .join(Group, Group.id == GroupMember.group_id)
            .join(Membership, Membership.id == GroupMember.membership_id)
            .where(Group.organisation_id != Membership.organisation_id)) or 0
        managers = db.session.scalar(
            select(func.count()).select_from(Membership)
            .join(manager, manager.id == Membership.manager_id)
            .where(manager.organisation_id != Membership.organisation_id)) or 0
        return members + managers


def _setup(scim: Scim, other_scim: Scim) -> dict[str, str]:
    cached: dict[str, str] | None = getattr(scim, "property_ids", None)
    if cached:  # Hypothesis runs every example against the same fixtures
        return cached
    mine = [scim.create_user(f"m{n}@acme.example", displayName=f"M{n}")["id"] for n in range(3)]
    target = scim.create_user("target@acme.example", title="T", emails=[
        {"value": "target@acme.example", "type": "work", "primary": True}],
        **{ENTERPRISE: {"manager": mine[0]}})
    group = scim.create_group("Target group", mine[:2])
    scim.create_group("Other group")
    foreign = other_scim.create_user("stranger@globex.example")
    ids = {"@mine0": mine[0], "@mine1": mine[1], "@mine2": mine[2], "@self": target["id"],
           "@foreign": foreign["id"], "@group": group["id"]}
    scim.property_ids = ids  # type: ignore[attr-defined]
    return ids


def _check(app: Flask, scim: Scim, path: str, ops: list[Any], ids: dict[str, str]) -> None:
    before = db_snapshot(app)
    response = scim.request("PATCH", path, _substitute({"Operations": ops}, ids))
    status = response.status_code
    event(f"status {status}")  # pytest --hypothesis-show-statistics shows the mix
    assert status in (200, 204) or 400 <= status < 500, (status, ops)
    if status >= 400:
        body = json.loads(response.get_data(as_text=True))
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == str(status) and body.get("detail")
        assert db_snapshot(app) == before, ops
    else:
        assert scim.get(path).status_code == 200
    assert _cross_organisation_references(app) == 0


@PROPERTY_SETTINGS
@given(ops=_operations(USER_PATHS, USER_CHANGES))
def test_any_user_patch_is_2xx_or_a_scim_4xx_and_a_4xx_changes_no_row(
    app: Flask, scim: Scim, other_scim: Scim, ops: list[Any]
) -> None:
    ids = _setup(scim, other_scim)
    _check(app, scim, f"/Users/{ids['@self']}", ops, ids)


@PROPERTY_SETTINGS
@given(ops=_operations(GROUP_PATHS, GROUP_CHANGES))
def test_any_group_patch_is_2xx_or_a_scim_4xx_and_a_4xx_changes_no_row(
    app: Flask, scim: Scim, other_scim: Scim, ops: list[Any]
) -> None:
    ids = _setup(scim, other_scim)
    _check(app, scim, f"/Groups/{ids['@group']}", ops, ids)
    listed = scim.get(f"/Groups/{ids['@group']}").get_json(force=True)
    assert {m["value"] for m in listed.get("members", [])} == scim.group_member_ids(ids["@group"])
