"""Per-request cost: a filter lookup and a page of Users take a constant number of statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from portal.extensions import db
from tests.conftest import count_statements
from tests.scim.conftest import Scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine executes inside the block."""
    with app.app_context():
        engine = db.engine
    with count_statements(engine) as seen:
        yield seen


def _seed(scim: Scim, start: int, stop: int, group_id: str, boss_id: str) -> None:
    ids = []
    for n in range(start, stop):
        ids.append(scim.create_user(
            f"user{n:03}@acme.example", displayName=f"User {n}",
            emails=[{"value": f"user{n:03}@acme.example", "type": "work", "primary": True},
                    {"value": f"u{n}@home.example", "type": "home"}],
            **{ENTERPRISE: {"manager": boss_id, "department": "Ops"}})["id"])
    scim.patch(f"/Groups/{group_id}", {"op": "add", "path": "members",
                                       "value": [{"value": i} for i in ids]})


def test_a_page_of_users_costs_the_same_statements_for_10_or_100_users(
    app: Flask, scim: Scim
) -> None:
    boss = scim.create_user("boss@acme.example", displayName="Boss")
    group = scim.create_group("Everyone")
    _seed(scim, 0, 9, group["id"], boss["id"])
    with statements(app) as small:
        page = scim.get("/Users?count=100").get_json(force=True)
    assert page["itemsPerPage"] == 10
    _seed(scim, 9, 99, group["id"], boss["id"])
    with statements(app) as large:
        page = scim.get("/Users?count=100").get_json(force=True)
    assert page["itemsPerPage"] == 100
    assert all(len(r["emails"]) == 2 and r["groups"] for r in page["Resources"][1:])
    assert len(large) == len(small)
    assert len(large) <= 8, large  # token, organisation, count, page, emails, groups, managers


def test_a_filter_lookup_is_a_handful_of_statements(app: Flask, scim: Scim) -> None:
    for n in range(30):
        scim.create_user(f"user{n:03}@acme.example",
                         emails=[{"value": f"user{n:03}@acme.example", "type": "work"}])
    with statements(app) as seen:
        body = scim.get('/Users?filter=userName eq "USER017@acme.example"').get_json(force=True)
    assert body["totalResults"] == 1
    assert len(seen) <= 7, seen
    with statements(app) as seen:
        body = scim.get('/Users?filter=emails[type eq "work"].value eq "user020@acme.example"'
                        ).get_json(force=True)
    assert body["totalResults"] == 1 and len(seen) <= 7


def test_group_read_without_members_never_loads_members(app: Flask, scim: Scim) -> None:
    ids = [scim.create_user(f"m{n}@acme.example")["id"] for n in range(5)]
    group = scim.create_group("Big", ids)
    with statements(app) as seen:
        slim = scim.get(f"/Groups/{group['id']}?excludedAttributes=members").get_json(force=True)
    assert "members" not in slim
    assert not any("group_member" in s for s in seen), seen


def test_adding_one_member_to_a_group_never_reads_the_member_list(
    app: Flask, scim: Scim
) -> None:
    ids = [scim.create_user(f"m{n}@acme.example")["id"] for n in range(20)]
    group = scim.create_group("Big", ids[:19])
    with statements(app) as seen:
        response = scim.patch(f"/Groups/{group['id']}",
                              {"op": "add", "path": "members", "value": [{"value": ids[19]}]})
    assert response.status_code == 204
    member_reads = [s for s in seen if "FROM group_member" in s and "SELECT" in s]
    assert all("IN (" in s for s in member_reads), member_reads  # only the named rows
    assert scim.group_member_ids(group["id"]) == set(ids)
