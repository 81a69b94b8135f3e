"""The notification bell: messages for a person, de-duplicated by key."""

from __future__ import annotations

from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import Account, Notification, Organisation, utcnow


def notify(
    account: Account,
    message: str,
    *,
    organisation: Organisation | None = None,
    link: str | None = None,
    dedupe_key: str | None = None,
) -> Notification | None:
    """Add a notification unless one with the same dedupe key already exists."""
    if dedupe_key is not None:
        exists = db.session.scalar(
            select(Notification.id).where(
                Notification.account_id == account.id, Notification.dedupe_key == dedupe_key
            )
        )
        if exists is not None:
            return None
    note = Notification(account_id=account.id, organisation_id=organisation.id if organisation else None,
                        message=message, link=link, dedupe_key=dedupe_key)
    db.session.add(note)
    return note


def unread_count(account: Account) -> int:
    """Return how many notifications the account has not read."""
    return db.session.scalar(
        select(func.count()).select_from(Notification).where(
            Notification.account_id == account.id, Notification.read_at.is_(None)
        )
    ) or 0


def recent(account: Account, limit: int = 20) -> list[Notification]:
    """Return the account's newest notifications."""
    return list(db.session.scalars(
        select(Notification).where(Notification.account_id == account.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    ))


def mark_all_read(account: Account) -> None:
    """Mark every notification of the account as read."""
    db.session.execute(
        update(Notification)
        .where(Notification.account_id == account.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
