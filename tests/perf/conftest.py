"""Fixtures for the performance tests: a SCIM directory that grows, and a statement counter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Account, Group, GroupMember, MemberEmail, Membership
from portal.services import organisations, scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import count_statements  # noqa: F401  (tests import it from here)

SMALL = 10


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
