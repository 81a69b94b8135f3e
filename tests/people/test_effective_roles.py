"""Effective roles = manual roles ∪ roles of mapped groups, recomputed in the same transaction."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from portal.extensions import db
from portal.models import Group, GroupMember, Membership, MembershipRole, Organisation
from portal.permissions import ADMINISTRATOR, IAM_MANAGE, IT_ADMINISTRATOR, MEMBER
from portal.services import group_roles, roles
from portal.services.audit import CLI_ACTOR
from tests.conftest import Factory, login
from tests.people.conftest import Directory, count_statements


def _member(public_id: str) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.public_id == public_id))


def _group(public_id: str) -> Group:
    return db.session.scalar(select(Group).where(Group.public_id == public_id))


def _names(member: Membership) -> set[str]:
    return {r.name for r in roles.effective_roles(member)}


def test_effective_roles_are_manual_roles_plus_roles_of_every_mapped_group(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    directory.group(acme, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    directory.group(acme, "Everyone", members=[ann], roles_=[MEMBER])
    directory.group(acme, "Unmapped", members=[ann])
    with app.app_context():
        member = _member(ann)
        roles.grant_manual_role(member, roles.get_role(ADMINISTRATOR), CLI_ACTOR)
        db.session.commit()
        assert _names(member) == {ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER}
        assert IAM_MANAGE in roles.effective_permissions(member)


def test_joining_a_mapped_group_grants_its_roles_within_the_same_transaction(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        member = _member(ann)
        assert _names(member) == set()
        db.session.add(GroupMember(group_id=_group(it).id, membership_id=member.id))
        db.session.flush()  # not committed: the same transaction sees the new role
        assert _names(member) == {IT_ADMINISTRATOR}
        db.session.rollback()
        assert _names(_member(ann)) == set()


def test_leaving_a_group_takes_its_roles_away_at_once(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        member = _member(ann)
        assert _names(member) == {IT_ADMINISTRATOR}
        db.session.execute(delete(GroupMember).where(GroupMember.group_id == _group(it).id))
        assert _names(member) == set()
        assert IAM_MANAGE not in roles.effective_permissions(member)


def test_deleting_a_group_takes_its_roles_from_every_member(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    bob = directory.scim_member(acme, "bob@acme.example")
    it = directory.group(acme, "IT", members=[ann, bob], roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        db.session.delete(_group(it))
        db.session.flush()
        assert _names(_member(ann)) == set() and _names(_member(bob)) == set()
        db.session.commit()
    assert directory.roles_of(ann) == set()


def test_renaming_a_group_keeps_the_roles_it_gives(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        group = _group(it)
        group.display_name, group.display_name_lower = "IT Operations", "it operations"
        db.session.commit()
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}


def test_changing_a_mapping_recomputes_the_roles_of_every_member(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    bob = directory.scim_member(acme, "bob@acme.example")
    it = directory.group(acme, "IT", members=[ann, bob])
    with app.app_context():
        group, role = _group(it), roles.get_role(IT_ADMINISTRATOR)
        assert group_roles.map_group(group, role, CLI_ACTOR) is True
        assert _names(_member(ann)) == _names(_member(bob)) == {IT_ADMINISTRATOR}
        assert group_roles.unmap_group(group, role, CLI_ACTOR) is True
        assert _names(_member(ann)) == _names(_member(bob)) == set()


def test_a_role_held_by_hand_and_through_a_group_survives_leaving_the_group(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    it = directory.group(acme, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    with app.app_context():
        member = _member(ann)
        roles.grant_manual_role(member, roles.get_role(IT_ADMINISTRATOR), CLI_ACTOR)
        db.session.execute(delete(GroupMember).where(GroupMember.group_id == _group(it).id))
        assert _names(member) == {IT_ADMINISTRATOR}
        grants = roles.role_grants_for([member.id])[member.id]
        assert [(g.role.name, g.manual) for g in grants] == [(IT_ADMINISTRATOR, True)]


def test_a_group_of_another_organisation_grants_nothing(
    app: Flask, factory: Factory, acme: Organisation, directory: Directory
) -> None:
    globex = factory.org("Globex")
    ann = directory.scim_member(acme, "ann@acme.example")
    foreign = directory.group(globex, "Globex IT", roles_=[ADMINISTRATOR])
    with app.app_context():  # a row the SCIM service never writes; the query ignores it anyway
        db.session.add(GroupMember(group_id=_group(foreign).id, membership_id=_member(ann).id))
        db.session.commit()
    assert directory.roles_of(ann) == set()


def test_roles_of_many_members_are_loaded_in_one_statement(
    app: Flask, acme: Organisation, directory: Directory
) -> None:
    ids = [directory.scim_member(acme, f"user{i}@acme.example") for i in range(12)]
    directory.group(acme, "Everyone", members=ids, roles_=[MEMBER])
    with app.app_context():
        member_ids = [_member(p).id for p in ids]
        db.session.add(MembershipRole(membership_id=member_ids[0],
                                      role_id=roles.get_role(ADMINISTRATOR).id))
        db.session.flush()
        with count_statements() as statements:
            result = roles.effective_roles_for(member_ids)
    assert len(statements) == 1
    assert {r.name for r in result[member_ids[0]]} == {ADMINISTRATOR, MEMBER}
    assert all({r.name for r in result[mid]} == {MEMBER} for mid in member_ids[1:])


def test_new_scim_user_without_a_mapped_group_gets_no_it_settings_access(
    client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    directory.group(acme, "Staff", members=[ann])  # a group, but not mapped to any role
    login(client, "ann@acme.example")
    assert client.get("/").status_code == 200
    for path in ("/settings/iam/scim", "/settings/iam/sso", "/people/", "/groups/"):
        assert client.get(path).status_code == 403, path
    assert directory.roles_of(ann) == set()


def test_scim_user_in_a_group_mapped_to_it_administrator_reaches_iam(
    client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    directory.group(acme, "IT", members=[ann], roles_=[IT_ADMINISTRATOR])
    login(client, "ann@acme.example")
    assert client.get("/settings/iam/scim").status_code == 200
    assert client.get("/people/").status_code == 200
