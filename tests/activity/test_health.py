"""Connection health is derived from the activity log and the token, at a given moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Organisation, ProvisioningActivity, ScimIncident
from portal.services.scim_health import (
    FAILING,
    HEALTH_WINDOW,
    HEALTHY,
    NONE,
    ROTATED,
    Health,
    connection_health,
    failing_threshold,
    failure_clause,
    failure_reason,
    is_failure,
)
from portal.services.scim_notices import breaks_provisioning
from tests.activity.conftest import AddActivity, ScimOrg, backdate_token

NOW = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _health(app: Flask, org: Organisation, now: datetime = NOW) -> Health:
    with app.app_context():
        return connection_health(db.session.get(Organisation, org.id), now)


def _at(minute: int, hour: int = 10) -> datetime:
    return NOW.replace(hour=hour, minute=minute)


def test_no_requests_yet(app: Flask, scim_org: ScimOrg) -> None:
    health = _health(app, scim_org.org)
    assert (health.state, health.line, health.badge) == (NONE, "No requests received yet",
                                                         "neutral")


def test_healthy_names_the_last_request_and_client(app: Flask, scim_org: ScimOrg,
                                                   add_activity: AddActivity) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    add_activity(scim_org.org, at=NOW - timedelta(hours=2), client="Other")
    add_activity(scim_org.org, at=NOW - timedelta(minutes=3), client="Okta SCIM Client")
    health = _health(app, scim_org.org)
    assert health.state == HEALTHY and health.badge == "ok"
    assert health.line == "Healthy — last request 3 min ago (Okta SCIM Client)"


def test_failing_counts_failures_and_says_since_when(app: Flask, scim_org: ScimOrg,
                                                     add_activity: AddActivity) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    for minute in range(30, 38):  # 8 successes, then 12 bad-token requests from 10:42
        add_activity(scim_org.org, at=_at(minute))
    for minute in range(42, 54):
        add_activity(scim_org.org, at=_at(minute), status=401)
    health = _health(app, scim_org.org)
    assert health.state == FAILING and health.badge == "danger"
    assert health.line == \
        "Failing — 12 of the last 20 requests failed: invalid token since 10:42 UTC"
    assert health.since == _at(42)


def test_failure_reason_comes_from_the_latest_failure(app: Flask, scim_org: ScimOrg,
                                                      add_activity: AddActivity) -> None:
    for minute in range(40, 45):
        add_activity(scim_org.org, at=_at(minute), status=500)
    add_activity(scim_org.org, at=_at(45), status=400, scim_type="invalidValue")
    assert "invalid request (invalidValue) since 10:40 UTC" in _health(app, scim_org.org).line


def test_streak_from_an_earlier_day_shows_the_date(app: Flask, scim_org: ScimOrg,
                                                   add_activity: AddActivity) -> None:
    add_activity(scim_org.org, at=NOW - timedelta(days=1, hours=2), status=401)
    add_activity(scim_org.org, at=NOW - timedelta(minutes=5), status=401)
    assert _health(app, scim_org.org).line.endswith("invalid token since 1 Mar 09:00 UTC")


def test_a_single_failure_among_successes_is_still_healthy(app: Flask, scim_org: ScimOrg,
                                                           add_activity: AddActivity) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    for minute in range(30, 49):
        add_activity(scim_org.org, at=_at(minute))
    add_activity(scim_org.org, at=_at(50), status=404)
    assert _health(app, scim_org.org).state == HEALTHY


def test_only_request_failing_is_failing(app: Flask, scim_org: ScimOrg,
                                         add_activity: AddActivity) -> None:
    add_activity(scim_org.org, at=_at(42), status=401)
    health = _health(app, scim_org.org)
    assert health.state == FAILING
    assert health.line == "Failing — the only request so far failed: invalid token since 10:42 UTC"


def test_success_after_failures_is_healthy_again(app: Flask, scim_org: ScimOrg,
                                                 add_activity: AddActivity) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    for minute in range(30, 40):
        add_activity(scim_org.org, at=_at(minute), status=401)
    add_activity(scim_org.org, at=_at(41))
    assert _health(app, scim_org.org).state == HEALTHY


def test_failing_streak_starts_after_the_last_success(app: Flask, scim_org: ScimOrg,
                                                      add_activity: AddActivity) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    add_activity(scim_org.org, at=_at(10), status=500)  # an earlier incident
    add_activity(scim_org.org, at=_at(20))
    for minute in range(30, 35):
        add_activity(scim_org.org, at=_at(minute), status=503)
    assert _health(app, scim_org.org).since == _at(30)


def test_token_issued_after_the_last_success_is_rotated(app: Flask, scim_org: ScimOrg,
                                                        add_activity: AddActivity) -> None:
    issued = backdate_token(app, scim_org.org, NOW - timedelta(minutes=10))
    add_activity(scim_org.org, at=issued - timedelta(minutes=5))
    for minutes in (4, 3, 2):  # the IdP still sends the old token
        add_activity(scim_org.org, at=issued + timedelta(minutes=10 - minutes), status=401)
    health = _health(app, scim_org.org, now=issued + timedelta(minutes=10))
    assert health.state == ROTATED and health.badge == "warn"
    assert health.line == "Token rotated — waiting for the IdP to use the new token"


def test_rotated_state_says_when_the_idp_still_sends_the_replaced_token(
    app: Flask, scim_org: ScimOrg
) -> None:
    from portal.services import scim_tokens
    from portal.services.audit import CLI_ACTOR

    assert scim_org.call("GET", "/Users").status_code == 200
    with app.app_context():
        scim_tokens.issue_token(db.session.get(Organisation, scim_org.org.id), CLI_ACTOR)
        db.session.commit()
    assert _health(app, scim_org.org).line == \
        "Token rotated — waiting for the IdP to use the new token"
    assert scim_org.call("GET", "/Users").status_code == 401  # the replaced token
    health = _health(app, scim_org.org)
    assert health.state == ROTATED and health.badge == "warn"
    assert health.line.startswith("Token rotated — requests still use the replaced token "
                                  "(last refused ")
    assert health.line.endswith("): give the IdP the current one")
    with app.app_context():
        from portal.services.scim_status import request_result

        latest = db.session.scalars(select(ProvisioningActivity).order_by(
            ProvisioningActivity.id.desc())).first()
        assert request_result(latest) == "Failed: replaced token (HTTP 401)"
        assert failure_reason(401, None, "Authentication failed: send the organisation's "
                                         "SCIM token") == "invalid token"
    # Rate-limited, the replaced token's requests get 429s: the line still says why.
    statuses = {scim_org.call("GET", "/Users").status_code for _ in range(25)}
    assert statuses == {401, 429}
    assert _health(app, scim_org.org).line.startswith(
        "Token rotated — requests still use the replaced token (last refused ")


def test_rotated_state_ends_with_the_first_success_using_the_new_token(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    issued = backdate_token(app, scim_org.org, NOW - timedelta(minutes=10))
    add_activity(scim_org.org, at=issued - timedelta(minutes=5))
    add_activity(scim_org.org, at=issued + timedelta(minutes=1))
    assert _health(app, scim_org.org, now=issued + timedelta(minutes=2)).state == HEALTHY


def test_failing_threshold_lives_in_one_place() -> None:
    assert [failing_threshold(n) for n in (1, 2, 3, 8, 20)] == [1, 2, 3, 3, 5]


def test_health_is_per_organisation(app: Flask, scim_org: ScimOrg, add_activity: AddActivity,
                                    factory) -> None:
    other = factory.org("Globex")
    add_activity(other, at=_at(42), status=401)
    assert _health(app, scim_org.org).state == NONE


def _failing_by_the_notices(app: Flask, org: Organisation) -> bool:
    """Return whether the incident notices would call the latest requests failing."""
    with app.app_context():
        recent = db.session.scalars(
            select(ProvisioningActivity).where(ProvisioningActivity.organisation_id == org.id)
            .order_by(ProvisioningActivity.id.desc()).limit(HEALTH_WINDOW)).all()
        failures = sum(breaks_provisioning(r.status, r.token_valid) for r in recent)
        return breaks_provisioning(recent[0].status, recent[0].token_valid) and \
            failures >= failing_threshold(len(recent))


@pytest.mark.parametrize("status", [404, 409, 412])
def test_lookups_and_conflicts_do_not_degrade_the_badge(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity, status: int
) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    add_activity(scim_org.org, at=_at(10))
    for minute in range(20, 40):  # a whole window of them
        add_activity(scim_org.org, at=_at(minute), status=status)
    health = _health(app, scim_org.org)
    assert health.state == HEALTHY and health.failures == 0 and health.window == HEALTH_WINDOW
    assert _failing_by_the_notices(app, scim_org.org) is False  # the notices agree


@pytest.mark.parametrize("status", [500, 503, 403, 400, 405, 413])
def test_server_errors_and_setup_refusals_still_degrade_the_badge(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity, status: int
) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    add_activity(scim_org.org, at=_at(10))
    for minute in range(20, 25):
        add_activity(scim_org.org, at=_at(minute), status=status)
    health = _health(app, scim_org.org)
    assert health.state == FAILING and (health.failures, health.window) == (5, 6)
    assert health.since == _at(20)
    assert _failing_by_the_notices(app, scim_org.org) is True  # the notices agree


def test_a_lookup_between_failures_ends_the_failing_streak(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    for minute in (10, 11, 12):
        add_activity(scim_org.org, at=_at(minute), status=500)
    add_activity(scim_org.org, at=_at(20), status=404)  # the connection worked here
    for minute in (30, 31):
        add_activity(scim_org.org, at=_at(minute), status=500)
    health = _health(app, scim_org.org)
    assert health.state == FAILING and health.since == _at(30) and health.failures == 5


def test_a_refused_token_fails_the_badge_even_once_rate_limited_but_notifies_nobody(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    for minute in range(30, 35):
        add_activity(scim_org.org, at=_at(minute), status=401)
    add_activity(scim_org.org, at=_at(36), status=429, token_valid=False)
    health = _health(app, scim_org.org)
    assert health.state == FAILING and health.failures == 6
    assert _failing_by_the_notices(app, scim_org.org) is False


def test_a_lookup_with_the_new_token_ends_the_rotated_state(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    issued = backdate_token(app, scim_org.org, NOW - timedelta(minutes=10))
    add_activity(scim_org.org, at=issued - timedelta(minutes=5))
    add_activity(scim_org.org, at=issued + timedelta(minutes=1), status=404)
    assert _health(app, scim_org.org, now=issued + timedelta(minutes=2)).state == HEALTHY


def test_the_badge_and_the_notices_share_one_rule_in_python_and_in_sql(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    statuses = [200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429,
                500, 501, 502, 503, 504, 599]
    for status in statuses:
        assert breaks_provisioning(status, True) == is_failure(status, True)
        assert breaks_provisioning(status, False) is False  # never for an unauthenticated one
        for token_valid in (True, False):
            add_activity(scim_org.org, status=status, token_valid=token_valid)
    with app.app_context():
        rows = db.session.execute(
            select(ProvisioningActivity.status, ProvisioningActivity.token_valid,
                   failure_clause()).where(ProvisioningActivity.organisation_id ==
                                           scim_org.org.id)).all()
    assert len(rows) == 2 * len(statuses)
    assert all(bool(in_sql) == is_failure(status, valid) for status, valid, in_sql in rows)
    assert {(s, v) for s, v, f in rows if f} == {
        *((s, v) for s in (400, 403, 405, 413, 500, 501, 502, 503, 504, 599)
          for v in (True, False)), (401, False), (429, False)}


def test_the_scim_screen_stays_healthy_through_real_lookups_and_conflicts_but_not_bad_filters(
    app: Flask, admin_client: FlaskClient, scim_org: ScimOrg
) -> None:
    user = {"schemas": [USER], "userName": "alice@acme.example"}
    statuses = [scim_org.call("GET", f"/Users/unknown-{i}").status_code for i in range(6)]
    statuses += [scim_org.call("POST", "/Users", json=user).status_code for _ in range(6)]
    assert statuses == [404] * 6 + [201] + [409] * 5
    page = admin_client.get("/settings/iam/scim").get_data(as_text=True)
    assert 'data-state="healthy"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ScimIncident)) == 0
    for _ in range(4):
        assert scim_org.call("GET", "/Users?filter=userName%20zz%20%22x%22").status_code == 400
    page = admin_client.get("/settings/iam/scim").get_data(as_text=True)
    assert 'data-state="failing"' in page and "invalid request (invalidFilter)" in page
    with app.app_context():  # the notices saw the same failure
        assert db.session.scalar(select(func.count()).select_from(ScimIncident)) == 1
    for _ in range(2):
        assert scim_org.call("GET", "/Users?filter=userName%20zz%20%22x%22").status_code == 400
    assert scim_org.call("GET", "/Users").status_code == 200  # one success does not hide them
    page = admin_client.get("/settings/iam/scim").get_data(as_text=True)
    assert 'data-state="intermittent"' in page and "Intermittent failures" in page
    assert "6 of the last 19 requests failed" in page


def test_failures_among_successes_are_intermittent_not_healthy(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    """The connection works, yet many requests fail: one success must not hide that."""
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    for minute in range(20, 40):
        add_activity(scim_org.org, at=_at(minute), client="Okta",
                     **({"status": 400, "scim_type": "invalidFilter"} if minute % 3 else {}))
    add_activity(scim_org.org, at=_at(41))
    health = _health(app, scim_org.org)
    assert (health.state, health.label, health.badge) == ("intermittent",
                                                          "Intermittent failures", "warn")
    assert health.line == ("Intermittent failures — 12 of the last 20 requests failed (the "
                           "latest at 10:38 UTC: invalid request (invalidFilter)); the last "
                           "request succeeded 19 min ago")
    assert (health.failures, health.window) == (12, 20)


def test_a_connection_that_failed_and_recovered_is_healthy_not_intermittent(
    app: Flask, scim_org: ScimOrg, add_activity: AddActivity
) -> None:
    backdate_token(app, scim_org.org, NOW - timedelta(days=30))
    for minute in range(20, 35):
        add_activity(scim_org.org, at=_at(minute), status=500)
    for minute in range(35, 40):
        add_activity(scim_org.org, at=_at(minute))
    assert _health(app, scim_org.org).state == HEALTHY
    add_activity(scim_org.org, at=_at(40), status=500)  # one failure after it worked: still fine
    add_activity(scim_org.org, at=_at(41))
    assert _health(app, scim_org.org).state == HEALTHY
