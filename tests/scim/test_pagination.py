"""Listing: filters through the API, 1-based paging with clamps, stable order, sorting."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import MemberEmail
from tests.scim.conftest import Scim


@pytest.fixture
def five(scim: Scim) -> list[str]:
    """Five Users created in order; returns their ids."""
    names = ["erin", "Carl", "alice", "dan", "Bob"]
    return [scim.create_user(f"{n}@acme.example", displayName=n.title())["id"] for n in names]


def _page(scim: Scim, query: str) -> dict:
    response = scim.get(f"/Users?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(force=True)


def test_pages_are_one_based_stable_and_items_per_page_is_the_real_length(
    scim: Scim, five: list[str]
) -> None:
    first = _page(scim, "startIndex=1&count=2")
    second = _page(scim, "startIndex=3&count=2")
    last = _page(scim, "startIndex=5&count=2")
    assert [first["totalResults"], first["startIndex"], first["itemsPerPage"]] == [5, 1, 2]
    assert [last["startIndex"], last["itemsPerPage"]] == [5, 1]
    ids = [r["id"] for p in (first, second, last) for r in p["Resources"]]
    assert ids == five  # ordered by creation (id), no gaps, no repeats
    assert all(isinstance(first[k], int) for k in ("totalResults", "startIndex", "itemsPerPage"))


def test_page_past_the_end_is_200_with_empty_resources(scim: Scim, five: list[str]) -> None:
    body = _page(scim, "startIndex=50&count=10")
    assert body["Resources"] == [] and body["totalResults"] == 5 and body["itemsPerPage"] == 0


@pytest.mark.parametrize("query,start,items", [
    ("count=-5", 1, 0), ("count=0", 1, 0), ("startIndex=0&count=2", 1, 2),
    ("startIndex=-7&count=3", 1, 3), ("count=99999999999999999999", 1, 5),
    ("startIndex=99999999999999999999", 2**31, 0), ("startIndex=&count=", 1, 5),
])
def test_out_of_range_paging_values_are_clamped_as_the_rfc_says(
    scim: Scim, five: list[str], query: str, start: int, items: int
) -> None:
    body = _page(scim, query)
    assert body["startIndex"] == start and body["itemsPerPage"] == items
    assert body["totalResults"] == 5


@pytest.mark.parametrize("query", ["count=ten", "startIndex=1.5", "count=1e3", "startIndex=%00"])
def test_non_numeric_paging_values_are_400_invalid_value(scim: Scim, query: str) -> None:
    response = scim.get(f"/Users?{query}")
    assert response.status_code == 400
    assert response.get_json(force=True)["scimType"] == "invalidValue"


def test_default_count_is_100(scim: Scim) -> None:
    for n in range(105):
        scim.post("/Users", {"userName": f"user{n:03}@acme.example"})
    body = _page(scim, "")
    assert body["itemsPerPage"] == 100 and body["totalResults"] == 105
    rest = _page(scim, "startIndex=101")
    assert rest["itemsPerPage"] == 5


def test_sort_by_and_sort_order(scim: Scim, five: list[str]) -> None:
    ascending = [r["userName"] for r in _page(scim, "sortBy=userName")["Resources"]]
    assert ascending == ["alice@acme.example", "Bob@acme.example", "Carl@acme.example",
                         "dan@acme.example", "erin@acme.example"]
    descending = [r["userName"] for r in
                  _page(scim, "sortBy=userName&sortOrder=descending")["Resources"]]
    assert descending == list(reversed(ascending))
    assert scim.get("/Users?sortBy=password").status_code == 400
    assert scim.get("/Users?sortBy=userName&sortOrder=sideways").status_code == 400


def test_filter_with_no_match_is_an_empty_200_list(scim: Scim, five: list[str]) -> None:
    body = _page(scim, 'filter=userName eq "d3b07384-d9a0-4f1c-9b1e-ffb9c3b5c1a2"')
    assert body == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": 0, "itemsPerPage": 0, "startIndex": 1, "Resources": []}


def test_filter_on_user_name_is_case_insensitive_and_url_decoding_works(
    scim: Scim, five: list[str]
) -> None:
    body = _page(scim, "filter=userName+eq+%22ALICE%40ACME.EXAMPLE%22&startIndex=1&count=100")
    assert [r["id"] for r in body["Resources"]] == [five[2]]


def test_equality_lookups_reuse_one_statement_but_each_answers_its_own_value(
    scim: Scim, five: list[str]
) -> None:
    """`attr eq "text"` runs a statement built once per attribute, the text bound per request.

    Each value finds its own resource, in request order; the case rules of the attribute
    still hold (userName and displayName ignore case, externalId and id do not); paging
    past the single match is empty with the right total.
    """
    def ids(query: str, path: str = "/Users") -> list[str]:
        response = scim.get(f"{path}?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return [r["id"] for r in response.get_json(force=True)["Resources"]]

    for index, name in enumerate(["erin", "Carl", "alice", "dan", "Bob"]):
        assert ids(f'filter=userName eq "{name.upper()}@acme.example"') == [five[index]]
        assert ids(f'filter=displayName eq "{name.lower()}"') == [five[index]]
        assert ids(f'filter=id eq "{five[index]}"') == [five[index]]
    assert ids(f'filter=id eq "{five[0].upper()}"') == []
    assert scim.put(f"/Users/{five[1]}", {"userName": "Carl@acme.example",
                                           "externalId": "Ext-42"}).status_code == 200
    assert ids('filter=externalId eq "Ext-42"') == [five[1]]
    assert ids('filter=externalId eq "ext-42"') == []
    past = _page(scim, 'filter=userName eq "dan@acme.example"&startIndex=2')
    assert past["Resources"] == [] and past["totalResults"] == 1
    group = scim.create_group("Finance Team", [five[0]])
    scim.create_group("Legal", [])
    assert ids('filter=displayName eq "finance team"', "/Groups") == [group["id"]]
    assert ids('filter=displayName eq "Legal Team"', "/Groups") == []


def test_malformed_filter_is_400_invalid_filter(scim: Scim) -> None:
    for text in ['userName eq', 'userName xx "a"', '((((', 'password eq "x"']:
        response = scim.client.get(f"{scim.base}/Users", query_string={"filter": text},
                                   headers={"Authorization": f"Bearer {scim.token}"})
        assert response.status_code == 400, text
        assert response.get_json(force=True)["scimType"] == "invalidFilter"


def test_search_endpoints_take_a_search_request_body(scim: Scim, five: list[str]) -> None:
    group = scim.create_group("Admins", [five[0]])
    request = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "filter": 'userName sw "b"', "startIndex": 1, "count": 10,
               "attributes": ["userName"]}
    users = scim.post("/Users/.search", request).get_json(force=True)
    assert [r["userName"] for r in users["Resources"]] == ["Bob@acme.example"]
    assert set(users["Resources"][0]) == {"schemas", "id", "userName"}
    groups = scim.post("/Groups/.search", {"filter": 'displayName eq "admins"'}).get_json(force=True)
    assert [g["id"] for g in groups["Resources"]] == [group["id"]]
    both = scim.post("/.search", {"count": 100}).get_json(force=True)
    assert both["totalResults"] == 6
    kinds = [r["meta"]["resourceType"] for r in both["Resources"]]
    assert kinds == ["User"] * 5 + ["Group"]
    paged = scim.post("/.search", {"startIndex": 5, "count": 2}).get_json(force=True)
    assert [r["meta"]["resourceType"] for r in paged["Resources"]] == ["User", "Group"]
    only_groups = scim.post("/.search", {"filter": 'displayName eq "Admins"'}).get_json(force=True)
    assert [r["id"] for r in only_groups["Resources"]] == [group["id"]]
    assert scim.post("/Users/.search", {"count": "many"}).status_code == 400


def test_deleted_and_manual_members_are_invisible_to_scim(scim: Scim, factory, app) -> None:
    from portal.extensions import db
    from portal.models import Organisation

    gone = scim.create_user("gone@acme.example")
    scim.delete(f"/Users/{gone['id']}")
    with app.app_context():
        org = db.session.get(Organisation, scim.org_id)
        db.session.expunge(org)
    factory.member(org, "manual@acme.example")
    body = _page(scim, "")
    assert body["totalResults"] == 0
    assert _page(scim, 'filter=userName eq "manual@acme.example"')["totalResults"] == 0


def test_pages_show_each_users_emails_and_groups_in_order_as_a_get_does(scim: Scim) -> None:
    """A page reads emails and groups inside its own statement; nothing may differ from GET."""
    emails = [{"value": "z.last@acme.example", "type": "home"},
              {"value": "a.first@acme.example", "type": "work", "primary": True,
               "display": "Work"},
              {"value": "m@acme.example", "type": "other", "primary": False}]
    rich = scim.create_user("rich@acme.example", emails=emails)["id"]
    plain = scim.create_user("plain@acme.example")["id"]
    groups = [scim.create_group(name, [rich])["id"] for name in ("Zeta", "Alpha", "Mid")]
    # Stored out of id order (PostgreSQL appends a changed row): only ORDER BY keeps the order.
    remove = {"op": "remove", "path": f'members[value eq "{rich}"]'}
    assert scim.patch(f"/Groups/{groups[0]}", remove).status_code in (200, 204)
    assert scim.patch(f"/Groups/{groups[0]}", {"op": "add", "path": "members",
                                                "value": [{"value": rich}]}).status_code in (200, 204)
    with scim.app.app_context():  # an indexed column changes: a new row version, stored last
        first = db.session.scalar(select(func.min(MemberEmail.id)))
        for lowered in ("moved", "z.last@acme.example"):
            db.session.execute(update(MemberEmail).where(MemberEmail.id == first)
                               .values(value_lower=lowered))
        db.session.commit()
    expected = {uid: scim.get(f"/Users/{uid}").get_json(force=True) for uid in (rich, plain)}
    assert [e["value"] for e in expected[rich]["emails"]] == [e["value"] for e in emails]
    assert [g["display"] for g in expected[rich]["groups"]] == ["Zeta", "Alpha", "Mid"]
    listed = {u["id"]: u for u in _page(scim, "count=10")["Resources"]}
    found = _page(scim, 'filter=userName eq "rich@acme.example"')["Resources"]
    past_an_offset = _page(scim, "startIndex=2&count=1")["Resources"]  # separate queries
    assert listed == expected and found == [expected[rich]]
    assert past_an_offset == [expected[plain]]
    assert "groups" not in listed[plain] and "emails" not in listed[plain]
