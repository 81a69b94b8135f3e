"""Reading the audit log: filters, pages, and a CSV export that spreadsheets cannot subvert."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select

from portal.extensions import db
from portal.models import AuditEvent, Organisation
from portal.services import audit
from portal.services.audit_details import action_label, readable
from portal.services.errors import ServiceError
from portal.services.paging import newest_first

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
# `details` keeps the raw values (ids, ISO times) for machines; "event" and
# "details_in_words" say the action and the details as the audit log page does (names for
# member ids), for a person reading the evidence. New columns come last, so that scripts
# reading the columns by position keep working.
CSV_COLUMNS = ("time", "actor", "action", "target_type", "target_id", "target", "ip_address",
               "details", "event", "details_in_words")
# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _parse_day(value: str | None, label: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append(f"{label}: enter a date as YYYY-MM-DD.")
        return None


@dataclass(frozen=True)
class AuditFilter:
    """What the reader asks for: an action, an actor, free text and a date range (UTC days)."""

    action: str | None = None
    actor: str = ""
    text: str = ""
    date_from: date | None = None
    date_to: date | None = None
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: Any) -> AuditFilter:
        """Build a filter from query parameters; unusable dates are reported, not applied."""
        errors: list[str] = []
        start = _parse_day(args.get("from"), "From", errors)
        end = _parse_day(args.get("to"), "To", errors)
        if start and end and end < start:
            errors.append("The end date is before the start date.")
            start = end = None
        return cls(action=(args.get("action") or "").strip()[:100] or None,
                   actor=(args.get("actor") or "").strip()[:200],
                   text=(args.get("q") or "").strip()[:200],
                   date_from=start, date_to=end, errors=tuple(errors))

    def as_args(self) -> dict[str, str]:
        """Return the filter as query parameters (for links that keep it)."""
        pairs = {"action": self.action or "", "actor": self.actor, "q": self.text,
                 "from": self.date_from.isoformat() if self.date_from else "",
                 "to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in pairs.items() if v}


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first, and the cursor of the next page."""

    events: list[AuditEvent]
    next_before: int | None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(org: Organisation, wanted: AuditFilter) -> Select[Any]:
    query = select(AuditEvent).where(AuditEvent.organisation_id == org.id)
    if wanted.action:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.actor:
        query = query.where(func.lower(AuditEvent.actor_label).like(_like(wanted.actor),
                                                                     escape="\\"))
    if wanted.text:
        # Explicit columns only; the free text never reaches other data.
        columns = (AuditEvent.action, AuditEvent.actor_label, AuditEvent.target_label,
                   AuditEvent.target_id, AuditEvent.ip_address)
        query = query.where(or_(*(func.lower(c).like(_like(wanted.text), escape="\\")
                                  for c in columns)))
    if wanted.date_from:
        query = query.where(AuditEvent.created_at >= datetime.combine(wanted.date_from, time(),
                                                                      UTC))
    if wanted.date_to:
        end = datetime.combine(wanted.date_to + timedelta(days=1), time(), UTC)
        query = query.where(AuditEvent.created_at < end)
    return query


def actions(org: Organisation) -> list[str]:
    """Return the actions that occur in the organisation's log (for the filter)."""
    return list(db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.organisation_id == org.id)
        .distinct().order_by(AuditEvent.action)
    ))


def list_events(org: Organisation, wanted: AuditFilter, *, before: int | None = None,
                limit: int = PAGE_SIZE) -> AuditPage:
    """Return a page of the organisation's audit events, newest first, older than `before`.

    A filter that could not be read (`errors`) lists nothing: showing every event under
    a date range the reader believes applied would mislead.
    """
    if wanted.errors:
        return AuditPage([], None)
    rows, next_before = newest_first(_filtered(org, wanted), AuditEvent, AuditEvent.created_at,
                                     organisation_id=org.id, before=before, limit=limit)
    return AuditPage(rows, next_before)


def csv_cell(value: Any) -> str:
    """Return a value as a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def export_csv(org: Organisation, wanted: AuditFilter, actor: audit.Actor) -> str:
    """Return the filtered log as CSV (newest first) and audit that it was exported.

    Refuses a filter that could not be read (ServiceError): the file would hold every event.
    """
    if wanted.errors:
        raise ServiceError(" ".join(wanted.errors))
    events = list(db.session.scalars(
        _filtered(org, wanted)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(EXPORT_LIMIT)
    ))
    in_words = readable(org.id, events)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        count += 1
        writer.writerow([csv_cell(v) for v in (
            event.created_at.isoformat(), event.actor_label, event.action, event.target_type,
            event.target_id, event.target_label, event.ip_address,
            json.dumps(event.details, ensure_ascii=False, sort_keys=True) if event.details else "",
            action_label(event.action),
            "; ".join(f"{d.label}: {d.text}" for d in in_words[event.id]),
        )])
    audit.record(actor, "audit_log.exported", org, target_type="audit_log",
                 details={"rows": count, "filters": wanted.as_args()})
    return out.getvalue()
