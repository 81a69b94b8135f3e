"""The last-IAM-admin guard, and nobody hands out permissions they do not hold."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Group,
    GroupRoleMapping,
    Membership,
    MembershipRole,
    Organisation,
)
from portal.permissions import ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER
from portal.services import group_roles, roles
from portal.services.audit import CLI_ACTOR
from portal.services.errors import ServiceError
from tests.conftest import Factory
from tests.people.conftest import Directory


def _member(public_id: str) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.public_id == public_id))


def _admin(org: Organisation) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.organisation_id == org.id,
                                                      Membership.user_name_lower
                                                      == "it-admin@acme.example"))


def _events(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action)) or 0


@pytest.fixture
def solo(factory: Factory, directory: Directory) -> tuple[Organisation, str, str]:
    """An organisation whose only IAM holder gets it through the mapped group "IT"."""
    org = factory.org("Solo Ltd")
    ann = directory.scim_member(org, "ann@solo.example")
    it = directory.group(org, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    return org, ann, it


def test_unmapping_the_group_that_holds_the_last_iam_admin_is_refused_and_changes_nothing(
    app: Flask, solo: tuple[Organisation, str, str], directory: Directory
) -> None:
    org, ann, it = solo
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.public_id == it))
        with pytest.raises(ServiceError) as refused:
            group_roles.unmap_group(group, roles.get_role(IT_ADMINISTRATOR), CLI_ACTOR)
        db.session.commit()  # even a caller that commits afterwards writes nothing
        assert "nobody who can manage Identity & Access Management" in str(refused.value)
        assert "Solo Ltd" in str(refused.value) and "Nothing was changed" in str(refused.value)
        assert db.session.get(GroupRoleMapping, (group.id, roles.get_role(IT_ADMINISTRATOR).id))
        assert _events("group.role_unmapped") == 0
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}


def test_unmapping_is_allowed_when_another_active_member_keeps_iam(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.public_id == it))
        assert group_roles.unmap_group(group, roles.get_role(IT_ADMINISTRATOR), CLI_ACTOR)
        db.session.commit()
        event = db.session.scalar(select(AuditEvent)
                                  .where(AuditEvent.action == "group.role_unmapped"))
        assert event.target_id == it and event.details == {"role": IT_ADMINISTRATOR,
                                                           "members": 1}
    assert directory.roles_of(ann) == set()


def test_unmapping_a_role_without_the_iam_permission_is_never_blocked(
    app: Flask, solo: tuple[Organisation, str, str], directory: Directory
) -> None:
    org, ann, it = solo
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.public_id == it))
        group_roles.map_group(group, roles.get_role(MEMBER), CLI_ACTOR)
        assert group_roles.unmap_group(group, roles.get_role(MEMBER), CLI_ACTOR)


def test_revoking_the_last_manual_iam_role_is_refused_and_changes_nothing(
    app: Flask, acme: Organisation
) -> None:
    with app.app_context():
        admin = _admin(acme)
        role = roles.get_role(IT_ADMINISTRATOR)
        with pytest.raises(ServiceError, match="nobody who can manage Identity"):
            roles.revoke_manual_role(admin, role, CLI_ACTOR)
        db.session.commit()
        assert db.session.get(MembershipRole, (admin.id, role.id)) is not None
        assert _events("member.role_revoked") == 0


def test_revoking_a_manual_role_is_allowed_when_a_mapped_group_still_gives_iam(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    with app.app_context():
        admin_public_id = _admin(acme).public_id
    directory.group(acme, "IT", members=[admin_public_id], roles_=[ADMINISTRATOR])
    with app.app_context():
        admin = _admin(acme)
        assert roles.revoke_manual_role(admin, roles.get_role(IT_ADMINISTRATOR), CLI_ACTOR)
        db.session.commit()
        assert _events("member.role_revoked") == 1
    assert directory.roles_of(admin_public_id) == {ADMINISTRATOR}


@pytest.mark.parametrize("state", ["deactivated", "removed"])
def test_deactivated_or_removed_members_do_not_count_as_iam_admins(
    app: Flask, acme: Organisation, directory: Directory, state: str
) -> None:
    other = directory.scim_member(acme, "gone@acme.example", active=state != "deactivated",
                                  deleted=state == "removed")
    directory.group(acme, "IT", members=[other], roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        assert roles.iam_holder_count(acme.id) == 1
        with pytest.raises(ServiceError):
            roles.revoke_manual_role(_admin(acme), roles.get_role(IT_ADMINISTRATOR), CLI_ACTOR)


def test_revoking_a_role_the_member_does_not_hold_by_hand_changes_nothing(
    app: Flask, solo: tuple[Organisation, str, str]
) -> None:
    org, ann, it = solo
    with app.app_context():
        assert roles.revoke_manual_role(_member(ann), roles.get_role(IT_ADMINISTRATOR),
                                        CLI_ACTOR) is False
        assert _events("member.role_revoked") == 0


def test_nobody_can_grant_or_map_a_role_with_permissions_they_do_not_hold(
    app: Flask, solo: tuple[Organisation, str, str]
) -> None:
    org, ann, it = solo
    limited = frozenset({"people.view", "people.manage"})
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.public_id == it))
        admin_role = roles.get_role(ADMINISTRATOR)
        with pytest.raises(ServiceError, match="permissions you do not hold"):
            roles.grant_manual_role(_member(ann), admin_role, CLI_ACTOR,
                                    granter_permissions=limited)
        with pytest.raises(ServiceError, match="permissions you do not hold"):
            group_roles.map_group(group, admin_role, CLI_ACTOR, granter_permissions=limited)
        assert roles.grant_manual_role(_member(ann), roles.get_role(MEMBER), CLI_ACTOR,
                                       granter_permissions=limited)
        assert db.session.get(GroupRoleMapping, (group.id, admin_role.id)) is None
