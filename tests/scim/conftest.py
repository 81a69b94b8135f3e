"""Fixtures for the SCIM tests: a small directory of people and groups in two organisations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    Account,
    Group,
    GroupMember,
    MemberEmail,
    Membership,
    Organisation,
)
from scim_api.filters import group_filter_clause, parse_filter, user_filter_clause


def at(text: str) -> datetime:
    """Return an aware UTC datetime from an ISO 8601 string."""
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class Directory:
    """Ids of the seeded people and groups, by short name."""

    app: Flask
    org_id: int
    other_org_id: int
    people: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # short name -> SCIM id (public_id)

    def users(self, text: str, *, template: bool = True) -> set[str]:
        """Return the short names of the organisation's users a filter selects.

        With `template`, "{alice}" in the text stands for alice's SCIM id.
        """
        names = {v: k for k, v in self.people.items()}
        text = text.format(**self.ids) if template else text
        with self.app.app_context():
            rows = db.session.scalars(select(Membership.id).where(
                Membership.organisation_id == self.org_id,
                Membership.scim_deleted_at.is_(None),
                user_filter_clause(parse_filter(text)))).all()
        assert len(rows) == len(set(rows)), "a filter returned a user twice"
        return {names[r] for r in rows}

    def group_names(self, text: str) -> set[str]:
        """Return the short names of the organisation's groups a filter selects."""
        names = {v: k for k, v in self.groups.items()}
        with self.app.app_context():
            rows = db.session.scalars(select(Group.id).where(
                Group.organisation_id == self.org_id,
                group_filter_clause(parse_filter(text.format(**self.ids))))).all()
        assert len(rows) == len(set(rows)), "a filter returned a group twice"
        return {names[r] for r in rows}


def _person(org: Organisation, user_name: str, emails: list[dict[str, Any]],
            **fields: Any) -> Membership:
    account = Account(email=f"{org.name.lower()}-{user_name.lower()}", display_name="")
    db.session.add(account)
    membership = Membership(
        organisation=org, account=account, user_name=user_name,
        user_name_lower=user_name.lower(), source="scim", scim_managed=True,
        emails=[MemberEmail(value_lower=e["value"].lower(), **e) for e in emails], **fields)
    db.session.add(membership)
    return membership


def _group(org: Organisation, name: str, members: list[Membership], **fields: Any) -> Group:
    group = Group(organisation=org, display_name=name, display_name_lower=name.lower(),
                  source="scim", **fields)
    db.session.add(group)
    db.session.flush()
    for member in members:
        db.session.add(GroupMember(group_id=group.id, membership_id=member.id))
    return group


@pytest.fixture
def directory(app: Flask) -> Directory:
    """Seed Acme with alice, bob, carol, dave (+ deleted zed) and groups; Other with a twin."""
    with app.app_context():
        acme, other = Organisation(name="Acme"), Organisation(name="Other")
        db.session.add_all([acme, other])
        carol = _person(
            acme, "Carol@example.com", [{"value": "carol@home.test", "type": "home"}],
            title="", active=True, created_at=at("2023-03-01T09:00:00Z"),
            updated_at=at("2023-12-01T00:00:00Z"))
        alice = _person(
            acme, "Alice@Example.com",
            [{"value": "Alice@Example.com", "type": "work", "primary": True},
             {"value": "alice@home.test", "type": "home", "display": "Home"}],
            external_id="EXT-1", display_name="Alice Adams", given_name="Alice",
            family_name="Adams", title="Engineer", nick_name="Ali", active=True,
            department="Engineering", employee_number="1001", cost_center="CC-7",
            created_at=at("2023-06-01T08:00:00Z"), updated_at=at("2024-01-10T12:00:00Z"),
            manager=carol)
        bob = _person(
            acme, "bob_smith@example.com",
            [{"value": "bob@corp.test", "type": "work", "primary": True},
             {"value": "bob_smith@example.com", "type": None}],
            external_id="ext-1", display_name="Bob 100% Smith", given_name="Bob",
            family_name="Smith", active=False, department="Sales", employee_number="1002",
            created_at=at("2023-07-01T08:00:00Z"), updated_at=at("2024-03-01T00:00:00Z"),
            manager=carol)
        dave = _person(
            acme, "dave.o'brien@example.com", [], display_name="Dave O'Brien", active=True,
            created_at=at("2023-08-01T08:00:00Z"), updated_at=at("2024-02-01T00:00:00Z"),
            manager=alice)
        zed = _person(acme, "zed@example.com", [{"value": "zed@example.com", "type": "work"}],
                      display_name="Zed", scim_deleted_at=at("2024-01-01T00:00:00Z"))
        twin = _person(other, "alice@example.com",
                       [{"value": "alice@example.com", "type": "work", "primary": True}],
                       title="Engineer", department="Engineering")
        db.session.flush()
        groups = {
            "engineering": _group(acme, "Engineering", [alice], external_id="GRP-eng",
                                  created_at=at("2023-01-01T00:00:00Z"),
                                  updated_at=at("2024-01-05T00:00:00Z")),
            "everyone": _group(acme, "Everyone", [alice, bob],
                               updated_at=at("2024-02-05T00:00:00Z")),
            "empty": _group(acme, "Empty", [], updated_at=at("2023-05-05T00:00:00Z")),
            "former": _group(acme, "Former staff", [zed],
                             updated_at=at("2023-05-05T00:00:00Z")),
            "sales": _group(acme, "Sales & Marketing_100%", [],
                            updated_at=at("2023-05-05T00:00:00Z")),
            "other_engineering": _group(other, "Engineering", [twin]),
        }
        db.session.commit()
        found = Directory(app, acme.id, other.id)
        for name, person in {"alice": alice, "bob": bob, "carol": carol, "dave": dave,
                             "zed": zed, "twin": twin}.items():
            found.people[name] = person.id
            found.ids[name] = person.public_id
        for name, group in groups.items():
            found.groups[name] = group.id
            found.ids[name] = group.public_id
        return found


# ---- the SCIM API over the test client ---------------------------------------------------

SCIM_JSON = "application/scim+json"


@dataclass
class Scim:
    """Calls one organisation's SCIM API with its bearer token, as an IdP would."""

    app: Flask
    client: Any
    org_id: int
    key: str
    token: str
    user_agent: str = "pytest-idp/1.0"

    @property
    def base(self) -> str:
        return f"/scim/v2/{self.key}"

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | str | None = None,
                content_type: str = SCIM_JSON) -> Any:
        """Send a request; `body` goes out as JSON, `raw` as given."""
        import json as _json

        sent = {"Authorization": f"Bearer {self.token if token is None else token}",
                "User-Agent": self.user_agent, **(headers or {})}
        data = raw if raw is not None else (None if body is None else _json.dumps(body))
        if data is not None:
            sent["Content-Type"] = content_type
        url = path if path.startswith("/scim/") else self.base + path
        return self.client.open(url, method=method, data=data, headers=sent)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, *operations: dict[str, Any], **kw: Any) -> Any:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": list(operations)}
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def create_user(self, user_name: str, **attrs: Any) -> dict[str, Any]:
        """POST a User and return the created resource."""
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name, **attrs}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.get_data(as_text=True)
        created: dict[str, Any] = response.get_json(force=True)
        return created

    def create_group(self, name: str, members: list[str] | None = None,
                     **attrs: Any) -> dict[str, Any]:
        """POST a Group and return the created resource."""
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
                "members": [{"value": m} for m in members or []], **attrs}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.get_data(as_text=True)
        created: dict[str, Any] = response.get_json(force=True)
        return created

    def member(self, user_id: str) -> Membership:
        """Return the stored membership behind a SCIM User id (detached)."""
        with self.app.app_context():
            found = db.session.scalar(select(Membership).where(Membership.public_id == user_id))
            assert found is not None
            _ = (found.emails, found.account)
            db.session.expunge_all()
            return found

    def group_member_ids(self, group_id: str) -> set[str]:
        """Return the SCIM ids of a group's members, straight from the database."""
        with self.app.app_context():
            return set(db.session.scalars(
                select(Membership.public_id)
                .join(GroupMember, GroupMember.membership_id == Membership.id)
                .join(Group, Group.id == GroupMember.group_id)
                .where(Group.public_id == group_id)))


def make_scim(app: Flask, name: str = "Acme Corp", *, released: bool = True,
              client: Any = None) -> Scim:
    """Create an organisation with a SCIM token and return a Scim caller for it."""
    from portal.services import organisations, scim_tokens
    from portal.services.audit import CLI_ACTOR

    with app.app_context():
        org = organisations.create_organisation(name, CLI_ACTOR, released=released)
        issued = scim_tokens.issue_token(org, CLI_ACTOR)
        db.session.commit()
        scim = Scim(app, client or app.test_client(), org.id, org.key, issued.plaintext)
    return scim


@pytest.fixture
def scim(app: Flask) -> Scim:
    """The SCIM API of a released organisation, called with its valid token."""
    return make_scim(app)


@pytest.fixture
def other_scim(app: Flask) -> Scim:
    """The SCIM API of a second organisation (for isolation tests)."""
    return make_scim(app, "Globex")
