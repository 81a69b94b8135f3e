"""SQL statements per SCIM request stay the same as the directory grows: no N+1 queries.

Each test measures a request with a small directory and again after it grew (more
users, bigger groups) and asserts the very same number of statements, under a small
bound. Statements are counted with SQLAlchemy's `before_cursor_execute` on the app's
engine, through the real SCIM endpoints; a warm-up request first takes the token's
once-a-minute "last used" write out of the count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy import event

from portal.extensions import db
from portal.models import Account, Group, GroupMember, MemberEmail, Membership
from portal.services import organisations, scim_tokens
from portal.services.audit import CLI_ACTOR

SMALL, LARGE = 10, 200
# Upper bounds: what each request needs today plus one, the room for the provisioning
# activity log's one insert per request. Today (SQLite and PostgreSQL alike):
# filter 4 (token with its organisation, page, emails, groups); page 5 (+ count);
# group without members 2 (token, group); member PATCH 7-8 (token, group, member
# lookup, membership check, insert/delete, version bump, audit event).
MAX_FILTER = 5
MAX_PAGE = 7  # + managers, when a page has any
MAX_GROUP_GET = 3
MAX_PATCH = 9
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Directory:
    """One organisation's SCIM directory that a test grows, and how to call its SCIM API."""

    app: Flask
    org_id: int
    key: str
    token: str
    size: int = 0
    groups: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (pk, SCIM id)
    spare: str = ""  # SCIM id of a user in no group

    def grow(self, size: int) -> None:
        """Add users (two emails each, members of every group) until there are `size`."""
        with self.app.app_context():
            for i in range(self.size, size):
                name = f"user{i:04d}@example.com"
                member = Membership(
                    organisation_id=self.org_id, account=Account(email=name), user_name=name,
                    user_name_lower=name, source="scim", scim_managed=True, active=True,
                    display_name=f"User {i}", given_name="User", family_name=str(i),
                    emails=[MemberEmail(value=name, value_lower=name, type="work", primary=True),
                            MemberEmail(value=f"home{i}@example.org",
                                        value_lower=f"home{i}@example.org", type="home")])
                db.session.add(member)
                db.session.flush()
                for pk, _ in self.groups.values():
                    db.session.add(GroupMember(group_id=pk, membership_id=member.id))
            db.session.commit()
        self.size = size

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call the SCIM API as an IdP does."""
        return self.app.test_client().open(
            f"/scim/v2/{self.key}{path}", method=method,
            data=None if body is None else json.dumps(body),
            headers={"Authorization": f"Bearer {self.token}", "User-Agent": "statement-count",
                     "Content-Type": "application/scim+json"})

    def statements(self, method: str, path: str, body: Any = None,
                   warm_up: tuple[Any, ...] | None = None) -> list[str]:
        """Return the SQL statements one request runs, after warm-up requests (bodies)."""
        for warm_body in (body,) if warm_up is None else warm_up:
            warm = self.request(method, path, warm_body)
            assert warm.status_code == 200, warm.get_data(as_text=True)
        with self.app.app_context(), count_statements() as seen:
            response = self.request(method, path, body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return seen


@contextmanager
def count_statements() -> Iterator[list[str]]:
    """Collect every statement the app's engine sends to the database."""
    seen: list[str] = []
    engine = db.engine

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.fixture
def directory(app: Flask) -> Directory:
    """An organisation with a SCIM token, two SCIM groups, a spare user and 10 users."""
    with app.app_context():
        org = organisations.create_organisation("Acme Corp", CLI_ACTOR)
        token = scim_tokens.issue_token(org, CLI_ACTOR).plaintext
        found = Directory(app, org.id, org.key, token)
        for name in ("Engineering", "Everyone"):
            group = Group(organisation_id=org.id, display_name=name,
                          display_name_lower=name.lower(), source="scim")
            db.session.add(group)
            db.session.flush()
            found.groups[name] = (group.id, group.public_id)
        spare = Membership(organisation_id=org.id, account=Account(email="spare@example.com"),
                           user_name="spare@example.com", user_name_lower="spare@example.com",
                           source="scim", scim_managed=True, active=True)
        db.session.add(spare)
        db.session.commit()
        found.spare = spare.public_id
    found.grow(SMALL)
    return found


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


def test_group_get_without_members_never_reads_the_member_list(directory: Directory) -> None:
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
