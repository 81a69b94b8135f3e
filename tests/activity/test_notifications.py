"""IAM administrators are told once per provisioning incident, and when SCIM is released."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, AuditEvent, Notification, Organisation, ScimIncident
from portal.permissions import ADMINISTRATOR, IAM_MANAGE
from portal.services import audit, organisations, scim_notices
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


def test_a_replaced_token_still_in_use_is_refused_with_the_reason_and_announced_once(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    """After a rotation, the IdP (or whoever holds the old token) is told why, and the IAM
    admins are warned once per replaced token, with an audit event."""
    from portal.services import scim_tokens

    factory.it_admin(scim_org.org, "ada@acme.example")
    factory.member(scim_org.org, "max@acme.example")
    old = scim_org.token
    with app.app_context():
        org = db.session.get(Organisation, scim_org.org.id)
        new = scim_tokens.issue_token(org, CLI_ACTOR).plaintext
        db.session.commit()
    refused = [scim_org.call("GET", "/Users", token=old) for _ in range(3)]  # Okta's agent
    assert [r.status_code for r in refused] == [401, 401, 401]
    detail = refused[0].get_json(force=True)["detail"]
    assert detail.startswith("Authentication failed: this SCIM token was replaced on ")
    assert "enter the organisation's current scim token" in detail.lower()
    assert refused[0].headers["WWW-Authenticate"].startswith("Bearer")
    [ada] = _notes(app, "ada@acme.example")
    assert _notes(app, "max@acme.example") == []  # no IAM permission
    assert ada.message.startswith("A SCIM request to Acme Corp used the token dpms_scim_")
    assert '(client "Okta SCIM Client 1.0.0", from 127.0.0.1), and was refused.' \
        in ada.message
    assert ada.link == "/settings/iam/scim"
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "scim.replaced_token_used")))
        assert [(e.organisation_id, e.actor_label, e.ip_address) for e in events] == [
            (scim_org.org.id, "SCIM: Okta SCIM Client 1.0.0", "127.0.0.1")]
        assert old not in str(events[0].details) and old not in ada.message
    assert _incidents(app) == []  # a refused token is no failure of the IdP's setup
    # The current token works; an unknown token gets the plain refusal and no notice.
    assert scim_org.call("GET", "/Users", token=new).status_code == 200
    unknown = scim_org.call("GET", "/Users", token="dpms_scim_never-issued")
    assert unknown.status_code == 401
    assert "was replaced" not in unknown.get_json(force=True)["detail"]
    assert len(_notes(app, "ada@acme.example")) == 1


def test_a_replaced_token_of_another_organisation_gets_the_plain_refusal(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    from portal.services import scim_tokens

    factory.it_admin(scim_org.org, "ada@acme.example")
    globex = factory.org("Globex")
    with app.app_context():
        first = scim_tokens.issue_token(db.session.get(Organisation, globex.id), CLI_ACTOR)
        db.session.commit()
        scim_tokens.issue_token(db.session.get(Organisation, globex.id), CLI_ACTOR)
        db.session.commit()
    response = scim_org.call("GET", "/Users", token=first.plaintext)  # Acme's URL
    assert response.status_code == 401
    assert "was replaced" not in response.get_json(force=True)["detail"]
    assert _notes(app, "ada@acme.example") == []
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.action == "scim.replaced_token_used")) is None


def test_a_replaced_token_is_announced_once_when_workers_race(
    app: Flask, scim_org: ScimOrg, factory: Factory
) -> None:
    """Two requests with the replaced token at once (an IdP's burst): one audit event."""
    import threading

    from portal.services import scim_tokens

    factory.it_admin(scim_org.org, "ada@acme.example")
    with app.app_context():
        scim_tokens.issue_token(db.session.get(Organisation, scim_org.org.id), CLI_ACTOR)
        db.session.commit()
        replaced = scim_tokens.replaced_token(scim_org.org.key, scim_org.token)
        assert replaced is not None
    start = threading.Barrier(2)
    sent: list[int] = []
    errors: list[BaseException] = []

    def announce() -> None:
        try:
            with app.test_request_context("/scim/v2/x/Users"):
                start.wait()
                sent.append(scim_notices.replaced_token_in_use(
                    replaced, audit.Actor("SCIM: Okta"), "Okta", "127.0.0.1"))
                db.session.commit()
                db.session.remove()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=announce) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(sent) == [0, 1]
    with app.app_context():
        assert len(db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "scim.replaced_token_used")).all()) == 1
    assert len(_notes(app, "ada@acme.example")) == 1


def test_a_replaced_tokens_warning_that_cannot_be_written_leaves_the_401_and_its_record(
    app: Flask, scim_org: ScimOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from portal.services import scim_tokens
    from tests.activity.conftest import activity_rows

    with app.app_context():
        scim_tokens.issue_token(db.session.get(Organisation, scim_org.org.id), CLI_ACTOR)
        db.session.commit()

    def locked(*args: object) -> int:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(scim_notices, "replaced_token_in_use", locked)
    response = scim_org.call("GET", "/Users")  # the replaced token
    assert response.status_code == 401
    assert "was replaced" in response.get_json(force=True)["detail"]
    assert [(r.status, r.token_valid) for r in activity_rows(app)][-1] == (401, False)
