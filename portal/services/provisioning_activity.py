"""The provisioning activity log: what each SCIM request did, read back for the admin screen.

Recording happens in `scim_api.activity`; services only describe their effect in
words with `note_effect`, which is safe to call from anywhere (outside a SCIM request
the words are simply not recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_app_context
from sqlalchemy import Select, delete, func, or_, select

from portal.extensions import db
from portal.flask_app import request_globals
from portal.models import AuditEvent, Organisation, ProvisioningActivity
from portal.services.paging import newest_first

PAGE_SIZE = 50
# The resource filter of the viewer: label -> stored resource_type values.
RESOURCE_FILTERS: dict[str, tuple[str, ...]] = {
    "User": ("User",),
    "Group": ("Group",),
    "Discovery": ("ServiceProviderConfig", "ResourceTypes", "Schemas"),
    "Other": ("Bulk", "Me", "Search", "Other"),
}


def note_effect(words: str) -> None:
    """Describe, in words, something the current SCIM request changed ("created user alice@…")."""
    if has_app_context():
        g.setdefault("scim_effects", []).append(words)


def noted_effects() -> list[str]:
    """Return the effects noted during the current request."""
    return list(request_globals().get("scim_effects", ())) if has_app_context() else []


def _members(event: AuditEvent, verb: str, preposition: str) -> str:
    count = int((event.details or {}).get("count") or 0)
    return f"{verb} {count} member{'s' if count != 1 else ''} {preposition} {event.target_label}"


def _renamed_or_updated(event: AuditEvent) -> str:
    name = (event.details or {}).get("displayName")
    if isinstance(name, dict) and "from" in name:
        return f"renamed group {name['from']} to {name.get('to')}"
    return f"updated group {event.target_label}"


def _updated_user(event: AuditEvent) -> str:
    changed = (event.details or {}).get("changed") or []
    listed = f" ({', '.join(str(c) for c in changed[:6])})" if changed else ""
    return f"updated user {event.target_label}{listed}"


# How the SCIM services' audit actions read in the activity log.
_PHRASES: dict[str, Callable[[AuditEvent], str]] = {
    "member.provisioned": lambda e: f"created user {e.target_label}",
    "member.adopted": lambda e: f"adopted existing member {e.target_label}",
    "member.relinked": lambda e: f"re-linked user {e.target_label}",
    "member.updated": _updated_user,
    "member.deactivated": lambda e: f"deactivated user {e.target_label}",
    "member.reactivated": lambda e: f"reactivated user {e.target_label}",
    "member.deprovisioned": lambda e: f"deleted user {e.target_label}; access ended",
    "group.created": lambda e: f"created group {e.target_label}",
    "group.updated": _renamed_or_updated,
    "group.deleted": lambda e: f"deleted group {e.target_label}",
    "group.members_added": lambda e: _members(e, "added", "to"),
    "group.members_removed": lambda e: _members(e, "removed", "from"),
}


def effect_from_audit(events: list[AuditEvent]) -> str | None:
    """Describe a request's effect from the audit events it wrote, when nothing was noted."""
    phrases = []
    for event in events:
        phrase = _PHRASES.get(event.action)
        if phrase is not None:
            phrases.append(phrase(event))
        else:
            words = event.action.replace(".", " ").replace("_", " ")
            phrases.append(f"{words}: {event.target_label}" if event.target_label else words)
    return "; ".join(phrases) or None


@dataclass(frozen=True)
class ActivityFilter:
    """What the viewer asks for: errors only, a resource kind, free text."""

    errors_only: bool = False
    resource: str | None = None
    text: str = ""

    @classmethod
    def from_args(cls, args: Any) -> ActivityFilter:
        """Build a filter from query parameters, ignoring values it does not know."""
        resource = args.get("resource") or None
        return cls(
            errors_only=args.get("status") == "errors",
            resource=resource if resource in RESOURCE_FILTERS else None,
            text=(args.get("q") or "").strip()[:200],
        )

    def as_args(self) -> dict[str, str]:
        """Return the filter as query parameters (for links that keep it)."""
        args = {}
        if self.errors_only:
            args["status"] = "errors"
        if self.resource:
            args["resource"] = self.resource
        if self.text:
            args["q"] = self.text
        return args


@dataclass(frozen=True)
class ActivityPage:
    """One page of records, newest first, and the cursor of the next page."""

    records: list[ProvisioningActivity]
    next_before: int | None


def _filtered(org: Organisation, wanted: ActivityFilter) -> Select[Any]:
    query = select(ProvisioningActivity).where(ProvisioningActivity.organisation_id == org.id)
    if wanted.errors_only:
        query = query.where(ProvisioningActivity.status >= 400)
    if wanted.resource:
        query = query.where(
            ProvisioningActivity.resource_type.in_(RESOURCE_FILTERS[wanted.resource])
        )
    if wanted.text:
        # Explicit columns only: the free text never reaches the stored request bodies.
        pattern = "%" + wanted.text.lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        columns = (ProvisioningActivity.path, ProvisioningActivity.detail,
                   ProvisioningActivity.effect, ProvisioningActivity.client,
                   ProvisioningActivity.resource_id)
        query = query.where(or_(*(func.lower(c).like(pattern, escape="\\") for c in columns)))
    return query


def list_activity(org: Organisation, wanted: ActivityFilter, *, before: int | None = None,
                  limit: int = PAGE_SIZE) -> ActivityPage:
    """Return a page of the organisation's activity, newest first, older than record `before`."""
    rows, next_before = newest_first(_filtered(org, wanted), ProvisioningActivity,
                                     ProvisioningActivity.time, organisation_id=org.id,
                                     before=before, limit=limit)
    return ActivityPage(rows, next_before)


def last_request(org: Organisation, *, successful: bool = False) -> ProvisioningActivity | None:
    """Return the organisation's most recent SCIM request (optionally: most recent success)."""
    query = select(ProvisioningActivity).where(ProvisioningActivity.organisation_id == org.id)
    if successful:
        query = query.where(ProvisioningActivity.status < 400,
                            ProvisioningActivity.token_valid.is_(True))
    return db.session.scalar(
        query.order_by(ProvisioningActivity.time.desc(), ProvisioningActivity.id.desc()).limit(1)
    )


def prune(cutoff: datetime) -> int:
    """Delete every activity record older than `cutoff`; return how many were removed.

    One DELETE per organisation (and one for requests that named none), each on the
    (organisation, time) index the activity screen reads: records are written on every
    SCIM request, so they carry no index on time alone.
    """
    owner = ProvisioningActivity.organisation_id
    scopes = [owner == org_id for org_id in db.session.scalars(select(Organisation.id))]
    removed = 0
    for scope in [*scopes, owner.is_(None)]:
        result = db.session.execute(
            delete(ProvisioningActivity).where(scope, ProvisioningActivity.time < cutoff))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
