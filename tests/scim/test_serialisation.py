"""What goes in comes back out: Users and Groups as stored and returned, and lenient input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Account, Membership
from tests.scim.conftest import Scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

FULL_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
    "externalId": "ext-42", "userName": "Barbara.Jensen@acme.example",
    "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen",
             "givenName": "Barbara", "middleName": "Jane", "honorificPrefix": "Ms.",
             "honorificSuffix": "III"},
    "displayName": "Babs Jensen", "nickName": "Babs", "profileUrl": "https://login.example/bjensen",
    "title": "Tour Guide", "userType": "Employee", "preferredLanguage": "en-US",
    "locale": "en-US", "timezone": "America/Los_Angeles", "active": True,
    "emails": [{"value": "bjensen@acme.example", "type": "work", "primary": True},
               {"value": "babs@jensen.example", "type": "home", "primary": False,
                "display": "Home"}],
    "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "photos": [{"value": "https://photos.example/bjensen.jpg", "type": "photo"}],
    "addresses": [{"streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
                   "region": "CA", "postalCode": "91608", "country": "USA", "type": "work",
                   "primary": True}],
    "entitlements": [{"value": "delete-all"}], "roles": [{"value": "guide", "primary": True}],
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
    ENTERPRISE: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal",
                 "division": "Theme Park", "department": "Tour Operations"},
}


def _strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("id", "meta", "groups")}


def test_every_attribute_round_trips_through_post_and_get(scim: Scim) -> None:
    response = scim.post("/Users", FULL_USER)
    assert response.status_code == 201
    created = response.get_json(force=True)
    assert _strip(created) == FULL_USER
    fetched = scim.get(f"/Users/{created['id']}").get_json(force=True)
    assert fetched == created
    stored = scim.member(created["id"])
    assert stored.department == "Tour Operations" and stored.given_name == "Barbara"
    assert stored.extra_attributes["phoneNumbers"] == [{"value": "555-555-5555", "type": "work"}]
    assert [e.value for e in stored.emails] == ["bjensen@acme.example", "babs@jensen.example"]


def test_post_answers_201_with_location_equal_to_meta_location_and_etag(scim: Scim) -> None:
    response = scim.post("/Users", {"userName": "ann@acme.example"})
    body = response.get_json(force=True)
    assert response.status_code == 201
    assert response.headers["Location"] == body["meta"]["location"]
    assert body["meta"]["location"] == f"https://dpms.test{scim.base}/Users/{body['id']}"
    assert body["meta"]["resourceType"] == "User"
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"1"'
    assert body["meta"]["created"].endswith("Z")


def test_password_is_accepted_but_never_stored_or_returned(app: Flask, scim: Scim) -> None:
    secret = "Sup3r-Secret-Password!"
    created = scim.create_user("ann@acme.example", password=secret)
    assert "password" not in created
    put = scim.put(f"/Users/{created['id']}", {"userName": "ann@acme.example",
                                                "password": secret}).get_json(force=True)
    assert "password" not in put
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == "ann@acme.example"))
        assert account.password_hash is None
        member = db.session.scalar(select(Membership).where(Membership.account_id == account.id))
        assert secret not in repr(member.extra_attributes)


def test_manager_is_stored_as_a_reference_and_returned_as_an_object(scim: Scim) -> None:
    boss = scim.create_user("boss@acme.example", displayName="The Boss")
    for manager in (boss["id"], {"value": boss["id"]}, [{"value": boss["id"], "$ref": None}]):
        created = scim.create_user(f"worker-{len(str(manager))}@acme.example",
                                   **{ENTERPRISE: {"manager": manager}})
        assert created[ENTERPRISE]["manager"] == {
            "value": boss["id"], "$ref": f"https://dpms.test{scim.base}/Users/{boss['id']}",
            "displayName": "The Boss"}
        assert scim.member(created["id"]).manager_id == scim.member(boss["id"]).id


def test_unknown_manager_is_400_and_nothing_is_stored(app: Flask, scim: Scim) -> None:
    response = scim.post("/Users", {"userName": "w@acme.example",
                                    ENTERPRISE: {"manager": {"value": "no-such-user"}}})
    assert response.status_code == 400
    assert response.get_json(force=True)["scimType"] == "invalidValue"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Account)) == 0


def test_null_attributes_unknown_urns_and_read_only_attributes_are_ignored(scim: Scim) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User",
                    "urn:example:custom:1.0"],
        "id": "client-chosen-id", "meta": {"resourceType": "User", "created": "1999-01-01"},
        "groups": [{"value": "g1"}], "userName": "ann@acme.example", "title": None,
        "name": None, "roles": [], "displayName": "Ann",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User": {"department": "Lost"},
        "urn:example:custom:1.0": {"shoeSize": 42},
    }
    created = scim.post("/Users", body).get_json(force=True)
    assert created["id"] != "client-chosen-id"
    assert "groups" not in created and "title" not in created and "name" not in created
    assert ENTERPRISE not in created and created["displayName"] == "Ann"
    assert not created["meta"]["created"].startswith("1999")


def test_scim_1_style_core_urn_and_single_object_multi_valued_are_accepted(scim: Scim) -> None:
    # OneLogin: admin-templated bodies with a SCIM 1.x-ish URN and `emails` as one object.
    body = {"schemas": ["urn:scim:schemas:core:2.0"], "userName": "ann@acme.example",
            "emails": {"value": "ann@acme.example", "type": "work", "primary": "true"},
            "active": "true"}
    created = scim.post("/Users?", body).get_json(force=True)
    assert created["emails"] == [{"value": "ann@acme.example", "type": "work", "primary": True}]
    assert created["active"] is True


@pytest.mark.parametrize("active,expected", [("True", True), ("False", False), ("false", False),
                                             (True, True), (False, False)])
def test_active_strings_are_read_as_booleans(scim: Scim, active: object, expected: bool) -> None:
    created = scim.create_user("ann@acme.example", active=active)
    assert created["active"] is expected and scim.member(created["id"]).active is expected


@pytest.mark.parametrize("body,attribute", [
    ({"userName": "a@b.example", "displayName": {"a": 1}}, "displayName"),
    ({"userName": "a@b.example", "active": "maybe"}, "active"),
    ({"userName": "a@b.example", "emails": "not-a-list-of-objects"}, None),
    ({"userName": "a@b.example", "emails": [{"value": ["x"]}]}, "emails.value"),
    ({"userName": "a@b.example", "name": ["x"]}, "name"),
    ({"userName": "a@b.example", "title": "x" * 5000}, "title"),
    ({"userName": "a" * 400 + "@b.example"}, "userName"),
    ({"userName": "nul\u0000byte@b.example"}, "userName"),
    ({"userName": "lone\ud800surrogate@b.example"}, "userName"),
    ({"displayName": "no user name"}, "userName"),
    ({"userName": "   "}, "userName"),
])
def test_wrong_types_and_oversized_values_are_400_and_nothing_is_stored(
    app: Flask, scim: Scim, body: dict, attribute: str | None
) -> None:
    response = scim.post("/Users", body)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json(force=True)
    assert error["scimType"] == "invalidValue"
    if attribute:
        assert attribute in error["detail"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership)) == 0


def test_user_groups_are_read_only_and_reflect_group_membership(scim: Scim) -> None:
    user = scim.create_user("ann@acme.example")
    group = scim.create_group("Engineering", [user["id"]])
    fetched = scim.get(f"/Users/{user['id']}").get_json(force=True)
    assert fetched["groups"] == [{"value": group["id"], "display": "Engineering", "type": "direct",
                                  "$ref": f"https://dpms.test{scim.base}/Groups/{group['id']}"}]
    replaced = scim.put(f"/Users/{user['id']}", {"userName": "ann@acme.example", "groups": []})
    assert replaced.get_json(force=True)["groups"][0]["value"] == group["id"]
    assert scim.group_member_ids(group["id"]) == {user["id"]}


@pytest.mark.parametrize("query,present,absent", [
    ("attributes=userName", {"id", "schemas", "userName"}, {"emails", "name", "meta"}),
    ("attributes=name.givenName,emails.value", {"name", "emails"}, {"userName", "title"}),
    ("excludedAttributes=emails,name", {"userName", "title", "meta"}, {"emails", "name"}),
    (f"attributes={ENTERPRISE}:department", {ENTERPRISE}, {"userName"}),
    (f"excludedAttributes={ENTERPRISE}", {"userName"}, {ENTERPRISE}),
    ("excludedAttributes=id", {"id", "userName"}, set()),
])
def test_attributes_and_excluded_attributes_shape_every_read(
    scim: Scim, query: str, present: set[str], absent: set[str]
) -> None:
    body = {"userName": "ann@acme.example", "title": "Dr", "name": {"givenName": "Ann",
            "familyName": "Lee"}, "emails": [{"value": "ann@acme.example", "type": "work"}],
            ENTERPRISE: {"department": "R&D", "costCenter": "7"}}
    posted = scim.post(f"/Users?{query}", body).get_json(force=True)
    user_id = posted["id"]
    reads = [posted,
             scim.get(f"/Users/{user_id}?{query}").get_json(force=True),
             scim.put(f"/Users/{user_id}?{query}", body).get_json(force=True),
             scim.patch(f"/Users/{user_id}?{query}",
                        {"op": "replace", "path": "title", "value": "Dr"}).get_json(force=True),
             scim.get(f"/Users?{query}").get_json(force=True)["Resources"][0]]
    for doc in reads:
        assert present <= set(doc), (query, doc)
        assert not absent & set(doc), (query, doc)
    if "givenName" in query:
        assert reads[1]["name"] == {"givenName": "Ann"}
        assert reads[1]["emails"] == [{"value": "ann@acme.example"}]
    if "department" in query:
        assert reads[1][ENTERPRISE] == {"department": "R&D"}


def test_etag_if_match_and_if_none_match(scim: Scim) -> None:
    user = scim.create_user("ann@acme.example")
    path = f"/Users/{user['id']}"
    stale = scim.patch(path, {"op": "replace", "path": "title", "value": "A"},
                       headers={"If-Match": 'W/"999"'})
    assert stale.status_code == 412
    assert scim.member(user["id"]).title is None
    fresh = scim.patch(path, {"op": "replace", "path": "title", "value": "A"},
                       headers={"If-Match": user["meta"]["version"]})
    assert fresh.status_code == 200 and fresh.get_json(force=True)["title"] == "A"
    version = fresh.headers["ETag"]
    assert version != user["meta"]["version"] == 'W/"1"'
    assert scim.get(path, headers={"If-None-Match": version}).status_code == 304
    assert scim.get(path, headers={"If-None-Match": 'W/"1"'}).status_code == 200
    assert scim.delete(path, headers={"If-Match": 'W/"1"'}).status_code == 412
    assert scim.delete(path, headers={"If-Match": "*"}).status_code == 204


def test_group_round_trips_and_excluded_members_are_not_returned(scim: Scim) -> None:
    ann = scim.create_user("ann@acme.example", displayName="Ann")
    group = scim.create_group("Engineering", [ann["id"]], externalId="g-ext")
    assert group["members"] == [{"value": ann["id"], "type": "User", "display": "Ann",
                                 "$ref": f"https://dpms.test{scim.base}/Users/{ann['id']}"}]
    assert group["externalId"] == "g-ext"
    slim = scim.get(f"/Groups/{group['id']}?excludedAttributes=members").get_json(force=True)
    assert "members" not in slim and slim["displayName"] == "Engineering"
    listed = scim.get("/Groups?excludedAttributes=members").get_json(force=True)
    assert "members" not in listed["Resources"][0]


def test_a_page_shows_the_same_timestamps_as_the_users_own_get(app: Flask, scim: Scim) -> None:
    """A page reads meta times as SCIM text (serialize.ScimTime); a single GET formats datetimes."""
    created = scim.create_user("ann@acme.example")
    changed = scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "title",
                                                      "value": "Guide"})
    assert changed.status_code == 200
    own = scim.get(f"/Users/{created['id']}").get_json(force=True)["meta"]
    assert own["lastModified"] != own["created"]
    for query in ("", '?filter=userName eq "ann@acme.example"', "?startIndex=1&count=5"):
        listed = scim.get(f"/Users{query}").get_json(force=True)["Resources"][0]["meta"]
        assert (listed["created"], listed["lastModified"]) == (own["created"], own["lastModified"])
    with app.app_context():
        member = scim.member(created["id"])
        expected = member.updated_at.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    assert own["lastModified"] == expected
    assert len(own["lastModified"]) == len("2026-11-28T12:34:56.123Z")


@pytest.mark.parametrize(("stored", "shown"), [
    ("2026-11-28 12:34:56.123456", "2026-11-28T12:34:56.123Z"),  # SQLAlchemy's SQLite text
    ("2026-11-28 12:34:56", "2026-11-28T12:34:56.000Z"),  # text without microseconds
    ("2026-11-28T13:34:56.5+01:00", "2026-11-28T12:34:56.500Z"),  # text with an offset
    (datetime(2026, 11, 28, 12, 34, 56, 999999, tzinfo=UTC), "2026-11-28T12:34:56.999Z"),
    (datetime(2026, 11, 28, 12, 34, 56), "2026-11-28T12:34:56.000Z"),  # naive: stored as UTC
    (None, None),
])
def test_scim_time_reads_every_stored_form_as_rfc3339_utc(stored: object, shown: str | None) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    from scim_api.serialize import ScimTime

    dialect = sqlite.dialect() if isinstance(stored, str) else postgresql.dialect()
    assert ScimTime().process_result_value(stored, dialect) == shown


def test_every_way_of_listing_a_user_shows_the_document_its_own_get_shows(scim: Scim) -> None:
    """Pages read Users as positional rows; a single GET reads the loaded Membership."""
    boss = scim.create_user("boss@acme.example", displayName="The Boss")
    user = dict(FULL_USER)
    user[ENTERPRISE] = {**FULL_USER[ENTERPRISE], "manager": {"value": boss["id"]}}
    created = scim.create_user(user["userName"], **{k: v for k, v in user.items()
                                                    if k != "userName"})
    scim.create_group("Guides", members=[created["id"]])
    own = scim.get(f"/Users/{created['id']}").get_json(force=True)
    assert own["groups"][0]["display"] == "Guides"
    assert own[ENTERPRISE]["manager"]["displayName"] == "The Boss"
    for query in ('?filter=userName eq "Barbara.Jensen@acme.example"',  # prepared lookup
                  '?filter=userName co "barbara"',  # any other filter
                  "?startIndex=2&count=1",  # past the first page: related rows loaded apart
                  "?sortBy=userName&count=1"):  # sorted
        listed = scim.get(f"/Users{query}").get_json(force=True)["Resources"]
        assert listed == [own], query
