"""Roles, and what a member may do: manual roles plus roles of mapped groups."""

from __future__ import annotations

from sqlalchemy import select, union

from portal.extensions import db
from portal.models import GroupMember, GroupRoleMapping, Membership, MembershipRole, Role
from portal.permissions import BUILTIN_ROLES
from portal.services.errors import NotFound


def ensure_builtin_roles() -> None:
    """Create or update the built-in roles (idempotent)."""
    existing = {r.name: r for r in db.session.scalars(select(Role))}
    for spec in BUILTIN_ROLES:
        role = existing.get(spec.name)
        if role is None:
            db.session.add(
                Role(name=spec.name, description=spec.description, permissions=list(spec.permissions))
            )
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


def effective_roles(membership: Membership) -> list[Role]:
    """Return the member's roles: manual ones plus those of every mapped group they are in."""
    manual = select(MembershipRole.role_id).where(MembershipRole.membership_id == membership.id)
    mapped = (
        select(GroupRoleMapping.role_id)
        .join(GroupMember, GroupMember.group_id == GroupRoleMapping.group_id)
        .where(GroupMember.membership_id == membership.id)
    )
    ids = union(manual, mapped).subquery()
    return list(db.session.scalars(select(Role).where(Role.id.in_(select(ids))).order_by(Role.name)))


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
