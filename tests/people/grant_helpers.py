"""Helpers for the time-boxed access tests: post grants, read grants, events and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Membership, Notification, Role, RoleGrant
from portal.services import role_grants, roles
from tests.conftest import csrf_from

REASON = "Q4 ISO 27001 audit"


def role_id(app: Flask, name: str) -> int:
    """Return the id of a role by name."""
    with app.app_context():
        return roles.get_role(name).id


def local(moment: datetime) -> str:
    """Format an instant as a datetime-local input sends it (no zone)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def post_grant(client: FlaskClient, app: Flask, member: str, role: str, *,
               until: datetime | str | None = None, preset: str = "", reason: str = REASON,
               tz_offset: str | None = None, headers: dict[str, str] | None = None,
               csrf: bool = True) -> Any:
    """Submit "Grant a role until…" on a member's page as the signed-in person."""
    data = {"role_id": str(role_id(app, role)), "preset": preset, "reason": reason,
            "until": local(until) if isinstance(until, datetime) else (until or "")}
    if tz_offset is not None:
        data["tz_offset"] = tz_offset
    if csrf:
        data["csrf_token"] = csrf_from(client.get("/").data)
    return client.post(f"/people/{member}/grants", data=data, headers=headers or {})


def post_end(client: FlaskClient, member: str, grant_id: int, *, csrf: bool = True,
             headers: dict[str, str] | None = None) -> Any:
    """Press "End now" on a grant."""
    data = {"csrf_token": csrf_from(client.get("/").data)} if csrf else {}
    return client.post(f"/people/{member}/grants/{grant_id}/end", data=data,
                       headers=headers or {})


def public_id(app: Flask, email: str) -> str:
    """Return the public id of the membership whose account has this email."""
    with app.app_context():
        from portal.models import Account

        return db.session.scalar(select(Membership.public_id).join(Account).where(
            Account.email == email))


def grants(app: Flask) -> list[dict[str, Any]]:
    """Return every grant row as plain data."""
    with app.app_context():
        return [{"id": g.id, "member": g.membership.account.email, "role": g.role.name,
                 "until": g.until, "reason": g.reason, "granted_by": g.granted_by_label,
                 "ended_at": g.ended_at, "ended_by": g.ended_by_label,
                 "end_reason": g.end_reason, "organisation_id": g.organisation_id}
                for g in db.session.scalars(select(RoleGrant).order_by(RoleGrant.id))]


def events(app: Flask) -> list[dict[str, Any]]:
    """Return the audit events about time-boxed grants, oldest first."""
    with app.app_context():
        return [{"action": e.action, "actor": e.actor_label, "target": e.target_label,
                 "target_id": e.target_id, **e.details}
                for e in db.session.scalars(select(AuditEvent).where(
                    AuditEvent.action.in_(role_grants.ACTIONS)).order_by(AuditEvent.id))]


def notifications_by_email(app: Flask) -> dict[str, list[str]]:
    """Return each account's notification dedupe keys."""
    from portal.models import Account

    with app.app_context():
        result: dict[str, list[str]] = {}
        for email, key in db.session.execute(
                select(Account.email, Notification.dedupe_key)
                .join(Account, Account.id == Notification.account_id).order_by(Notification.id)):
            result.setdefault(email, []).append(key)
        return result


def add_role(app: Flask, name: str, permissions: list[str]) -> None:
    """Create a custom role (roles are platform-wide)."""
    with app.app_context():
        db.session.add(Role(name=name, description="test role", permissions=permissions))
        db.session.commit()
