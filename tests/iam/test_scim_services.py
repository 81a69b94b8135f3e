"""Services behind the SCIM screen: status for auditors, generate/rotate rules, notifications."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from portal.extensions import db
from portal.models import (
    Group,
    GroupMember,
    GroupRoleMapping,
    Membership,
    Notification,
    Organisation,
)
from portal.permissions import IAM_MANAGE, IT_ADMINISTRATOR
from portal.services import roles, scim_setup, scim_tokens
from portal.services.audit import CLI_ACTOR, Actor
from portal.services.errors import Conflict
from portal.services.scim_status import RESULT_ACCEPTED, scim_status, scim_statuses
from tests.conftest import Factory, count_statements
from tests.iam.helpers import active_tokens


def _org(org: Organisation) -> Organisation:
    fresh = db.session.get(Organisation, org.id)
    assert fresh is not None
    return fresh


def test_status_of_an_organisation_without_a_token(app: Flask, factory: Factory) -> None:
    org = factory.org("Acme Corp")
    with app.app_context():
        status = scim_status(_org(org))
    assert status.released and status.endpoint_configured
    assert status.base_url == f"https://dpms.test/scim/v2/{org.key}"
    assert not status.token_issued and status.token_hint is None
    assert status.last_request_at is None and status.last_request_result is None


def test_status_reports_the_active_token_and_its_last_use(app: Flask, factory: Factory) -> None:
    org = factory.org("Acme Corp")
    with app.app_context():
        issued = scim_tokens.issue_token(_org(org), Actor("ada@acme.example", None))
        scim_tokens.note_use(issued.record, "Okta SCIM Client 1.0.0")
        db.session.commit()
        status = scim_status(_org(org))
        assert status.token_issued and status.token_id == issued.record.id
        assert status.token_hint == issued.record.hint
        assert status.token_issued_by == "ada@acme.example"
        assert status.token_issued_at == issued.record.created_at
        assert status.token_last_used_agent == "Okta SCIM Client 1.0.0"
        assert status.last_request_at == issued.record.last_used_at
        assert status.last_request_client == "Okta SCIM Client 1.0.0"
        assert status.last_request_result == RESULT_ACCEPTED


def test_last_request_survives_a_rotation_until_the_new_token_is_used(
    app: Flask, factory: Factory
) -> None:
    org = factory.org("Acme Corp")
    with app.app_context():
        old = scim_tokens.issue_token(_org(org), CLI_ACTOR)
        scim_tokens.note_use(old.record, "Entra ID provisioning")
        used_at = old.record.last_used_at
        db.session.commit()
        scim_tokens.issue_token(_org(org), CLI_ACTOR)
        db.session.commit()
        status = scim_status(_org(org))
        assert status.token_last_used_at is None  # the new token has not been used
        assert status.last_request_at == used_at
        assert status.last_request_client == "Entra ID provisioning"


def test_statuses_of_many_organisations_take_a_fixed_number_of_queries(
    app: Flask, factory: Factory
) -> None:
    orgs = [factory.org(f"Org {i}", released=i % 2 == 0) for i in range(5)]
    with app.app_context():
        scim_tokens.issue_token(_org(orgs[1]), CLI_ACTOR)
        db.session.commit()
        loaded = [_org(o) for o in orgs]
        with count_statements() as statements:
            result = scim_statuses(loaded)
        # One for the tokens, one for the newest activity record, however many organisations.
        assert len(statements) == 2
        assert [result[o.id].released for o in loaded] == [True, False, True, False, True]
        assert [result[o.id].token_issued for o in loaded] == [False, True, False, False, False]


def test_generate_refuses_when_a_token_exists(app: Flask, factory: Factory) -> None:
    org = factory.org("Acme Corp")
    with app.app_context():
        first = scim_setup.generate_token(_org(org), CLI_ACTOR)
        db.session.commit()
        with pytest.raises(scim_setup.TokenChanged):
            scim_setup.generate_token(_org(org), CLI_ACTOR)
        db.session.rollback()
        assert scim_tokens.verify_token(org.key, first.plaintext) is not None


def test_generate_and_rotate_refuse_while_not_released(app: Flask, factory: Factory) -> None:
    org = factory.org("Globex", released=False)
    with app.app_context():
        with pytest.raises(scim_setup.ScimNotReleased, match="not yet available for Globex"):
            scim_setup.generate_token(_org(org), CLI_ACTOR)
        with pytest.raises(scim_setup.ScimNotReleased):
            scim_setup.rotate_token(_org(org), CLI_ACTOR, None)
        db.session.rollback()
        assert scim_tokens.active_token(_org(org)) is None


def test_rollout_is_read_from_the_database_not_from_a_stale_object(
    app: Flask, factory: Factory
) -> None:
    org = factory.org("Acme Corp")
    with app.app_context():
        stale = _org(org)
        assert stale.scim_released
        db.session.execute(
            Organisation.__table__.update().where(Organisation.id == org.id)
            .values(scim_rollout="pending"))
        with pytest.raises(scim_setup.ScimNotReleased):
            scim_setup.generate_token(stale, CLI_ACTOR)


def test_concurrent_rotations_leave_exactly_one_valid_token(app: Flask, factory: Factory) -> None:
    org = factory.org("Acme Corp")
    with app.app_context():
        first = scim_setup.generate_token(_org(org), CLI_ACTOR)
        expected = first.record.id
        db.session.commit()
    barrier = threading.Barrier(2)
    shown: list[str] = []
    refused: list[Exception] = []

    def rotate(label: str) -> None:
        with app.test_request_context():
            barrier.wait()
            try:
                issued = scim_setup.rotate_token(_org(org), Actor(label), expected)
                db.session.commit()
                shown.append(issued.plaintext)
            except (Conflict, OperationalError) as exc:  # SQLite: the loser may find it locked
                db.session.rollback()
                refused.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=rotate, args=(f"admin {i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(shown) == 1 and len(refused) == 1
    with app.app_context():
        assert len(active_tokens(app, org)) == 1
        assert scim_tokens.verify_token(org.key, shown[0]) is not None
        assert scim_tokens.verify_token(org.key, first.plaintext) is None


def test_members_with_permission_counts_manual_and_group_roles_of_active_members(
    app: Flask, factory: Factory
) -> None:
    org = factory.org("Acme Corp")
    manual = factory.it_admin(org, "ada@acme.example")
    via_group = factory.member(org, "gus@acme.example")
    gone = factory.it_admin(org, "old@acme.example")
    factory.member(org, "max@acme.example")
    factory.it_admin(factory.org("Other"), "olga@other.example")
    with app.app_context():
        group = Group(organisation_id=org.id, display_name="IT", display_name_lower="it")
        db.session.add(group)
        db.session.flush()
        db.session.add(GroupMember(group_id=group.id, membership_id=via_group.id))
        db.session.add(GroupRoleMapping(group_id=group.id,
                                        role_id=roles.get_role(IT_ADMINISTRATOR).id))
        db.session.get(Membership, gone.id).active = False
        db.session.commit()
        holders = roles.members_with_permission(org.id, IAM_MANAGE)
        assert [m.id for m in holders] == [manual.id, via_group.id]


def test_rotation_notification_is_deduplicated_per_token(app: Flask, factory: Factory) -> None:
    org = factory.org("Acme Corp")
    ada_member = factory.it_admin(org, "ada@acme.example")
    bea = factory.it_admin(org, "bea@acme.example")
    with app.test_request_context():
        ada = Actor("ada@acme.example", ada_member.account_id)
        first = scim_setup.generate_token(_org(org), ada)
        rotated = scim_setup.rotate_token(_org(org), ada, first.record.id)
        scim_setup._notify_rotation(_org(org), ada, rotated)  # e.g. a retried request
        scim_setup.rotate_token(_org(org), ada, rotated.record.id)
        db.session.commit()
        keys = db.session.scalars(
            select(Notification.dedupe_key).where(Notification.account_id == bea.account_id)
            .order_by(Notification.id)).all()
        assert len(keys) == 2 and len(set(keys)) == 2
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 2
