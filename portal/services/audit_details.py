"""Audit events in words, for the screens: what happened, names for ids, times as shown.

The stored action codes and details (and the CSV export) keep the raw, machine-readable
values; this only decides how the audit log and the person/group history display them,
so every screen says the same (and still shows the code, which auditors search by).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import AuditEvent, Membership

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # as the When/Time column of both screens
LISTED = 5  # names shown of a long member list; the rest is counted
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
LABELS = {
    "access_ended_at": "Access ended", "received_at": "Received", "was_active": "Was active",
    "groups_left": "Groups left", "grant_id": "Grant no.", "granted_by": "Granted by",
    "displayName": "Display name", "externalId": "External ID", "external_id": "External ID",
    "manager_id": "Manager", "user_name": "userName", "sso_url": "SSO URL",
    "idp": "IdP", "ok": "Test passed",
}
# Every action code the services record (audit.record), as the screens name it.
ACTION_LABELS = {
    "account.password_set": "Password set",
    "account.password_changed": "Password changed",
    "audit_log.exported": "Audit log exported",
    "group.created": "Group created",
    "group.updated": "Group updated",
    "group.deleted": "Group deleted",
    "group.members_added": "Members added to the group",
    "group.members_removed": "Members removed from the group",
    "group.role_mapped": "Group mapped to a role",
    "group.role_unmapped": "Group unmapped from a role",
    "member.added": "Person added",
    "member.provisioned": "Person provisioned by the identity provider",
    "member.adopted": "Existing person taken over by the identity provider",
    "member.relinked": "Person re-linked by the identity provider",
    "member.updated": "Person updated by the identity provider",
    "member.profile_updated": "Profile edited",
    "member.deactivated": "Person deactivated",
    "member.reactivated": "Person reactivated",
    "member.deprovisioned": "Person deleted by the identity provider",
    "member.role_granted": "Role given",
    "member.role_revoked": "Role taken away",
    "member.role_granted_until": "Role given until a set time",
    "member.role_grant_ended": "Time-boxed role ended early",
    "member.role_grant_expired": "Time-boxed role expired",
    "member.break_glass_set": "Break-glass access given",
    "member.break_glass_cleared": "Break-glass access removed",
    "organisation.created": "Organisation created",
    "scim.rollout_released": "SCIM released to the organisation",
    "scim.rollout_withdrawn": "SCIM withdrawn from the organisation",
    "scim.token_generated": "SCIM token generated",
    "scim.token_rotated": "SCIM token rotated",
    "scim.replaced_token_used": "Replaced SCIM token still in use",
    "sso.configured": "Single sign-on set up",
    "sso.updated": "Single sign-on settings changed",
    "sso.enforced": "Single sign-on made mandatory",
    "sso.enforcement_lifted": "Single sign-on no longer mandatory",
    "sso.tested": "Single sign-on tested",
    "sso.signed_in": "Signed in with single sign-on",
    "sso.sign_in_refused": "Single sign-on sign-in refused",
}
# Keys whose id lists name members of the organisation, and keys that list attribute names.
MEMBER_LISTS = ("members",)
FIELD_LISTS = ("changed", "fields")


@dataclass(frozen=True)
class Detail:
    """One labelled line of an event's details; `moment` is set when the value is a time."""

    key: str
    label: str
    text: str
    moment: datetime | None = None


def label_for(key: str) -> str:
    """Return a key as words: "access_ended_at" → "Access ended", "displayName" → "Display name"."""
    if key in LABELS:
        return LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:]


def action_label(code: str) -> str:
    """Return an action code in words ("member.deactivated" → "Person deactivated")."""
    if code in ACTION_LABELS:
        return ACTION_LABELS[code]
    return label_for(code.replace(".", " "))  # a code recorded by an older version


def _moment(value: str) -> datetime | None:
    if not ISO_TIME.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _text(value: Any, names: dict[str, str]) -> str:
    """Return one value in words (booleans Yes/No, times formatted, known ids as names)."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        moment = _moment(value)
        if moment is not None:
            return f"{moment:{TIME_FORMAT}}"
        return names.get(value, value)
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:
            return f"{_text(value['from'], names)} → {_text(value['to'], names)}"
        return ", ".join(f"{label_for(str(k))}: {_text(v, names)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v, names) for v in value) or "—"
    return str(value)


def _detail(key: str, value: Any, details: dict[str, Any], names: dict[str, str]) -> Detail:
    if key in MEMBER_LISTS and isinstance(value, list):
        count = details.get("count")
        total = count if isinstance(count, int) else len(value)
        shown = ", ".join(_text(v, names) for v in value[:LISTED])
        more = max(0, total - min(len(value), LISTED))
        return Detail(key, label_for(key), f"{shown} … (+{more} more)" if more else shown or "—")
    if key in FIELD_LISTS and isinstance(value, list):
        return Detail(key, label_for(key), ", ".join(label_for(str(v)) for v in value) or "—")
    moment = _moment(value) if isinstance(value, str) else None
    return Detail(key, label_for(key), _text(value, names), moment)


def _member_ids(events: Iterable[AuditEvent]) -> set[str]:
    wanted: set[str] = set()
    for event in events:
        for key in MEMBER_LISTS:
            value = (event.details or {}).get(key)
            if isinstance(value, list):
                wanted.update(v for v in value[:LISTED] if isinstance(v, str) and UUID.match(v))
    return wanted


def member_names(org_id: int, public_ids: set[str]) -> dict[str, str]:
    """Return the organisation's members with these public ids, as id → name."""
    if not public_ids:
        return {}
    members = db.session.scalars(
        select(Membership).options(selectinload(Membership.account))
        .where(Membership.organisation_id == org_id, Membership.public_id.in_(public_ids)))
    return {m.public_id: m.label for m in members}


def readable(org_id: int, events: Sequence[AuditEvent]) -> dict[int, list[Detail]]:
    """Return each event's details as readable lines, by event id (one query for all names)."""
    names = member_names(org_id, _member_ids(events))
    return {event.id: [_detail(key, value, event.details, names)
                       for key, value in (event.details or {}).items()]
            for event in events}
