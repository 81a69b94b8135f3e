"""Connection health of an organisation's SCIM endpoint, from its provisioning activity.

All thresholds live here. States, in the order they are checked:
- none:    no request has reached the endpoint yet;
- rotated: the current token was issued after the last successful request, so the
           IdP has not used it yet (expected right after a rotation);
- failing: the latest request failed, and so did at least FAILING_MIN_FAILURES and
           FAILING_MIN_SHARE of the last HEALTH_WINDOW requests (all of them, if fewer);
- healthy: otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation, ProvisioningActivity, utcnow
from portal.services import provisioning_activity, scim_tokens

HEALTH_WINDOW = 20
FAILING_MIN_FAILURES = 3
FAILING_MIN_SHARE = 0.25
FAILED_FROM_STATUS = 400

NONE, HEALTHY, FAILING, ROTATED = "none", "healthy", "failing", "rotated"
BADGES = {NONE: ("No requests", "neutral"), HEALTHY: ("Healthy", "ok"),
          FAILING: ("Failing", "danger"), ROTATED: ("Token rotated", "warn")}

REASONS = {401: "invalid token", 403: "access refused", 404: "unknown resource",
           405: "method not allowed", 409: "conflict", 413: "request too large",
           429: "too many requests"}


@dataclass(frozen=True)
class Health:
    """The connection's state, the badge to show and the one line that explains it."""

    state: str
    line: str
    since: datetime | None = None  # for failing: when the current failing streak began
    failures: int = 0
    window: int = 0

    @property
    def label(self) -> str:
        return BADGES[self.state][0]

    @property
    def badge(self) -> str:
        return BADGES[self.state][1]


def failure_reason(status: int, scim_type: str | None) -> str:
    """Return a short reason for a failed request, in words."""
    if status >= 500:
        return "server error"
    if status in REASONS:
        return REASONS[status]
    return f"invalid request ({scim_type})" if scim_type else "invalid request"


def ago(then: datetime, now: datetime) -> str:
    """Return how long ago, in the rough words a person would use."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"


def clock(moment: datetime, now: datetime) -> str:
    """Return a time of day, with the date when it is not today (UTC)."""
    if moment.date() == now.date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%d %b %H:%M UTC").lstrip("0")


def _streak_start(org: Organisation, last_ok: ProvisioningActivity | None) -> datetime | None:
    """Return when the run of failures since the last successful request began."""
    query = select(ProvisioningActivity.time).where(
        ProvisioningActivity.organisation_id == org.id,
        ProvisioningActivity.status >= FAILED_FROM_STATUS,
    )
    if last_ok is not None:
        query = query.where(ProvisioningActivity.time >= last_ok.time,
                            ProvisioningActivity.id > last_ok.id)
    return db.session.scalar(query.order_by(ProvisioningActivity.time, ProvisioningActivity.id)
                             .limit(1))


def failing_threshold(window: int) -> int:
    """Return how many of the last `window` requests must fail for the connection to be failing."""
    return min(window, max(FAILING_MIN_FAILURES, math.ceil(FAILING_MIN_SHARE * window)))


def connection_health(org: Organisation, now: datetime | None = None) -> Health:
    """Return the organisation's SCIM connection health at `now`."""
    now = now or utcnow()
    recent = list(db.session.scalars(
        select(ProvisioningActivity)
        .where(ProvisioningActivity.organisation_id == org.id)
        .order_by(ProvisioningActivity.time.desc(), ProvisioningActivity.id.desc())
        .limit(HEALTH_WINDOW)
    ))
    if not recent:
        return Health(NONE, "No requests received yet")
    latest = recent[0]
    last_ok = provisioning_activity.last_request(org, successful=True)
    token = scim_tokens.active_token(org)
    if last_ok is not None and token is not None and token.created_at > last_ok.time:
        return Health(ROTATED, "Token rotated — waiting for the IdP to use the new token")
    failures = sum(1 for r in recent if r.status >= FAILED_FROM_STATUS)
    if latest.status >= FAILED_FROM_STATUS and failures >= failing_threshold(len(recent)):
        since = _streak_start(org, last_ok) or latest.time
        reason = failure_reason(latest.status, latest.scim_type)
        counted = (f"{failures} of the last {len(recent)} requests failed" if len(recent) > 1
                   else "the only request so far failed")
        return Health(FAILING, f"Failing — {counted}: {reason} since {clock(since, now)}",
                      since=since, failures=failures, window=len(recent))
    client = f" ({latest.client[:60]})" if latest.client else ""
    return Health(HEALTHY, f"Healthy — last request {ago(latest.time, now)}{client}",
                  failures=failures, window=len(recent))

