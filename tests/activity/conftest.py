"""Fixtures for the activity log, health, audit and evidence tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import Organisation, ProvisioningActivity, utcnow
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import Factory, login


@dataclass
class ScimOrg:
    """An organisation with a SCIM token, and how to call its SCIM API."""

    org: Organisation
    token: str
    client: FlaskClient

    @property
    def base(self) -> str:
        return f"/scim/v2/{self.org.key}"

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}",
                "User-Agent": "Okta SCIM Client 1.0.0", **extra}

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Any:
        return self.client.open(self.base + path, method=method, headers=self.headers(token),
                                **kwargs)


@pytest.fixture
def scim_org(app: Flask, factory: Factory) -> ScimOrg:
    org = factory.org()
    with app.app_context():
        issued = scim_tokens.issue_token(db.session.get(Organisation, org.id), CLI_ACTOR)
        db.session.commit()
        plaintext = issued.plaintext
    return ScimOrg(org, plaintext, app.test_client())


@pytest.fixture
def admin_client(client: FlaskClient, factory: Factory, scim_org: ScimOrg) -> FlaskClient:
    """A signed-in IT administrator of the SCIM organisation."""
    factory.it_admin(scim_org.org)
    login(client, "it-admin@acme.example")
    return client


@pytest.fixture
def member_client(app: Flask, factory: Factory, scim_org: ScimOrg) -> FlaskClient:
    """A signed-in Member (no IT Settings permission) of the SCIM organisation."""
    factory.member(scim_org.org, "max@acme.example")
    member = app.test_client()
    login(member, "max@acme.example")
    return member


def activity_rows(app: Flask) -> list[ProvisioningActivity]:
    """Return every activity record, oldest first, detached from the session."""
    with app.app_context():
        rows = list(db.session.scalars(select(ProvisioningActivity)
                                       .order_by(ProvisioningActivity.id)))
        db.session.expunge_all()
        return rows


def dump_database(app: Flask) -> str:
    """Return every row of every table as text (to prove a secret is stored nowhere)."""
    parts = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(text(f'SELECT * FROM "{table.name}"')):
                parts.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(parts)


AddActivity = Callable[..., ProvisioningActivity]


@pytest.fixture
def add_activity(app: Flask) -> AddActivity:
    """Insert an activity record directly (for health, paging and pruning tests)."""

    def add(org: Organisation | None, *, status: int = 200, at: datetime | None = None,
            minutes_ago: float | None = None, client: str | None = "Okta SCIM Client 1.0.0",
            method: str = "GET", path: str = "/Users", resource_type: str = "User",
            **fields: Any) -> ProvisioningActivity:
        when = at or utcnow() - timedelta(minutes=minutes_ago or 0)
        with app.app_context():
            row = ProvisioningActivity(
                organisation_id=org.id if org else None, time=when, method=method,
                path=f"/scim/v2/{org.key if org else 'x'}{path}", resource_type=resource_type,
                status=status, duration_ms=3, client=client,
                token_valid=fields.pop("token_valid", status != 401),
                **fields)
            db.session.add(row)
            db.session.commit()
            db.session.refresh(row)
            db.session.expunge(row)
            return row

    return add


def backdate_token(app: Flask, org: Organisation, at: datetime | None = None,
                   **delta: float) -> datetime:
    """Set when the organisation's current token was issued (`at`, or that long ago)."""
    with app.app_context():
        token = scim_tokens.active_token(db.session.get(Organisation, org.id))
        assert token is not None
        token.created_at = at or utcnow() - timedelta(**delta)
        db.session.commit()
        return token.created_at
