"""IAM administrators are told once per provisioning incident, and when SCIM is released."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, Notification, Organisation
from portal.permissions import ADMINISTRATOR
from portal.services import organisations
from portal.services.audit import CLI_ACTOR
from tests.activity.conftest import ScimOrg, backdate_token
from tests.conftest import Factory


def _notes(app: Flask, email: str) -> list[Notification]:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == email))
        assert account is not None
        rows = list(db.session.scalars(select(Notification)
                                       .where(Notification.account_id == account.id)))
        db.session.expunge_all()
        return rows


def test_two_failing_requests_in_one_incident_notify_each_iam_admin_once(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    factory.member(scim_org.org, "boss@acme.example", ADMINISTRATOR)
    factory.member(scim_org.org, "max@acme.example")
    for _ in range(2):
        response = scim_org.call("GET", "/Users", token="dpms_scim_wrong")
        assert response.status_code >= 400
    [ada] = _notes(app, "ada@acme.example")
    assert len(_notes(app, "boss@acme.example")) == 1
    assert _notes(app, "max@acme.example") == []  # no IAM permission
    assert ada.message.startswith("SCIM provisioning for Acme Corp is failing:")
    assert ada.link == "/settings/iam/scim/activity?status=errors"
    assert ada.organisation_id == scim_org.org.id


def test_a_new_incident_after_recovery_is_announced_again(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    backdate_token(app, scim_org.org, days=1)
    scim_org.call("GET", "/Users", token="dpms_scim_wrong")
    # A success ends the incident; recorded directly because no SCIM route succeeds here.
    with app.app_context():
        from portal.models import ProvisioningActivity, utcnow

        db.session.add(ProvisioningActivity(
            organisation_id=scim_org.org.id, time=utcnow(), method="GET", path="/x",
            status=200, duration_ms=1, token_valid=True))
        db.session.commit()
    for _ in range(3):
        scim_org.call("GET", "/Users", token="dpms_scim_wrong")
    assert len(_notes(app, "ada@acme.example")) == 2


def test_admins_of_other_organisations_are_not_told(app: Flask, scim_org: ScimOrg,
                                                    factory: Factory) -> None:
    factory.it_admin(factory.org("Globex"), "gina@globex.example")
    scim_org.call("GET", "/Users", token="dpms_scim_wrong")
    assert _notes(app, "gina@globex.example") == []


def test_releasing_scim_tells_the_iam_admins_once(app: Flask, factory: Factory) -> None:
    org = factory.org("Globex", released=False)
    factory.it_admin(org, "gina@globex.example")
    factory.member(org, "max@globex.example")
    with app.app_context():
        fresh = db.session.get(Organisation, org.id)
        assert organisations.set_scim_rollout(fresh, True, CLI_ACTOR)
        assert not organisations.set_scim_rollout(fresh, True, CLI_ACTOR)  # no change
        db.session.commit()
    [note] = _notes(app, "gina@globex.example")
    assert note.message == ("SCIM provisioning is now available for Globex: connect your "
                            "identity provider.")
    assert note.link == "/settings/iam/scim"
    assert _notes(app, "max@globex.example") == []
