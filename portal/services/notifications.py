"""The notification bell: messages for a person, de-duplicated by key.

A notification that names an organisation belongs to it: its reader sees it only while
they can use that organisation (an active, usable membership) and, when the notice names
a permission, hold that permission there. Losing access hides the organisation's notices
from the list, the unread count and every link to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import Account, Membership, Notification, Organisation, utcnow
from portal.services import roles


@dataclass(frozen=True)
class Reach:
    """The organisations a reader can use now, and where they hold each permission."""

    account_id: int
    organisations: frozenset[int] = frozenset()
    by_permission: dict[str, frozenset[int]] = field(default_factory=dict)


def reach(account: Account, memberships: Iterable[Membership]) -> Reach:
    """Return the reader's reach through their usable memberships (one query for all roles)."""
    members = list(memberships)
    held = roles.effective_roles_for([m.id for m in members])
    by_permission: dict[str, set[int]] = {}
    for member in members:
        for role in held.get(member.id, []):
            for permission in role.permissions:
                by_permission.setdefault(permission, set()).add(member.organisation_id)
    return Reach(account.id, frozenset(m.organisation_id for m in members),
                 {p: frozenset(ids) for p, ids in by_permission.items()})


def _visible(scope: Reach) -> ColumnElement[bool]:
    allowed = [Notification.organisation_id.is_(None),
               and_(Notification.permission.is_(None),
                    Notification.organisation_id.in_(sorted(scope.organisations)))]
    allowed += [and_(Notification.permission == permission,
                     Notification.organisation_id.in_(sorted(ids)))
                for permission, ids in sorted(scope.by_permission.items())]
    return and_(Notification.account_id == scope.account_id, or_(*allowed))


def notify(
    account: Account,
    message: str,
    *,
    organisation: Organisation | None = None,
    link: str | None = None,
    dedupe_key: str | None = None,
    permission: str | None = None,
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
                        permission=permission if organisation else None,
                        message=message, link=link, dedupe_key=dedupe_key)
    db.session.add(note)
    return note


def unread_count(scope: Reach) -> int:
    """Return how many of the notifications the reader may see are unread."""
    return db.session.scalar(
        select(func.count()).select_from(Notification).where(
            _visible(scope), Notification.read_at.is_(None)
        )
    ) or 0


def recent(scope: Reach, limit: int = 20) -> list[Notification]:
    """Return the newest notifications the reader may see, with their organisations."""
    return list(db.session.scalars(
        select(Notification).where(_visible(scope)).options(selectinload(Notification.organisation))
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    ))


def get_visible(scope: Reach, note_id: int) -> Notification | None:
    """Return one notification if the reader may see it now."""
    return db.session.scalar(select(Notification).where(_visible(scope),
                                                        Notification.id == note_id))


def mark_read(note: Notification) -> None:
    """Mark one notification as read (once)."""
    if note.read_at is None:
        note.read_at = utcnow()


def mark_all_read(scope: Reach) -> None:
    """Mark every notification the reader may see as read."""
    db.session.execute(
        update(Notification)
        .where(_visible(scope), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )

