"""Audit event details in words, for the screens: names for ids, times as the page shows them.

The stored details (and the CSV export) keep the raw, machine-readable values; this only
decides how the audit log and the person/group history display them, so both say the same.
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
