"""Telling an organisation's IAM administrators about SCIM: failures and the release.

(Token rotations are announced by portal.services.scim_setup. A request that still
presents a replaced token is no failure of the IdP's setup by this rule — its token is
not valid — but it is the one invalid token worth an alarm: the IdP was not updated after
a rotation, or someone holds a leaked token. `replaced_token_in_use` says so once per
replaced token, with an audit event.)

What counts as broken provisioning: a request that carried the organisation's valid
token and failed by `scim_health.is_failure`, the rule the health badge uses — a server
error (5xx) or a refusal that means the IdP's setup is wrong (400, 403, 405, 413).
Ordinary outcomes are not failures: a 404 (an IdP checks whether a user exists, or
deletes one already gone), a 409 uniqueness conflict, a 412. A request without a valid
token never counts here: anyone who knows the URL can send one, so it shows in the
activity log and the health badge but never notifies anybody.

An incident opens, and the IAM administrators are told once, when the latest request
broke provisioning and so did at least `scim_health.failing_threshold` of the last
HEALTH_WINDOW authenticated requests. It stays open however many failures and
successes follow, until the organisation recovers: RECOVERY_RUN authenticated requests
in a row without such a failure. Recovery is noticed at the next failure (nothing runs
on a successful request), which then counts towards a new incident. While an incident
stays open and failing, an administrator is reminded once REMIND_AFTER has passed since
the last announcement, unless the earlier notice is still unread.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    Account,
    AuditEvent,
    Notification,
    Organisation,
    ProvisioningActivity,
    ScimIncident,
    ScimToken,
    utcnow,
)
from portal.permissions import IAM_MANAGE
from portal.security import serialise_writes
from portal.services import audit, notifications, roles, scim_health
from portal.services.scim_tokens import ReplacedToken

RECOVERY_RUN = scim_health.HEALTH_WINDOW
REMIND_AFTER = timedelta(hours=24)


def breaks_provisioning(status: int, token_valid: bool) -> bool:
    """Return whether a SCIM response means the organisation's provisioning is broken."""
    # The badge's rule (scim_health.is_failure), for requests with the valid token only.
    return token_valid and scim_health.is_failure(status, token_valid)


def iam_admins(org: Organisation) -> list[Account]:
    """Return the accounts that hold the IAM permission in the organisation right now."""
    return [m.account for m in roles.members_with_permission(org.id, IAM_MANAGE)]


def _link(endpoint: str, **values: Any) -> str:
    """Return the path of a portal page, also outside a request (command line)."""
    if has_request_context():
        return url_for(endpoint, **values)
    return current_app.url_map.bind("localhost").build(endpoint, values)


def _tell_admins(org: Organisation, message: str, link: str, dedupe_key: str,
                 skip: set[int] | None = None) -> int:
    """Notify every IAM admin once per dedupe key; return how many were notified."""
    sent = 0
    for account in iam_admins(org):
        if skip and account.id in skip:
            continue
        try:
            # A concurrent request may announce the same incident: the unique
            # (account, dedupe key) index decides, and the loser's insert is dropped.
            with db.session.begin_nested():
                if notifications.notify(account, message, organisation=org, link=link,
                                        dedupe_key=dedupe_key, permission=IAM_MANAGE):
                    sent += 1
        except IntegrityError:
            continue
    return sent


def _authenticated(org: Organisation) -> ColumnElement[bool]:
    return and_(ProvisioningActivity.organisation_id == org.id,
                ProvisioningActivity.token_valid.is_(True))


def _recovered_since(org: Organisation, incident: ScimIncident, latest_id: int) -> bool:
    """Return whether RECOVERY_RUN good requests came between the incident's last failure and now."""
    good = db.session.scalar(
        select(func.count()).select_from(ProvisioningActivity)
        .where(_authenticated(org), ProvisioningActivity.id > incident.last_failure_id,
               ProvisioningActivity.id < latest_id, ~scim_health.failure_clause()))
    return (good or 0) >= RECOVERY_RUN


def _announce(org: Organisation, incident: ScimIncident, failures: int, window: int,
              latest: ProvisioningActivity, *, reminder: bool) -> int:
    """Tell the IAM admins about the incident, once per announcement."""
    prefix = f"scim-failing:{org.id}:{incident.id}:"
    unread = set(db.session.scalars(select(Notification.account_id).where(
        Notification.dedupe_key.startswith(prefix, autoescape=True),
        Notification.read_at.is_(None))))
    reason = scim_health.failure_reason(latest.status, latest.scim_type)
    verb = "is still failing" if reminder else "is failing"
    return _tell_admins(
        org,
        f"SCIM provisioning for {org.name} {verb}: {failures} of the last {window} "
        f"authenticated requests failed ({reason}).",
        _link("iam.scim_activity", status="errors"),
        f"{prefix}{incident.announced_at:%Y%m%dT%H%M%S}",
        skip=unread,
    )


def notify_if_failing(org: Organisation) -> int:
    """Open and announce an incident once provisioning is failing; return notices sent."""
    if not org.scim_released:
        return 0
    recent = list(db.session.scalars(
        select(ProvisioningActivity).where(_authenticated(org))
        .order_by(ProvisioningActivity.time.desc(), ProvisioningActivity.id.desc())
        .limit(scim_health.HEALTH_WINDOW)))
    if not recent or not breaks_provisioning(recent[0].status, True):
        return 0
    latest = recent[0]
    failures = sum(1 for r in recent if breaks_provisioning(r.status, True))
    failing = failures >= scim_health.failing_threshold(len(recent))
    incident = db.session.scalar(select(ScimIncident).where(
        ScimIncident.organisation_id == org.id, ScimIncident.closed_at.is_(None)))
    if incident is not None and _recovered_since(org, incident, latest.id):
        incident.closed_at = utcnow()
        db.session.flush()
        incident = None
    if incident is not None:
        incident.last_failure_id = max(incident.last_failure_id, latest.id)
        if not failing or utcnow() - incident.announced_at < REMIND_AFTER:
            return 0
        incident.announced_at = utcnow()
        return _announce(org, incident, failures, len(recent), latest, reminder=True)
    if not failing:
        return 0
    try:
        with db.session.begin_nested():  # one open incident per organisation (partial index)
            incident = ScimIncident(organisation_id=org.id, opened_at=utcnow(),
                                    announced_at=utcnow(), last_failure_id=latest.id)
            db.session.add(incident)
    except IntegrityError:
        return 0  # a concurrent request opened it and announces it
    return _announce(org, incident, failures, len(recent), latest, reminder=False)


def scim_released(org: Organisation, marker: str) -> int:
    """Tell the organisation's IAM administrators that SCIM is now available to them."""
    return _tell_admins(
        org,
        f"SCIM provisioning is now available for {org.name}: connect your identity provider.",
        _link("iam.scim"),
        f"scim-released:{org.id}:{marker}",
    )


REPLACED_TOKEN_USED = "scim.replaced_token_used"


def replaced_token_in_use(token: ReplacedToken, actor: audit.Actor, client: str | None,
                          address: str | None) -> int:
    """Record and announce, once per replaced token, that a request still presents it.

    IdPs send bursts of requests in parallel: the token's row is locked (SQLite: the one
    write lock) before looking for an earlier announcement, so two workers never both
    record it.
    """
    serialise_writes()  # first: SQLite takes its write lock at BEGIN, not in a savepoint
    with db.session.begin_nested():  # a failure leaves the request's own writes intact
        locked = db.session.scalar(select(ScimToken.id).where(ScimToken.id == token.id)
                                   .with_for_update())
        org = db.session.get(Organisation, token.organisation_id)
        if locked is None or org is None:
            return 0
        already = db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.organisation_id == org.id, AuditEvent.action == REPLACED_TOKEN_USED,
            AuditEvent.target_id == str(token.id)).limit(1))
        if already is not None:
            return 0  # said once: every later request shows in the activity log
        sender = f'client "{client[:60]}"' if client else "an unnamed client"  # the User-Agent
        audit.record(actor, REPLACED_TOKEN_USED, org, target_type="scim_token",
                     target_id=str(token.id), target_label=token.hint,
                     details={"replaced_at": token.replaced_on})
        return _tell_admins(
            org,
            f"A SCIM request to {org.name} used the token {token.hint}, replaced on "
            f"{token.replaced_on} ({sender}, from {address or 'an unknown address'}), and was "
            "refused. If your identity provider still has that token, give it the current one "
            "(or generate a new one on the SCIM page). If not, the old token was copied "
            "somewhere: find out where. It no longer works.",
            _link("iam.scim"),
            f"scim-replaced-token:{token.id}",
        )
