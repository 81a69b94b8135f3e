"""Newest-first keyset paging, shared by the audit log and the provisioning activity log.

A page is the rows older than an anchor row (by time, ties broken by id), so a page
stays stable while new rows arrive; the anchor counts only if it is the organisation's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_

from portal.extensions import db


def newest_first(query: Select[Any], model: Any, time_column: Any, *, organisation_id: int,
                 before: int | None, limit: int) -> tuple[list[Any], int | None]:
    """Return up to `limit` rows older than row `before`, and the cursor of the next page."""
    if before is not None:
        anchor = db.session.get(model, before)
        if anchor is not None and anchor.organisation_id == organisation_id:
            moment = getattr(anchor, time_column.key)
            query = query.where(or_(time_column < moment,
                                    (time_column == moment) & (model.id < anchor.id)))
    rows = list(db.session.scalars(
        query.order_by(time_column.desc(), model.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None
