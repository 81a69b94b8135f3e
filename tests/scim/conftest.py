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
