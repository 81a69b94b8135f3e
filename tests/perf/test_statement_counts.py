"""SQL statements per SCIM request stay the same as the directory grows: no N+1 queries.

Each test measures a request with a small directory and again after it grew (more
users, bigger groups) and asserts the very same number of statements, under a small
bound. Statements are counted with SQLAlchemy's `before_cursor_execute` on the app's
engine, through the real SCIM endpoints; a warm-up request first takes the token's
once-a-minute "last used" write out of the count.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.perf.conftest import Directory

LARGE = 200
# Upper bounds: what each request needs today, the provisioning activity log's insert
# included (SQLite and PostgreSQL alike unless noted): filter 3 (token with its
# organisation, the page with each User's emails and groups as JSON columns, activity);
# page 4 (+ COUNT); group without
# members 3 (token, group, activity); member PATCH 10 on SQLite / 9 on PostgreSQL (token,
# BEGIN IMMEDIATE on SQLite, group, member lookup, membership check, insert or delete,
# version bump, audit event, activity).
# On PostgreSQL a read's activity INSERT also sets synchronous_commit off for its
# transaction (its record need not wait for the WAL flush; scim_api/activity.py): no
# statement more than on SQLite.
MAX_FILTER = 3
MAX_PAGE = 5  # + managers, when a page has any
MAX_GROUP_GET = 3

MAX_PATCH = 10
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _before_and_after_growth(directory: Directory, method: str, path: str, body: Any = None,
                             warm_up: tuple[Any, ...] | None = None,
                             ) -> tuple[list[str], list[str]]:
    small = directory.statements(method, path, body, warm_up)
    directory.grow(LARGE)
    return small, directory.statements(method, path, body, warm_up)


def test_filter_lookup_runs_the_same_statements_for_10_and_200_users(
        directory: Directory) -> None:
    path = "/Users?filter=" + quote('userName eq "user0005@example.com"')
    small, large = _before_and_after_growth(directory, "GET", path)
    assert len(small) == len(large), (small, large)
    assert len(large) <= MAX_FILTER, large


def test_page_of_100_users_with_emails_and_groups_runs_the_same_statements_as_a_page_of_10(
        directory: Directory) -> None:
    path = "/Users?startIndex=1&count=100"
    small = directory.statements("GET", path)
    directory.grow(LARGE)
    page = directory.request("GET", path).get_json(force=True)["Resources"]
    assert len(page) == 100
    users = [u for u in page if u["userName"].startswith("user")]
    assert users and all(len(u["emails"]) == 2 and len(u["groups"]) == 2 for u in users)
    large = directory.statements("GET", path)
    assert len(small) == len(large), (small, large)
    assert len(large) <= MAX_PAGE, large


def test_group_get_without_members_never_reads_the_member_list(
        directory: Directory) -> None:
    _, group_id = directory.groups["Everyone"]
    path = f"/Groups/{group_id}?excludedAttributes=members"
    small, large = _before_and_after_growth(directory, "GET", path)
    assert len(small) == len(large), (small, large)
    assert len(large) <= MAX_GROUP_GET, large
    assert not any("group_member" in s for s in large), large


def _patch(operation: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [operation]}


@pytest.mark.parametrize("op", ["add", "remove"])
def test_member_patch_runs_the_same_statements_for_a_group_of_10_and_of_200(
        directory: Directory, op: str) -> None:
    _, group_id = directory.groups["Everyone"]
    add = _patch({"op": "add", "path": "members", "value": [{"value": directory.spare}]})
    remove = _patch({"op": "remove", "path": f'members[value eq "{directory.spare}"]'})
    # The measured request really changes the group: the warm-up leaves it the other way.
    body, warm_up = (add, (add, remove)) if op == "add" else (remove, (add, remove, add))
    path = f"/Groups/{group_id}?excludedAttributes=members"
    small, large = _before_and_after_growth(directory, "PATCH", path, body, warm_up)
    assert len(small) == len(large), (small, large)
    assert len(large) <= MAX_PATCH, large
    assert any(s.lstrip().upper().startswith(("INSERT", "DELETE")) and "group_member" in s
               for s in large), large
    members = directory.request("GET", f"/Groups/{group_id}").get_json(force=True)["members"]
    assert (directory.spare in {m["value"] for m in members}) == (op == "add")
    assert len(members) == LARGE + (op == "add")
