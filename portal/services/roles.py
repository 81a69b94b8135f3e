"""Roles, and what a member may do: manual roles, roles of mapped groups, time-boxed grants.

Effective roles are never stored: they are computed by one query from
MembershipRole ∪ (GroupMember ⋈ GroupRoleMapping) ∪ unexpired RoleGrant, so joining
or leaving a group, changing a mapping, or a grant running out takes effect on the
very next request (a grant counts while `until` is after portal.clock.now()).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    cast,
    exists,
    func,
    literal,
    not_,
    null,
    select,
    union,
    union_all,
)

from portal import clock
from portal.extensions import db
from portal.models import (
    Group,
    GroupMember,
    GroupRoleMapping,
    Membership,
    MembershipRole,
    Organisation,
    Role,
    RoleGrant,
)
from portal.permissions import BUILTIN_ROLES, IAM_MANAGE, PERMISSION_LABELS
from portal.services import audit
from portal.services.errors import NotFound, ServiceError


def ensure_builtin_roles() -> None:
    """Create or update the built-in roles (idempotent)."""
    existing = {r.name: r for r in db.session.scalars(select(Role))}
    for spec in BUILTIN_ROLES:
        role = existing.get(spec.name)
        if role is None:
            db.session.add(Role(name=spec.name, description=spec.description,
                                permissions=list(spec.permissions)))
        else:
            role.description = spec.description
            role.permissions = list(spec.permissions)
    db.session.flush()


def get_role(name: str) -> Role:
    """Return the role with this name (case-insensitive) or raise NotFound."""
    ensure_builtin_roles()
    for role in db.session.scalars(select(Role)):
        if role.name.lower() == name.strip().lower():
            return role
    raise NotFound(f"No role is called {name!r}.")


def all_roles() -> list[Role]:
    """Return every role, by name."""
    return list(db.session.scalars(select(Role).order_by(Role.name)))


@dataclass(frozen=True)
class RoleSource:
    """One reason a member holds a role: by hand, through a mapped group, or a time-boxed grant."""

    role: Role
    group_public_id: str | None = None
    group_name: str | None = None
    grant: RoleGrant | None = None

    @property
    def manual(self) -> bool:
        return self.group_public_id is None and self.grant is None

    @property
    def temporary(self) -> bool:
        return self.grant is not None

    @property
    def kind(self) -> str:
        return "manual" if self.manual else "grant" if self.temporary else "group"


@dataclass(frozen=True)
class HeldRole:
    """A role a member holds, and until when (None: by hand or through a group, no end)."""

    role: Role
    until: datetime | None = None


def active_grant(now: datetime) -> ColumnElement[bool]:
    """Return the condition for a RoleGrant that counts at this instant."""
    return and_(RoleGrant.ended_at.is_(None), RoleGrant.until > now)


def _grants_query(membership_ids: Iterable[int]) -> Select[Any]:
    ids = list(membership_ids)
    no_id = cast(null(), Integer)  # typed, so PostgreSQL can match the UNION's columns
    manual = select(
        MembershipRole.membership_id.label("mid"),
        MembershipRole.role_id.label("rid"),
        no_id.label("gid"),
        no_id.label("tid"),
    ).where(MembershipRole.membership_id.in_(ids))
    # A group or a grant only counts inside its own organisation (defence in depth: the
    # services never link across organisations, and this query makes sure).
    mapped = (
        select(
            GroupMember.membership_id.label("mid"),
            GroupRoleMapping.role_id.label("rid"),
            GroupRoleMapping.group_id.label("gid"),
            no_id.label("tid"),
        )
        .join(GroupRoleMapping, GroupRoleMapping.group_id == GroupMember.group_id)
        .join(Group, Group.id == GroupMember.group_id)
        .join(Membership, Membership.id == GroupMember.membership_id)
        .where(GroupMember.membership_id.in_(ids),
               Group.organisation_id == Membership.organisation_id)
    )
    granted = (
        select(
            RoleGrant.membership_id.label("mid"),
            RoleGrant.role_id.label("rid"),
            no_id.label("gid"),
            RoleGrant.id.label("tid"),
        )
        .join(Membership, Membership.id == RoleGrant.membership_id)
        .where(RoleGrant.membership_id.in_(ids),
               RoleGrant.organisation_id == Membership.organisation_id,
               active_grant(clock.now()))
    )
    grants = union_all(manual, mapped, granted).subquery()
    return (
        select(grants.c.mid, Role, Group.public_id, Group.display_name, RoleGrant)
        .join(Role, Role.id == grants.c.rid)
        .outerjoin(Group, Group.id == grants.c.gid)
        .outerjoin(RoleGrant, RoleGrant.id == grants.c.tid)
        .order_by(grants.c.mid, Role.name, Group.display_name_lower)
    )


def _source_order(source: RoleSource) -> tuple[Any, ...]:
    kind = 0 if source.manual else 2 if source.grant else 1
    until = source.grant.until.timestamp() if source.grant else 0.0
    return (source.role.name, kind, (source.group_name or "").lower(), until)


def role_grants_for(membership_ids: Iterable[int]) -> dict[int, list[RoleSource]]:
    """Return every source of these members' roles, in one query (manual, groups, grants)."""
    ids = list(membership_ids)
    result: dict[int, list[RoleSource]] = {mid: [] for mid in ids}
    if not ids:
        return result
    for mid, role, group_public_id, group_name, grant in db.session.execute(_grants_query(ids)):
        result[mid].append(RoleSource(role, group_public_id, group_name, grant))
    for sources in result.values():
        sources.sort(key=_source_order)
    return result


def held_roles_for(membership_ids: Iterable[int]) -> dict[int, list[HeldRole]]:
    """Return each member's distinct roles by name, with the latest end of a time-boxed one."""
    result: dict[int, list[HeldRole]] = {}
    for mid, sources in role_grants_for(membership_ids).items():
        held: dict[int, HeldRole] = {}
        for source in sources:
            current = held.get(source.role.id)
            until = source.grant.until if source.grant else None
            # A permanent source beats any grant; of two grants the later end wins.
            longer = current is not None and current.until is not None and (
                until is None or until > current.until)
            if current is None or longer:
                held[source.role.id] = HeldRole(source.role, until)
        result[mid] = list(held.values())
    return result


def effective_roles_for(membership_ids: Iterable[int]) -> dict[int, list[Role]]:
    """Return each member's effective roles (distinct, by name), in one query."""
    return {mid: [h.role for h in held] for mid, held in held_roles_for(membership_ids).items()}


def effective_roles(membership: Membership) -> list[Role]:
    """Return the member's roles: by hand, of every mapped group they are in, unexpired grants."""
    return effective_roles_for([membership.id])[membership.id]


def effective_permissions(membership: Membership) -> frozenset[str]:
    """Return every permission the member holds through any of their roles."""
    return frozenset(p for role in effective_roles(membership) for p in role.permissions)


def permanent_permissions(membership: Membership) -> frozenset[str]:
    """Return the permissions held by hand or through a group: what the member may hand on.

    A permission held only through a time-boxed grant cannot be handed on, so a
    temporary holder cannot make their own access (or anyone else's) outlast the grant.
    """
    return frozenset(p for source in role_grants_for([membership.id])[membership.id]
                     if not source.temporary for p in source.role.permissions)


def members_with_permission(org_id: int, permission: str) -> list[Membership]:
    """Return the organisation's active members who hold a permission now, by any source."""
    role_ids = [r.id for r in db.session.scalars(select(Role)) if permission in r.permissions]
    if not role_ids:
        return []
    manual = select(MembershipRole.membership_id).where(MembershipRole.role_id.in_(role_ids))
    mapped = (
        select(GroupMember.membership_id)
        .join(GroupRoleMapping, GroupRoleMapping.group_id == GroupMember.group_id)
        .where(GroupRoleMapping.role_id.in_(role_ids))
    )
    granted = select(RoleGrant.membership_id).where(RoleGrant.role_id.in_(role_ids),
                                                    RoleGrant.organisation_id == org_id,
                                                    active_grant(clock.now()))
    holders = union(manual, mapped, granted).subquery()
    return list(db.session.scalars(
        select(Membership)
        .where(Membership.organisation_id == org_id, Membership.active.is_(True),
               Membership.scim_deleted_at.is_(None), Membership.id.in_(select(holders)))
        .order_by(Membership.id)
    ))


# --- The last-IAM-admin guard -------------------------------------------------------------


def _iam_role_ids() -> list[int]:
    return [r.id for r in db.session.scalars(select(Role)) if IAM_MANAGE in (r.permissions or [])]


def iam_holder_count(
    organisation_id: int,
    *,
    without_mapping: tuple[int, int] | None = None,
    without_manual: tuple[int, int] | None = None,
) -> int:
    """Count active members holding the IAM permission, optionally as if one grant were gone.

    `without_mapping` is (group_id, role_id); `without_manual` is (membership_id, role_id).
    Time-boxed grants do not count: they end by themselves, so they cannot be what keeps
    an organisation manageable.
    """
    role_ids = _iam_role_ids()
    if not role_ids:
        return 0
    manual = and_(MembershipRole.membership_id == Membership.id,
                  MembershipRole.role_id.in_(role_ids))
    if without_manual is not None:
        manual = and_(manual, not_(and_(MembershipRole.membership_id == without_manual[0],
                                        MembershipRole.role_id == without_manual[1])))
    mapped = and_(GroupMember.membership_id == Membership.id,
                  GroupRoleMapping.group_id == GroupMember.group_id,
                  GroupRoleMapping.role_id.in_(role_ids),
                  Group.id == GroupMember.group_id,
                  Group.organisation_id == organisation_id)
    if without_mapping is not None:
        mapped = and_(mapped, not_(and_(GroupRoleMapping.group_id == without_mapping[0],
                                        GroupRoleMapping.role_id == without_mapping[1])))
    return db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.organisation_id == organisation_id,
            Membership.active.is_(True),
            Membership.scim_deleted_at.is_(None),
            exists(select(literal(1)).select_from(MembershipRole).where(manual))
            | exists(select(literal(1)).select_from(GroupMember, GroupRoleMapping, Group)
                     .where(mapped)),
        )
    ) or 0


LAST_IAM_ADMIN = (
    "Refused: this would leave {org} with nobody who can manage Identity & Access Management "
    "(the “{permission}” permission). Give another active member that permission first, "
    "then try again. Nothing was changed."
)


def ensure_iam_admin_remains(
    org: Organisation,
    *,
    without_mapping: tuple[int, int] | None = None,
    without_manual: tuple[int, int] | None = None,
) -> None:
    """Raise ServiceError if removing the grant would leave nobody able to manage IAM."""
    # Lock the organisation row (PostgreSQL) so two concurrent removals cannot both pass.
    db.session.execute(select(Organisation.id).where(Organisation.id == org.id).with_for_update())
    before = iam_holder_count(org.id)
    after = iam_holder_count(org.id, without_mapping=without_mapping,
                             without_manual=without_manual)
    if before > 0 and after == 0:
        raise ServiceError(LAST_IAM_ADMIN.format(org=org.name,
                                                 permission=PERMISSION_LABELS[IAM_MANAGE]))


def ensure_may_grant(role: Role, granter_permissions: frozenset[str] | None) -> None:
    """Refuse to let someone hand out permissions they do not hold (None: the command line)."""
    if granter_permissions is None:
        return
    missing = set(role.permissions or []) - granter_permissions
    if missing:
        labels = ", ".join(sorted(PERMISSION_LABELS.get(p, p) for p in missing))
        raise ServiceError(f"You cannot give the role “{role.name}”: it includes permissions "
                           f"you do not hold yourself ({labels}).")


# --- Manual roles ---------------------------------------------------------------------------


def grant_manual_role(member: Membership, role: Role, actor: audit.Actor, *,
                      granter_permissions: frozenset[str] | None = None) -> bool:
    """Give the member a role by hand; return False if they already had it by hand."""
    ensure_may_grant(role, granter_permissions)
    if db.session.get(MembershipRole, (member.id, role.id)) is not None:
        return False
    db.session.add(MembershipRole(membership_id=member.id, role_id=role.id))
    db.session.flush()
    db.session.expire(member, ["roles"])
    audit.record(actor, "member.role_granted", member.organisation, target_type="member",
                 target_id=member.public_id, target_label=member.user_name,
                 details={"role": role.name})
    return True


def revoke_manual_role(member: Membership, role: Role, actor: audit.Actor) -> bool:
    """Take a manually given role away, unless that leaves nobody able to manage IAM."""
    row = db.session.get(MembershipRole, (member.id, role.id))
    if row is None:
        return False
    ensure_iam_admin_remains(member.organisation, without_manual=(member.id, role.id))
    db.session.delete(row)
    db.session.flush()
    db.session.expire(member, ["roles"])
    audit.record(actor, "member.role_revoked", member.organisation, target_type="member",
                 target_id=member.public_id, target_label=member.user_name,
                 details={"role": role.name})
    return True
