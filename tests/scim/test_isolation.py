"""Tenant isolation and hostile input: nothing crosses organisations, nothing is a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Membership
from tests.scim.conftest import Scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_ids_of_another_organisation_are_404_in_every_verb(scim: Scim, other_scim: Scim) -> None:
    theirs = other_scim.create_user("them@globex.example")
    their_group = other_scim.create_group("Globex Staff", [theirs["id"]])
    for path in (f"/Users/{theirs['id']}", f"/Groups/{their_group['id']}"):
        assert scim.get(path).status_code == 404
        assert scim.put(path, {"userName": "x@acme.example", "displayName": "x"}
                        ).status_code == 404
        assert scim.patch(path, {"op": "replace", "path": "displayName", "value": "x"}
                          ).status_code == 404
        assert scim.delete(path).status_code == 404
    assert other_scim.member(theirs["id"]).active is True
    assert other_scim.group_member_ids(their_group["id"]) == {theirs["id"]}


def test_filters_and_lists_never_cross_organisations(scim: Scim, other_scim: Scim) -> None:
    theirs = other_scim.create_user("same@example.com")
    other_scim.create_group("Same")
    assert scim.get('/Users?filter=userName eq "same@example.com"').get_json(
        force=True)["totalResults"] == 0
    assert scim.get(f'/Users?filter=id eq "{theirs["id"]}"').get_json(
        force=True)["totalResults"] == 0
    assert scim.post("/.search", {}).get_json(force=True)["totalResults"] == 0
    ours = scim.create_user("same@example.com")  # the same userName is free here
    assert ours["id"] != theirs["id"]


def test_manager_and_members_of_another_organisation_are_refused(
    app: Flask, scim: Scim, other_scim: Scim
) -> None:
    theirs = other_scim.create_user("boss@globex.example")
    response = scim.post("/Users", {"userName": "ann@acme.example",
                                    ENTERPRISE: {"manager": theirs["id"]}})
    assert response.status_code == 400
    group = scim.create_group("Acme Staff")
    added = scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members",
                                                  "value": [{"value": theirs["id"]}]})
    assert added.status_code == 400
    assert scim.group_member_ids(group["id"]) == set()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.organisation_id == scim.org_id)) == 0


@pytest.mark.parametrize("query", [
    "filter=" + "(" * 200 + 'userName eq "a"' + ")" * 200,
    "filter=userName eq \"" + "x" * 5000 + "\"",
    "filter=userName eq \"a\\\"; DROP TABLE membership; --\"",
    "filter=userName eq \"\\u0000\"",
    "filter=userName eq \"\u00e9\u4e2d\U0001f600\"",
    "filter=title co \"%\" or userName sw \"_\"",
    "filter=password eq \"x\"",
    "sortBy=userName;DROP TABLE membership",
    "sortBy=account.password_hash",
    "attributes=userName,,%27;--,name.%22",
    "excludedAttributes=urn:x:y:z,[]",
    "count=-1&startIndex=-99999999999999999999999",
])
def test_hostile_query_strings_are_a_scim_4xx_or_200_never_500(
    app: Flask, scim: Scim, query: str
) -> None:
    scim.create_user("a@acme.example", title="50% off")
    response = scim.get(f"/Users?{query}")
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    if response.status_code == 400:
        assert response.get_json(force=True)["scimType"] in ("invalidFilter", "invalidValue")
    assert scim.get("/Users").get_json(force=True)["totalResults"] == 1  # the table is intact


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["op", "path", "value", "Operations", "userName", "emails", "members",
                         "active", "displayName", "type", "primary", "manager", ENTERPRISE,
                         "name.givenName", 'emails[type eq "work"].value']),
        children, max_size=4),
    max_leaves=12)
OPS = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove", "copy"])},
    optional={"path": st.sampled_from(["title", "emails", 'emails[type eq "work"].value',
                                       "name.givenName", "active", "members", "userName",
                                       f"{ENTERPRISE}:manager", "emails[", "x.y.z"]),
              "value": JSON}), min_size=1, max_size=5)


@pytest.mark.sqlite_only
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_user_patch_is_2xx_or_a_scim_4xx_with_nothing_written(
    app: Flask, scim: Scim, ops: list[dict[str, Any]]
) -> None:
    user_id = scim.get('/Users?filter=userName eq "prop@acme.example"').get_json(
        force=True)["Resources"]
    if not user_id:
        user_id = [scim.create_user("prop@acme.example", title="T")]
    path = f"/Users/{user_id[0]['id']}"
    before = scim.get(path).get_json(force=True)
    with app.app_context():
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = scim.request("PATCH", path, {"Operations": ops})
    assert response.status_code in (200, 400, 409), (ops, response.get_data(as_text=True))
    if response.status_code != 200:
        assert response.get_json(force=True)["status"] == str(response.status_code)
        assert scim.get(path).get_json(force=True) == before
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events
    else:
        assert json.loads(response.data)["id"] == before["id"]
