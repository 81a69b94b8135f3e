"""Connection health is derived from the activity log and the token, at a given moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask

from portal.extensions import db
from portal.models import Organisation
from portal.services.scim_health import (
    FAILING,
    HEALTHY,
    NONE,
    ROTATED,
    Health,
    connection_health,
    failing_threshold,
)
from tests.activity.conftest import AddActivity, ScimOrg, backdate_token

NOW = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


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
