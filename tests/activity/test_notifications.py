"""IAM administrators are told once per provisioning incident, and when SCIM is released."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, Notification, Organisation, ScimIncident
from portal.permissions import ADMINISTRATOR, IAM_MANAGE
from portal.services import organisations, scim_notices
from portal.services.audit import CLI_ACTOR
from portal.services.scim_health import FAILING, connection_health
from tests.activity.conftest import AddActivity, ScimOrg
from tests.conftest import Factory, FrozenClock

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BAD_FILTER = "/Users?filter=userName%20zz%20%22x%22"  # 400 invalidFilter


def _notes(app: Flask, email: str) -> list[Notification]:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == email))
        assert account is not None
        rows = list(db.session.scalars(select(Notification)
                                       .where(Notification.account_id == account.id)
                                       .order_by(Notification.id)))
        db.session.expunge_all()
        return rows


def _incidents(app: Flask) -> list[tuple[int, bool]]:
    """Return (organisation id, open?) of every incident, oldest first."""
    with app.app_context():
        return [(i.organisation_id, i.closed_at is None)
                for i in db.session.scalars(select(ScimIncident).order_by(ScimIncident.id))]


def _record(app: Flask, add_activity: AddActivity, org: Organisation, status: int,
            times: int = 1) -> int:
    """Record authenticated requests as the activity writer does; return notices sent."""
    sent = 0
    for _ in range(times):
        add_activity(org, status=status)
        if scim_notices.breaks_provisioning(status, True):
            with app.app_context():
                sent += scim_notices.notify_if_failing(db.session.get(Organisation, org.id))
                db.session.commit()
    return sent


def test_a_sync_mixing_bad_records_with_successes_notifies_each_admin_once(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    factory.member(scim_org.org, "boss@acme.example", ADMINISTRATOR)
    factory.member(scim_org.org, "max@acme.example")
    statuses = []
    for _ in range(15):  # a bad record between successes: 1 of 2 requests fails
        statuses.append(scim_org.call("GET", BAD_FILTER).status_code)
        statuses.append(scim_org.call("GET", "/Users").status_code)
    assert statuses == [400, 200] * 15
    [ada] = _notes(app, "ada@acme.example")
    assert len(_notes(app, "boss@acme.example")) == 1
    assert _notes(app, "max@acme.example") == []  # no IAM permission
    assert ada.message.startswith("SCIM provisioning for Acme Corp is failing: ")
    assert "(invalid request (invalidFilter))" in ada.message
    assert ada.link == "/settings/iam/scim/activity?status=errors"
    assert (ada.organisation_id, ada.permission) == (scim_org.org.id, IAM_MANAGE)
    assert _incidents(app) == [(scim_org.org.id, True)]


def test_a_new_incident_is_announced_only_after_a_run_of_successes(
    app: Flask, scim_org: ScimOrg, factory: Factory, add_activity: AddActivity
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    org = scim_org.org
    assert _record(app, add_activity, org, 500, times=3) == 1
    _record(app, add_activity, org, 200, times=scim_notices.RECOVERY_RUN - 1)  # not quite
    assert _record(app, add_activity, org, 500, times=5) == 0
    assert _incidents(app) == [(org.id, True)]
    _record(app, add_activity, org, 200, times=scim_notices.RECOVERY_RUN)  # recovered
    assert _record(app, add_activity, org, 500) == 0  # one failure: below the threshold
    assert _incidents(app) == [(org.id, False)]  # ...but it closes the old incident
    assert _record(app, add_activity, org, 500, times=4) == 1
    assert _incidents(app) == [(org.id, False), (org.id, True)]
    assert [n.message.split(":")[0] for n in _notes(app, "ada@acme.example")] == \
        ["SCIM provisioning for Acme Corp is failing"] * 2


def test_a_day_later_an_ongoing_incident_reminds_admins_who_read_the_first_notice(
    app: Flask, scim_org: ScimOrg, factory: Factory, add_activity: AddActivity,
    clock: FrozenClock
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    factory.it_admin(scim_org.org, "bea@acme.example")
    org = scim_org.org
    assert _record(app, add_activity, org, 503, times=4) == 2
    clock.advance(hours=23)
    assert _record(app, add_activity, org, 503, times=3) == 0  # within the cool-down
    with app.app_context():
        note = db.session.scalar(select(Notification).join(Account)
                                 .where(Account.email == "ada@acme.example"))
        assert note is not None
        note.read_at = clock()
        db.session.commit()
    clock.advance(hours=2)
    assert _record(app, add_activity, org, 503) == 1  # ada only: bea's notice is unread
    messages = [n.message for n in _notes(app, "ada@acme.example")]
    assert len(messages) == 2 and "is still failing" in messages[1]
    assert len(_notes(app, "bea@acme.example")) == 1
    assert _incidents(app) == [(org.id, True)]


@pytest.mark.parametrize("status", [404, 409, 412, 429])
def test_ordinary_client_outcomes_never_open_an_incident(
    app: Flask, scim_org: ScimOrg, factory: Factory, add_activity: AddActivity, status: int
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    assert _record(app, add_activity, scim_org.org, status, times=20) == 0
    with app.app_context():  # one breaking request among them is below the threshold
        add_activity(scim_org.org, status=400)
        assert scim_notices.notify_if_failing(
            db.session.get(Organisation, scim_org.org.id)) == 0
    assert _notes(app, "ada@acme.example") == [] and _incidents(app) == []


@pytest.mark.parametrize("status", [400, 403, 405, 413, 500, 502])
def test_server_errors_and_setup_refusals_open_an_incident(
    app: Flask, scim_org: ScimOrg, factory: Factory, add_activity: AddActivity, status: int
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    assert _record(app, add_activity, scim_org.org, status, times=3) == 1
    assert len(_notes(app, "ada@acme.example")) == 1


def test_existence_checks_and_uniqueness_conflicts_through_the_api_notify_nobody(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    user = {"schemas": [USER], "userName": "alice@acme.example"}
    statuses = [scim_org.call("GET", f"/Users/unknown-{i}").status_code for i in range(8)]
    statuses += [scim_org.call("POST", "/Users", json=user).status_code for _ in range(8)]
    assert statuses == [404] * 8 + [201] + [409] * 7
    assert _notes(app, "ada@acme.example") == [] and _incidents(app) == []


def test_bad_tokens_notify_nobody_released_or_not(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    factory.it_admin(scim_org.org, "ada@acme.example")
    hidden = factory.org("Globex", released=False)
    factory.it_admin(hidden, "gina@globex.example")
    for _ in range(12):  # refused with 401, then 429 once the URL failed too often
        assert scim_org.call("GET", "/Users", token="dpms_scim_wrong").status_code in (401, 429)
        assert scim_org.client.get(f"/scim/v2/{hidden.key}/Users", headers=scim_org.headers(
            "dpms_scim_wrong")).status_code in (401, 429)
    assert _notes(app, "ada@acme.example") == [] and _notes(app, "gina@globex.example") == []
    assert _incidents(app) == []
    with app.app_context():  # still plain to see on the SCIM screen
        assert connection_health(db.session.get(Organisation, scim_org.org.id)).state == FAILING


def test_an_unreleased_organisation_is_never_told_of_failures(
    app: Flask, factory: Factory, add_activity: AddActivity
) -> None:
    org = factory.org("Globex", released=False)
    factory.it_admin(org, "gina@globex.example")
    assert _record(app, add_activity, org, 500, times=5) == 0
    assert _notes(app, "gina@globex.example") == [] and _incidents(app) == []


def test_admins_of_other_organisations_are_not_told(
    app: Flask, scim_org: ScimOrg, factory: Factory, add_activity: AddActivity
) -> None:
    factory.it_admin(factory.org("Globex"), "gina@globex.example")
    factory.it_admin(scim_org.org, "ada@acme.example")
    assert _record(app, add_activity, scim_org.org, 500, times=3) == 1
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
    assert (note.organisation_id, note.permission) == (org.id, IAM_MANAGE)
    assert _notes(app, "max@globex.example") == []
