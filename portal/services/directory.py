"""Read-only queries behind the People and Groups screens, scoped to one organisation.

Lists are keyset-paginated on an indexed, per-organisation key: people by what the list
shows (membership.sort_name, the label case-folded, ties broken by id), groups by
group.display_name_lower (unique per organisation); everything a page
shows about its rows (groups, roles, counts) is loaded with one query per kind,
so a page costs the same number of statements at 10 members or 100,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, literal, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, contains_eager

from portal.extensions import db
from portal.models import (
    SOURCE_MANUAL,
    SOURCE_SCIM,
    Account,
    AuditEvent,
    Group,
    GroupMember,
    GroupRoleMapping,
    MemberEmail,
    Membership,
    Role,
)
from portal.services.roles import HeldRole, held_roles_for

T = TypeVar("T")

STATUS_ACTIVE, STATUS_DEACTIVATED, STATUS_REMOVED = "active", "deactivated", "removed"
STATUS_LABELS = {STATUS_ACTIVE: "Active", STATUS_DEACTIVATED: "Deactivated",
                 STATUS_REMOVED: "Removed by IdP"}
SOURCE_LABELS = {SOURCE_SCIM: "SCIM", SOURCE_MANUAL: "Manual"}


def member_status(member: Membership) -> str:
    """Return active, deactivated or removed (the IdP DELETEd the SCIM user)."""
    if member.scim_deleted_at is not None:
        return STATUS_REMOVED
    return STATUS_ACTIVE if member.active else STATUS_DEACTIVATED


_STATUS_CONDITIONS: dict[str, ColumnElement[bool]] = {
    STATUS_ACTIVE: Membership.active.is_(True) & Membership.scim_deleted_at.is_(None),
    STATUS_DEACTIVATED: Membership.active.is_(False) & Membership.scim_deleted_at.is_(None),
    STATUS_REMOVED: Membership.scim_deleted_at.is_not(None),
}

# What the People search looks in: an explicit list, never a column chosen by name. The
# membership row and its account (which the list query joins anyway), and every one of the
# person's emails (an EXISTS on member_email's membership index, inside the same statement):
# a search stays one pass over the organisation's members, whatever the page size.
_MEMBER_TEXT = func.lower(
    Membership.user_name + " " + func.coalesce(Membership.display_name, "") + " "
    + func.coalesce(Membership.name_formatted, "") + " "
    + func.coalesce(Membership.given_name, "") + " " + func.coalesce(Membership.family_name, "")
)
_PEOPLE_SEARCH_COLUMNS: tuple[Any, ...] = (_MEMBER_TEXT, Account.email,
                                           func.lower(Account.display_name))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; cursors are public ids of the edge rows."""

    rows: list[T]
    total: int
    next_cursor: str | None = None
    prev_cursor: str | None = None


@dataclass(frozen=True)
class PeopleFilter:
    """What the People list is narrowed to; values are already validated by the caller."""

    q: str = ""
    status: str = ""
    source: str = ""
    group_id: int | None = None


@dataclass(frozen=True)
class PersonRow:
    """A member with what the list shows about them."""

    member: Membership
    groups: list[tuple[str, str]] = field(default_factory=list)  # (public_id, name)
    roles: list[HeldRole] = field(default_factory=list)  # with the end of a time-boxed one

    @property
    def status(self) -> str:
        return member_status(self.member)


def _keyset(stmt: Select[Any], key: InstrumentedAttribute[str], cursor_key: str | None,
            backwards: bool, size: int) -> tuple[list[Any], bool]:
    """Fetch one page after (or before) the cursor key; return rows and whether more exist."""
    if cursor_key is not None:
        stmt = stmt.where(key < cursor_key if backwards else key > cursor_key)
    stmt = stmt.order_by(key.desc() if backwards else key.asc()).limit(size + 1)
    rows = list(db.session.scalars(stmt))
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    return rows, more


def _keyset_people(stmt: Select[Any], cursor: tuple[str, int] | None, backwards: bool,
                   size: int) -> tuple[list[Membership], bool]:
    """Fetch one page of members by (sort_name, id) after (or before) the cursor row."""
    key = tuple_(Membership.sort_name, Membership.id)
    if cursor is not None:
        stmt = stmt.where(key < tuple_(*cursor) if backwards else key > tuple_(*cursor))
    order = ((Membership.sort_name.desc(), Membership.id.desc()) if backwards
             else (Membership.sort_name.asc(), Membership.id.asc()))
    rows = list(db.session.scalars(stmt.order_by(*order).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    return rows, more


def _page(rows: list[Any], more: bool, *, cursor_given: bool, backwards: bool,
          total: int, wrap: list[T]) -> Page[T]:
    if not rows:
        return Page(wrap, total)
    first, last = rows[0].public_id, rows[-1].public_id
    if backwards:
        return Page(wrap, total, next_cursor=last, prev_cursor=first if more else None)
    return Page(wrap, total, next_cursor=last if more else None,
                prev_cursor=first if cursor_given else None)


def _people_conditions(org_id: int, flt: PeopleFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Membership.organisation_id == org_id]
    if flt.status:
        conditions.append(_STATUS_CONDITIONS[flt.status])
    if flt.source:
        conditions.append(Membership.source == flt.source)
    if flt.group_id is not None:
        conditions.append(exists(select(literal(1)).where(
            GroupMember.group_id == flt.group_id, GroupMember.membership_id == Membership.id)))
    term = flt.q.strip().lower()
    if term:
        any_email = exists(select(literal(1)).where(
            MemberEmail.membership_id == Membership.id,
            MemberEmail.value_lower.contains(term, autoescape=True)))
        conditions.append(or_(*(col.contains(term, autoescape=True)
                                for col in _PEOPLE_SEARCH_COLUMNS), any_email))
    return conditions


def list_people(org_id: int, flt: PeopleFilter, *, after: str | None = None,
                before: str | None = None, size: int = 50) -> Page[PersonRow]:
    """Return one page of the organisation's members with their groups and effective roles.

    Sorted by what the list shows (the label, case-insensitively; ties by id), so the
    order reads alphabetically and stays the same from page to page.

    A role held only through a time-boxed grant carries the grant's end, for the list
    to say when it expires.
    """
    conditions = _people_conditions(org_id, flt)
    counted = select(func.count(Membership.id)).where(*conditions)
    if flt.q.strip():  # the search looks at the account too
        counted = counted.join(Account, Account.id == Membership.account_id)
    total = db.session.scalar(counted) or 0
    cursor = before or after
    found = db.session.execute(select(Membership.sort_name, Membership.id).where(
        Membership.organisation_id == org_id, Membership.public_id == cursor)).first() \
        if cursor else None
    cursor_key = (found[0], found[1]) if found is not None else None
    stmt = (select(Membership).join(Account, Account.id == Membership.account_id)
            .options(contains_eager(Membership.account)).where(*conditions))
    backwards = before is not None and cursor_key is not None
    members, more = _keyset_people(stmt, cursor_key, backwards, size)
    ids = [m.id for m in members]
    groups = groups_by_member(org_id, ids)
    roles = held_roles_for(ids)
    rows = [PersonRow(m, groups.get(m.id, []), roles.get(m.id, [])) for m in members]
    return _page(members, more, cursor_given=cursor_key is not None, backwards=backwards,
                 total=total, wrap=rows)


def groups_by_member(org_id: int, membership_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """Return (public_id, name) of each member's groups, in one query."""
    result: dict[int, list[tuple[str, str]]] = {}
    if not membership_ids:
        return result
    rows = db.session.execute(
        select(GroupMember.membership_id, Group.public_id, Group.display_name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.membership_id.in_(membership_ids), Group.organisation_id == org_id)
        .order_by(Group.display_name_lower))
    for mid, public_id, name in rows:
        result.setdefault(mid, []).append((public_id, name))
    return result


def get_member(org_id: int, public_id: str) -> Membership | None:
    """Return the organisation's member with this public id, if any."""
    return db.session.scalar(select(Membership).where(Membership.organisation_id == org_id,
                                                      Membership.public_id == public_id))


def history(org_id: int, target_id: str, limit: int = 50) -> list[AuditEvent]:
    """Return the newest audit events about one member or group of the organisation."""
    return list(db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.organisation_id == org_id, AuditEvent.target_id == target_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)))


# --- Groups -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    """A group with its member count and mapped roles."""

    group: Group
    member_count: int = 0
    roles: list[Role] = field(default_factory=list)


def group_choices(org_id: int) -> list[tuple[str, str]]:
    """Return (public_id, name) of every group of the organisation, by name."""
    return [(pid, name) for pid, name in db.session.execute(
        select(Group.public_id, Group.display_name).where(Group.organisation_id == org_id)
        .order_by(Group.display_name_lower))]


def list_groups(org_id: int, q: str = "", *, after: str | None = None,
                before: str | None = None, size: int = 50) -> Page[GroupRow]:
    """Return one page of the organisation's groups with member counts and mapped roles."""
    conditions: list[ColumnElement[bool]] = [Group.organisation_id == org_id]
    if q.strip():
        conditions.append(Group.display_name_lower.contains(q.strip().lower(), autoescape=True))
    total = db.session.scalar(select(func.count(Group.id)).where(*conditions)) or 0
    cursor = before or after
    cursor_key = db.session.scalar(select(Group.display_name_lower).where(
        Group.organisation_id == org_id, Group.public_id == cursor)) if cursor else None
    backwards = before is not None and cursor_key is not None
    groups, more = _keyset(select(Group).where(*conditions), Group.display_name_lower,
                           cursor_key, backwards, size)
    ids = [g.id for g in groups]
    counts: dict[int, int] = dict(db.session.execute(
        select(GroupMember.group_id, func.count()).where(GroupMember.group_id.in_(ids))
        .group_by(GroupMember.group_id)).all()) if ids else {}
    mapped: dict[int, list[Role]] = {}
    if ids:
        for gid, role in db.session.execute(
                select(GroupRoleMapping.group_id, Role)
                .join(Role, Role.id == GroupRoleMapping.role_id)
                .where(GroupRoleMapping.group_id.in_(ids)).order_by(Role.name)):
            mapped.setdefault(gid, []).append(role)
    rows = [GroupRow(g, counts.get(g.id, 0), mapped.get(g.id, [])) for g in groups]
    return _page(groups, more, cursor_given=cursor_key is not None, backwards=backwards,
                 total=total, wrap=rows)
