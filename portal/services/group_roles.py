"""Group-to-role mapping: members of a mapped group hold the role while they are in it."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Group, GroupMember, GroupRoleMapping, Organisation, Role
from portal.permissions import IAM_MANAGE
from portal.services import audit
from portal.services.errors import NotFound, ServiceError
from portal.services.roles import ensure_iam_admin_remains, ensure_may_grant


class ConfirmationRequired(ServiceError):
    """The mapping hands out IAM management and was not explicitly confirmed."""


def find_group(org: Organisation, display_name: str) -> Group:
    """Return the organisation's group with this display name (case-insensitive) or NotFound."""
    group = db.session.scalar(select(Group).where(
        Group.organisation_id == org.id,
        Group.display_name_lower == display_name.strip().lower(),
    ))
    if group is None:
        raise NotFound(f"{org.name} has no group called {display_name.strip()!r}.")
    return group


def get_group(org_id: int, public_id: str) -> Group | None:
    """Return the organisation's group with this public id, if any."""
    return db.session.scalar(select(Group).where(Group.organisation_id == org_id,
                                                 Group.public_id == public_id))


def mapped_roles(group: Group) -> list[Role]:
    """Return the roles the group is mapped to, by name."""
    return list(db.session.scalars(
        select(Role).join(GroupRoleMapping, GroupRoleMapping.role_id == Role.id)
        .where(GroupRoleMapping.group_id == group.id).order_by(Role.name)
    ))


def _member_count(group: Group) -> int:
    return db.session.scalar(
        select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group.id)
    ) or 0


def needs_confirmation(role: Role) -> bool:
    """Return whether mapping a group to the role must be confirmed (it grants IAM management)."""
    return IAM_MANAGE in (role.permissions or [])


def map_group(group: Group, role: Role, actor: audit.Actor, *,
              granter_permissions: frozenset[str] | None = None,
              confirmed: bool | None = None) -> bool:
    """Map the group to the role; return False if it already was.

    A role granting IAM management needs `confirmed`; None is the command line, where
    the operator named the role explicitly.
    """
    ensure_may_grant(role, granter_permissions)
    if db.session.get(GroupRoleMapping, (group.id, role.id)) is not None:
        return False
    if confirmed is False and needs_confirmation(role):
        count = _member_count(group)
        raise ConfirmationRequired(
            f"Mapping {group.display_name} to {role.name} lets its {count:,} "
            f"{'member' if count == 1 else 'members'}, and everyone your identity provider adds "
            "to it later, manage Identity & Access Management. Confirm to go ahead; nothing "
            "was changed.")
    db.session.add(GroupRoleMapping(group_id=group.id, role_id=role.id))
    db.session.flush()
    audit.record(actor, "group.role_mapped", group.organisation, target_type="group",
                 target_id=group.public_id, target_label=group.display_name,
                 details={"role": role.name, "members": _member_count(group)})
    return True


def unmap_group(group: Group, role: Role, actor: audit.Actor) -> bool:
    """Remove the mapping, unless that leaves nobody able to manage IAM; False if unmapped."""
    mapping = db.session.get(GroupRoleMapping, (group.id, role.id))
    if mapping is None:
        return False
    ensure_iam_admin_remains(group.organisation, without_mapping=(group.id, role.id))
    db.session.delete(mapping)
    db.session.flush()
    audit.record(actor, "group.role_unmapped", group.organisation, target_type="group",
                 target_id=group.public_id, target_label=group.display_name,
                 details={"role": role.name, "members": _member_count(group)})
    return True
