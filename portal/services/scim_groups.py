"""Groups synced by the organisation's identity provider (the SCIM Group resource).

Membership changes touch only the named rows (one INSERT of the missing ids, one DELETE
... WHERE membership_id IN), so a group of tens of thousands of members is never loaded
to add or remove one. Effective roles are computed from group membership when read
(portal.services.roles), so a change here takes effect on the member's next request.
Audit actions: group.created, group.updated, group.members_added, group.members_removed,
group.deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    SOURCE_SCIM,
    Group,
    GroupMember,
    Membership,
    OrgScope,
    utcnow,
)
from portal.services import audit
from portal.services.errors import Conflict, NotFound, ServiceError

CHUNK = 500  # ids per statement, well under SQLite's and PostgreSQL's parameter limits
AUDITED_IDS = 100  # member ids listed in one audit event (the count is always complete)
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# The list endpoints' form of scim_groups(): plain rows, built once (pass `org_id`).
SCIM_GROUP_ROWS = select(*Group.__table__.c).where(
    Group.organisation_id == bindparam("org_id"), Group.source == SOURCE_SCIM)


def scim_groups(org: OrgScope) -> Select[Group]:
    """Return the query for the organisation's groups that SCIM sees and manages."""
    return select(Group).where(Group.organisation_id == org.id, Group.source == SOURCE_SCIM)


def get_group(org: OrgScope, public_id: str, *, for_update: bool = False) -> Group:
    """Return a SCIM group by id, or raise NotFound; lock its row to change it."""
    query = scim_groups(org).where(Group.public_id == public_id)
    # No id holds NUL, and PostgreSQL refuses it in a query parameter.
    group = None if "\x00" in public_id else db.session.scalar(
        query.with_for_update() if for_update else query)
    if group is None:
        raise NotFound(f"There is no Group with id {public_id[:80]!r}.")
    return group


def _live_users(org: OrgScope, public_ids: Iterable[str], column: Any) -> dict[str, Any]:
    """Map those of these ids that are Users here to a column of theirs (chunked reads)."""
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted({i for i in public_ids if "\x00" not in i})):
        rows = db.session.execute(
            select(Membership.public_id, column).where(
                Membership.organisation_id == org.id, Membership.scim_managed.is_(True),
                Membership.scim_deleted_at.is_(None), Membership.public_id.in_(chunk)))
        found.update({public_id: value for public_id, value in rows})
    return found


def resolve_members(org: OrgScope, public_ids: Iterable[str]) -> dict[str, int]:
    """Map member ids to membership ids; any id that is not a User here is an error."""
    wanted = sorted(set(public_ids))
    found: dict[str, int] = _live_users(org, wanted, Membership.id)
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise _not_users(unknown)
    return found


def display_names(org: OrgScope, public_ids: Sequence[str]) -> dict[str, str | None]:
    """Return the display names of those of these ids that are Users here (by id)."""
    return _live_users(org, public_ids, Membership.display_name)


def _not_users(public_ids: Sequence[str], total: int | None = None) -> ServiceError:
    """The error for ids that are not Users here (naming 5 of `total`, default all)."""
    total = len(public_ids) if total is None else total
    shown = ", ".join(repr(i[:80]) for i in public_ids[:5])
    more = f" and {total - 5} more" if total > 5 else ""
    return ServiceError(f"These members are not Users of this organisation: {shown}{more}.")


def _name_taken(org: OrgScope, name: str, group: Group | None = None) -> Conflict | None:
    other = db.session.scalar(select(Group).where(
        Group.organisation_id == org.id, Group.display_name_lower == name.lower()))
    if other is None or other is group:
        return None
    if other.source != SOURCE_SCIM:
        return Conflict(f"A group called {name!r} is managed in the portal; rename one of them "
                        "before the identity provider can sync it.")
    return Conflict(f"A Group with displayName {name!r} already exists.")


def _flush_unique(name: str) -> None:
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict(f"A Group with displayName {name!r} already exists.") from None


def create_group(org: OrgScope, display_name: str, external_id: str | None,
                 member_ids: Sequence[str], actor: audit.Actor) -> Group:
    """Create a SCIM group, with its initial members."""
    conflict = _name_taken(org, display_name)
    if conflict:
        raise conflict
    members = resolve_members(org, member_ids)
    group = Group(organisation_id=org.id, display_name=display_name,
                  display_name_lower=display_name.lower(), external_id=external_id,
                  source=SOURCE_SCIM)
    db.session.add(group)
    _flush_unique(display_name)
    audit.record(actor, "group.created", org, target_type="group", target_id=group.public_id,
                 target_label=display_name)
    _insert_members(group, sorted(members.values()))
    if members:
        _audit_members(group, "group.members_added", sorted(members), actor)
    return group


def update_group(group: Group, display_name: str, external_id: str | None,
                 actor: audit.Actor) -> bool:
    """Rename a group or change its externalId; return whether anything changed."""
    changes: dict[str, Any] = {}
    if display_name != group.display_name:
        conflict = _name_taken(group.org_scope, display_name, group)
        if conflict:
            raise conflict
        changes["displayName"] = {"from": group.display_name, "to": display_name}
        group.display_name = display_name
        group.display_name_lower = display_name.lower()
    if external_id != group.external_id:
        changes["externalId"] = True
        group.external_id = external_id
    if not changes:
        return False
    _flush_unique(display_name)
    touch(group)
    audit.record(actor, "group.updated", group.org_scope,
                 target_type="group", target_id=group.public_id, target_label=display_name,
                 details=changes)
    return True


def touch(group: Group) -> None:
    """Give the group a new version (in SQL, so concurrent member changes all count)."""
    group.version = Group.version + 1
    group.updated_at = utcnow()


def _existing(group: Group, member_ids: Sequence[int]) -> set[int]:
    present: set[int] = set()
    for chunk in _chunks(member_ids):
        present.update(db.session.scalars(select(GroupMember.membership_id).where(
            GroupMember.group_id == group.id, GroupMember.membership_id.in_(chunk))))
    return present


def _insert_members(group: Group, member_ids: Sequence[int]) -> None:
    """Insert rows, ignoring any a concurrent request inserted first."""
    if not member_ids:
        return
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        _hold_as_users(member_ids)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    for chunk in _chunks(member_ids):
        db.session.execute(
            insert(GroupMember).on_conflict_do_nothing(),
            [{"group_id": group.id, "membership_id": m, "created_at": now} for m in chunk])


def _hold_as_users(member_ids: Sequence[int]) -> None:
    """Keep the people being added from being deleted until this request commits (PostgreSQL).

    They were read as live Users without a lock: a DELETE /Users of one of them committing
    meanwhile would leave a deleted person in the group (hidden from SCIM, and back in it
    with the group's roles if the IdP re-creates them). FOR SHARE waits for such a delete
    and then re-reads the row, so the person is refused as the request would refuse them
    after it; a delete that comes later waits for this commit and removes the new row.
    Only new members are held: deleting a present member locks this group first
    (scim_users.delete_user), so holding one here would close a cycle. SQLite runs one
    write request at a time (portal.security.serialise_writes).
    """
    live: set[int] = set()
    for chunk in _chunks(sorted(member_ids)):  # in id order, as every locker of these rows
        live.update(db.session.scalars(
            select(Membership.id).where(Membership.id.in_(chunk),
                                        Membership.scim_deleted_at.is_(None))
            .order_by(Membership.id).with_for_update(read=True)))
    gone = sorted(set(member_ids) - live)
    if gone:
        raise _not_users(list(db.session.scalars(
            select(Membership.public_id).where(Membership.id.in_(gone[:5]))
            .order_by(Membership.public_id))), len(gone))


def _audit_members(group: Group, action: str, public_ids: Sequence[str],
                   actor: audit.Actor) -> None:
    audit.record(actor, action, group.org_scope, target_type="group",
                 target_id=group.public_id, target_label=group.display_name,
                 details={"count": len(public_ids), "members": list(public_ids[:AUDITED_IDS])})


def add_members(group: Group, public_ids: Sequence[str], actor: audit.Actor) -> int:
    """Add members (already-present ones are a no-op); return how many were added."""
    if not public_ids:
        return 0
    resolved = resolve_members(group.org_scope, public_ids)
    present = _existing(group, sorted(resolved.values()))
    new = {p: m for p, m in resolved.items() if m not in present}
    if new:
        _insert_members(group, sorted(new.values()))
        touch(group)
        _audit_members(group, "group.members_added", sorted(new), actor)
    return len(new)


def remove_members(group: Group, public_ids: Sequence[str], actor: audit.Actor) -> int:
    """Remove members by id (absent or unknown ids are a no-op); return how many left."""
    wanted = sorted(set(public_ids))
    removed: list[str] = []
    for chunk in _chunks(wanted):
        rows = db.session.execute(
            select(Membership.public_id, Membership.id)
            .join(GroupMember, GroupMember.membership_id == Membership.id)
            .where(GroupMember.group_id == group.id, Membership.public_id.in_(chunk))).all()
        if rows:
            db.session.execute(delete(GroupMember).where(
                GroupMember.group_id == group.id,
                GroupMember.membership_id.in_([member_id for _, member_id in rows])))
            removed.extend(public_id for public_id, _ in rows)
    if removed:
        touch(group)
        _audit_members(group, "group.members_removed", sorted(removed), actor)
    return len(removed)


def set_members(group: Group, public_ids: Sequence[str], actor: audit.Actor) -> tuple[int, int]:
    """Make the member list exactly these ids (a full push); return (added, removed)."""
    resolved = resolve_members(group.org_scope, public_ids)
    current: dict[int, str] = {
        member_id: public_id for member_id, public_id in db.session.execute(
            select(GroupMember.membership_id, Membership.public_id)
            .join(Membership, Membership.id == GroupMember.membership_id)
            .where(GroupMember.group_id == group.id))}
    wanted = set(resolved.values())
    gone = sorted(set(current) - wanted)
    for chunk in _chunks(gone):
        db.session.execute(delete(GroupMember).where(
            GroupMember.group_id == group.id, GroupMember.membership_id.in_(chunk)))
    new = sorted(wanted - set(current))
    _insert_members(group, new)
    if gone or new:
        touch(group)
    if new:
        by_id = {m: p for p, m in resolved.items()}
        _audit_members(group, "group.members_added", sorted(by_id[m] for m in new), actor)
    if gone:
        _audit_members(group, "group.members_removed", sorted(current[m] for m in gone), actor)
    return len(new), len(gone)


def delete_group(group: Group, actor: audit.Actor) -> None:
    """Delete a SCIM group; its members lose the roles mapped to it at once."""
    org = group.org_scope
    audit.record(actor, "group.deleted", org, target_type="group", target_id=group.public_id,
                 target_label=group.display_name)
    db.session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    db.session.delete(group)
    db.session.flush()
