"""SCIM-style data built straight through the models, until the SCIM API lands on main."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    SOURCE_SCIM,
    Account,
    Group,
    GroupMember,
    GroupRoleMapping,
    MemberEmail,
    Membership,
    Organisation,
    utcnow,
)
from portal.services import roles
from tests.conftest import PASSWORD, Factory, count_statements, login  # noqa: F401


class Directory:
    """Creates SCIM-provisioned members and groups; every call commits and returns public ids."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def scim_member(self, org: Organisation, user_name: str, *, display_name: str | None = None,
                    active: bool = True, deleted: bool = False, password: str | None = PASSWORD,
                    updated_at: datetime | None = None, email: str | None = None,
                    other_emails: Iterable[str] = ()) -> str:
        with self.app.app_context():
            email = (email or user_name).lower()
            account = db.session.scalar(select(Account).where(Account.email == email))
            if account is None:
                account = Account(email=email, display_name=display_name or "")
                if password:
                    from werkzeug.security import generate_password_hash
                    account.password_hash = generate_password_hash(password)
                db.session.add(account)
                db.session.flush()
            member = Membership(
                organisation_id=org.id, account_id=account.id, source=SOURCE_SCIM,
                scim_managed=True, user_name=user_name, user_name_lower=user_name.lower(),
                display_name=display_name, active=active and not deleted,
                external_id=f"ext-{user_name}", updated_at=updated_at or utcnow(),
                scim_deleted_at=utcnow() if deleted else None,
                emails=[MemberEmail(value=email, value_lower=email, type="work", primary=True),
                        *(MemberEmail(value=e, value_lower=e.lower(), type="other")
                          for e in other_emails)],
            )
            db.session.add(member)
            db.session.commit()
            return member.public_id

    def group(self, org: Organisation, name: str, *, members: Iterable[str] = (),
              roles_: Iterable[str] = (), source: str = SOURCE_SCIM) -> str:
        with self.app.app_context():
            group = Group(organisation_id=org.id, display_name=name,
                          display_name_lower=name.lower(), source=source,
                          external_id=f"ext-{name}")
            db.session.add(group)
            db.session.flush()
            for public_id in members:
                db.session.add(GroupMember(group_id=group.id, membership_id=self._mid(public_id)))
            for role in roles_:
                db.session.add(GroupRoleMapping(group_id=group.id,
                                                role_id=roles.get_role(role).id))
            db.session.commit()
            return group.public_id

    def join(self, group_public_id: str, member_public_id: str) -> None:
        with self.app.app_context():
            db.session.add(GroupMember(group_id=self._gid(group_public_id),
                                       membership_id=self._mid(member_public_id)))
            db.session.commit()

    def roles_of(self, member_public_id: str) -> set[str]:
        with self.app.app_context():
            member = db.session.get(Membership, self._mid(member_public_id))
            return {r.name for r in roles.effective_roles(member)}

    @staticmethod
    def _mid(public_id: str) -> int:
        return db.session.scalar(select(Membership.id).where(Membership.public_id == public_id))

    @staticmethod
    def _gid(public_id: str) -> int:
        return db.session.scalar(select(Group.id).where(Group.public_id == public_id))


@pytest.fixture
def directory(app: Flask) -> Directory:
    """Builder for SCIM-style members and groups."""
    return Directory(app)


@pytest.fixture
def acme(factory: Factory) -> Organisation:
    """Acme Corp with its IT administrator (it-admin@acme.example)."""
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    return org


@pytest.fixture
def admin_client(client: FlaskClient, acme: Organisation) -> FlaskClient:
    """A client signed in as Acme's IT administrator."""
    login(client, "it-admin@acme.example")
    return client
