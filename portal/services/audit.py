"""Writing audit events: the append-only record of who did what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g, has_app_context, has_request_context, request

from portal.extensions import db
from portal.models import Account, AuditEvent, OrgScope


@dataclass(frozen=True)
class Actor:
    """Who did it: a signed-in person, an IdP over SCIM, the command line, or support."""

    label: str
    account_id: int | None = None

    @classmethod
    def of(cls, account: Account) -> Actor:
        return cls(label=account.email, account_id=account.id)


CLI_ACTOR = Actor(label="command line")


def record(
    actor: Actor,
    action: str,
    organisation: OrgScope | None,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    target_label: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction."""
    event = AuditEvent(
        organisation_id=organisation.id if organisation else None,
        actor_account_id=actor.account_id,
        actor_label=actor.label[:320],
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=(target_label or "")[:320] or None,
        details=details or {},
        ip_address=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    if has_app_context():
        # The provisioning activity log describes a SCIM request by the events it wrote.
        g.setdefault("audit_events", []).append(event)
    return event
