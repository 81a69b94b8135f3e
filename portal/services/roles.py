"""Roles, and what a member may do: manual roles plus roles of mapped groups.

Effective roles are never stored: they are computed by query from
MembershipRole ∪ (GroupMember ⋈ GroupRoleMapping), so joining or leaving a
group, deleting a group or changing a mapping takes effect in the very
transaction that makes the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    exists,
    func,
    literal,
    not_,
    null,
    select,
    union,
    union_all,
)

from portal.extensions import db
from portal.models import (
    Group,
    GroupMember,
    GroupRoleMapping,
    Membership,
    MembershipRole,
    Organisation,
    Role,
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
class RoleGrant:
    """One reason a member holds a role: by hand (group is None) or through a mapped group."""

    role: Role
    group_public_id: str | None = None
    group_name: str | None = None

    @property
    def manual(self) -> bool:
        return self.group_public_id is None


def _grants_query(membership_ids: Iterable[int]) -> Select[Any]:
    ids = list(membership_ids)
    manual = select(
        MembershipRole.membership_id.label("mid"),
        MembershipRole.role_id.label("rid"),
        null().label("gid"),
    ).where(MembershipRole.membership_id.in_(ids))
    # A group only counts inside its own organisation (defence in depth: the
    # SCIM service never links across organisations, and this query makes sure).
    mapped = (
        select(
            GroupMember.membership_id.label("mid"),
            GroupRoleMapping.role_id.label("rid"),
            GroupRoleMapping.group_id.label("gid"),
        )
        .join(GroupRoleMapping, GroupRoleMapping.group_id == GroupMember.group_id)
        .join(Group, Group.id == GroupMember.group_id)
        .join(Membership, Membership.id == GroupMember.membership_id)
        .where(GroupMember.membership_id.in_(ids),
               Group.organisation_id == Membership.organisation_id)
    )
    grants = union_all(manual, mapped).subquery()
    return (
        select(grants.c.mid, Role, Group.public_id, Group.display_name)
        .join(Role, Role.id == grants.c.rid)
        .outerjoin(Group, Group.id == grants.c.gid)
        .order_by(grants.c.mid, Role.name, Group.display_name_lower)
    )


def role_grants_for(membership_ids: Iterable[int]) -> dict[int, list[RoleGrant]]:
    """Return every role grant of these members, in one query (manual first per role)."""
    ids = list(membership_ids)
    result: dict[int, list[RoleGrant]] = {mid: [] for mid in ids}
    if not ids:
        return result
    for mid, role, group_public_id, group_name in db.session.execute(_grants_query(ids)):
        result[mid].append(RoleGrant(role, group_public_id, group_name))
    for grants in result.values():
        grants.sort(key=lambda g: (g.role.name, not g.manual, (g.group_name or "").lower()))
    return result


def effective_roles_for(membership_ids: Iterable[int]) -> dict[int, list[Role]]:
    """Return each member's effective roles (distinct, by name), in one query."""
    result: dict[int, list[Role]] = {}
    for mid, grants in role_grants_for(membership_ids).items():
        seen: dict[int, Role] = {}
        for grant in grants:
            seen.setdefault(grant.role.id, grant.role)
        result[mid] = list(seen.values())
    return result


def effective_roles(membership: Membership) -> list[Role]:
    """Return the member's roles: manual ones plus those of every mapped group they are in."""
    return effective_roles_for([membership.id])[membership.id]


def effective_permissions(membership: Membership) -> frozenset[str]:
    """Return every permission the member holds through any of their roles."""
    return frozenset(p for role in effective_roles(membership) for p in role.permissions)


def members_with_permission(org_id: int, permission: str) -> list[Membership]:
    """Return the organisation's active members who hold a permission through any role."""
    role_ids = [r.id for r in db.session.scalars(select(Role)) if permission in r.permissions]
    if not role_ids:
        return []
    manual = select(MembershipRole.membership_id).where(MembershipRole.role_id.in_(role_ids))
    mapped = (
        select(GroupMember.membership_id)
        .join(GroupRoleMapping, GroupRoleMapping.group_id == GroupMember.group_id)
        .where(GroupRoleMapping.role_id.in_(role_ids))
    )
    holders = union(manual, mapped).subquery()
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
