"""Connection health of an organisation's SCIM endpoint, from its provisioning activity.

All thresholds live here. States, in the order they are checked:
- none:    no request has reached the endpoint yet;
- rotated: the current token was issued after the last successful request, so the
           IdP has not used it yet (expected right after a rotation);
- failing: the latest request failed, and so did at least FAILING_MIN_FAILURES and
           FAILING_MIN_SHARE of the last HEALTH_WINDOW requests (all of them, if fewer);
- intermittent: the latest request succeeded, but as many requests failed after the
           window's first success (so the connection worked, and requests still failed:
           some of the IdP's requests are wrong, not its token or URL);
- healthy: otherwise, including a connection that failed and then recovered (failures
           only before the window's first success).

What counts as a failed request is `is_failure`, the one rule the incident notices
(portal.services.scim_notices) use too: a server error, a refusal that means the IdP's
setup is wrong (400, 403, 405, 413), or a request refused for want of a valid token (401,
or 429 once too many such requests came). Ordinary traffic is not a failure: a 404 (an IdP
looks up a user, or deletes one already gone), a 409 uniqueness conflict, a 412. The
notices further count only requests with the organisation's valid token (anyone who knows
the URL can send a bad one); the badge shows those too, so a wrong token is plain to see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select

from portal.extensions import db
from portal.models import Organisation, ProvisioningActivity, utcnow
from portal.services import scim_tokens

HEALTH_WINDOW = 20
FAILING_MIN_FAILURES = 3
FAILING_MIN_SHARE = 0.25
SERVER_ERROR = 500
BREAKING_CLIENT_ERRORS = (400, 403, 405, 413)
TOKEN_REFUSED = (401, 429)  # without a valid token: refused, or refused after too many tries

NONE, HEALTHY, FAILING, ROTATED = "none", "healthy", "failing", "rotated"
INTERMITTENT = "intermittent"
BADGES = {NONE: ("No requests", "neutral"), HEALTHY: ("Healthy", "ok"),
          FAILING: ("Failing", "danger"), ROTATED: ("Token rotated", "warn"),
          INTERMITTENT: ("Intermittent failures", "warn")}

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


def is_failure(status: int, token_valid: bool) -> bool:
    """Return whether a SCIM answer counts as a failure (the badge's and the notices' rule)."""
    if not token_valid and status in TOKEN_REFUSED:
        return True
    return status >= SERVER_ERROR or status in BREAKING_CLIENT_ERRORS


def failure_clause() -> ColumnElement[bool]:
    """Return `is_failure` as SQL over provisioning activity rows (kept beside it, and tested)."""
    row = ProvisioningActivity
    return or_(row.status >= SERVER_ERROR, row.status.in_(BREAKING_CLIENT_ERRORS),
               and_(row.token_valid.is_(False), row.status.in_(TOKEN_REFUSED)))


def failure_reason(status: int, scim_type: str | None, detail: str | None = None) -> str:
    """Return a short reason for a failed request, in words."""
    if status >= 500:
        return "server error"
    if scim_tokens.refused_as_replaced(status, detail):
        return "replaced token"
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
        ProvisioningActivity.organisation_id == org.id, failure_clause())
    if last_ok is not None:
        query = query.where(ProvisioningActivity.time >= last_ok.time,
                            ProvisioningActivity.id > last_ok.id)
    return db.session.scalar(query.order_by(ProvisioningActivity.time, ProvisioningActivity.id)
                             .limit(1))


def _last_good(org: Organisation) -> ProvisioningActivity | None:
    """Return the latest request that used the valid token and did not fail (a 404 counts)."""
    return db.session.scalar(
        select(ProvisioningActivity)
        .where(ProvisioningActivity.organisation_id == org.id,
               ProvisioningActivity.token_valid.is_(True), ~failure_clause())
        .order_by(ProvisioningActivity.time.desc(), ProvisioningActivity.id.desc()).limit(1))


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
    last_ok = _last_good(org)
    token = scim_tokens.active_token(org)
    if last_ok is not None and token is not None and token.created_at > last_ok.time:
        # The latest refusal of the replaced token (once rate-limited, 429s follow it).
        old_token = next((r for r in recent if r.time >= token.created_at
                          and scim_tokens.refused_as_replaced(r.status, r.detail)), None)
        if old_token is not None:
            return Health(ROTATED, "Token rotated — requests still use the replaced token "
                                   f"(last refused {clock(old_token.time, now)}): give the "
                                   "IdP the current one")
        return Health(ROTATED, "Token rotated — waiting for the IdP to use the new token")
    failures = sum(1 for r in recent if is_failure(r.status, r.token_valid))
    if is_failure(latest.status, latest.token_valid) and \
            failures >= failing_threshold(len(recent)):
        since = _streak_start(org, last_ok) or latest.time
        reason = failure_reason(latest.status, latest.scim_type, latest.detail)
        counted = (f"{failures} of the last {len(recent)} requests failed" if len(recent) > 1
                   else "the only request so far failed")
        return Health(FAILING, f"Failing — {counted}: {reason} since {clock(since, now)}",
                      since=since, failures=failures, window=len(recent))
    oldest_first = recent[::-1]
    first_ok = next((i for i, r in enumerate(oldest_first)
                     if not is_failure(r.status, r.token_valid)), len(recent))
    after_ok = [r for r in oldest_first[first_ok:] if is_failure(r.status, r.token_valid)]
    if len(after_ok) >= failing_threshold(len(recent)):
        last_failed = after_ok[-1]
        reason = failure_reason(last_failed.status, last_failed.scim_type, last_failed.detail)
        return Health(INTERMITTENT, f"Intermittent failures — {failures} of the last "
                                    f"{len(recent)} requests failed (the latest at "
                                    f"{clock(last_failed.time, now)}: {reason}); the last "
                                    f"request succeeded {ago(latest.time, now)}",
                      since=after_ok[0].time, failures=failures, window=len(recent))
    client = f" ({latest.client[:60]})" if latest.client else ""
    return Health(HEALTHY, f"Healthy — last request {ago(latest.time, now)}{client}",
                  failures=failures, window=len(recent))

