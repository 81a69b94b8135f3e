"""Time-boxed access: a role given until an instant, for a stated reason, ending by itself.

A grant counts in effective roles only while `until` is in the future and it has not
been ended (portal.services.roles), so access stops at the expiry instant on the very
next request without any job. `expire_grants()` is the tidy-up that records the
ending and writes its audit event; it is safe to run as often as you like.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask import current_app, has_app_context, has_request_context, url_for
from sqlalchemy import CursorResult, Update, select, update

from portal import clock
from portal.extensions import db
from portal.models import (
    GRANT_ENDED_EARLY,
    GRANT_EXPIRED,
    Membership,
    Role,
    RoleGrant,
)
from portal.permissions import IAM_MANAGE, PERMISSION_LABELS
from portal.services import audit, notifications, roles
from portal.services.errors import ServiceError

DEFAULT_MAX_GRANT_DAYS = 30
MAX_REASON = 300
EXPIRY_ACTOR = audit.Actor(label="automatic expiry")
# Audit actions
GRANTED, ENDED_EARLY, EXPIRED = ("member.role_granted_until", "member.role_grant_ended",
                                 "member.role_grant_expired")
ACTIONS = (GRANTED, ENDED_EARLY, EXPIRED)


def max_grant_days() -> int:
    """Return the longest a grant may last, in days (config MAX_GRANT_DAYS, default 30)."""
    if not has_app_context():
        return DEFAULT_MAX_GRANT_DAYS
    return int(current_app.config.get("MAX_GRANT_DAYS", DEFAULT_MAX_GRANT_DAYS))


def _details(grant: RoleGrant, **extra: str | None) -> dict[str, str | None]:
    """Return what every audit event about a grant records: role, reason, until, who granted."""
    return {"role": grant.role.name, "reason": grant.reason,
            "until": grant.until.astimezone(UTC).isoformat(),
            "granted_by": grant.granted_by_label, "grant_id": str(grant.id), **extra}


def _record(actor: audit.Actor, action: str, grant: RoleGrant, **extra: str | None) -> None:
    member = grant.membership
    audit.record(actor, action, member.organisation, target_type="member",
                 target_id=member.public_id, target_label=member.user_name,
                 details=_details(grant, **extra))


def _check_until(until: datetime, now: datetime) -> None:
    if until.tzinfo is None:
        raise ValueError("until must be an aware datetime")
    if until <= now:
        raise ServiceError("Choose an end in the future: that date and time has already passed.")
    days = max_grant_days()
    if until - now > timedelta(days=days):
        raise ServiceError(f"A time-boxed grant can last at most {days} days. Choose an earlier "
                           "end, or give the role by hand if it is meant to stay.")


def grant_role_until(actor_membership: Membership, member: Membership, role: Role,
                     until: datetime, reason: str) -> RoleGrant:
    """Give the member a role until an instant, for a reason; audit it and tell IAM admins."""
    now = clock.now()
    reason = " ".join((reason or "").split())
    if not reason:
        raise ServiceError("Give a reason (for example “Q4 ISO 27001 audit”): it goes into "
                           "the audit log with the grant.")
    if len(reason) > MAX_REASON:
        raise ServiceError(f"Keep the reason to {MAX_REASON} characters.")
    _check_until(until, now)
    if actor_membership.organisation_id != member.organisation_id:
        raise ServiceError("That person is not a member of this organisation.")
    if not member.active or member.scim_deleted_at is not None:
        raise ServiceError(f"{member.label} is not active here, so a grant would give them "
                           "nothing. Nothing was changed.")
    # Only what the granter holds by hand or through a group may be handed on.
    roles.ensure_may_grant(role, roles.permanent_permissions(actor_membership))
    if any(source.role.id == role.id and not source.temporary
           for source in roles.role_grants_for([member.id])[member.id]):
        raise ServiceError(f"{member.label} already holds {role.name} without an end date, so "
                           "a time-boxed grant would change nothing.")
    granter = actor_membership.account
    grant = RoleGrant(organisation_id=member.organisation_id, membership_id=member.id,
                      role_id=role.id, until=until.astimezone(UTC), reason=reason,
                      granted_by_id=granter.id, granted_by_label=granter.email)
    db.session.add(grant)
    db.session.flush()
    db.session.refresh(grant, ["role", "membership"])
    _record(audit.Actor.of(granter), GRANTED, grant)
    if IAM_MANAGE in (role.permissions or []):
        _notify_iam_grant(grant)
    return grant


def _notify_iam_grant(grant: RoleGrant) -> None:
    """Tell every other member who can manage IAM, once per grant (not granter nor grantee)."""
    member = grant.membership
    link = url_for("people.detail", public_id=member.public_id) if has_request_context() else None
    message = (f"{grant.granted_by_label} gave {member.label} the role {grant.role.name} "
               f"({PERMISSION_LABELS[IAM_MANAGE]}) until {grant.until:%Y-%m-%d %H:%M} UTC. "
               f"Reason: {grant.reason}")
    for holder in roles.members_with_permission(member.organisation_id, IAM_MANAGE):
        if holder.account_id in (grant.granted_by_id, member.account_id):
            continue
        notifications.notify(holder.account, message, organisation=member.organisation,
                             link=link, dedupe_key=f"role-grant:{grant.id}",
                             permission=IAM_MANAGE)


def get_grant(member: Membership, grant_id: int) -> RoleGrant | None:
    """Return one of the member's grants (in the member's organisation), if any."""
    return db.session.scalar(select(RoleGrant).where(
        RoleGrant.id == grant_id, RoleGrant.membership_id == member.id,
        RoleGrant.organisation_id == member.organisation_id))


def _changed_rows(statement: Update) -> int:
    """Run a conditional UPDATE and return how many rows it changed."""
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount


def end_grant_early(actor: audit.Actor, grant: RoleGrant) -> bool:
    """End a grant now; return False if it had already ended or run out."""
    now = clock.now()
    # One conditional UPDATE, so two people ending it (or the tidy-up) cannot both record it.
    ended = _changed_rows(
        update(RoleGrant)
        .where(RoleGrant.id == grant.id, roles.active_grant(now))
        .values(ended_at=now, ended_by_id=actor.account_id, ended_by_label=actor.label,
                end_reason=GRANT_ENDED_EARLY))
    db.session.refresh(grant)
    if not ended:
        return False
    _record(actor, ENDED_EARLY, grant, ended_by=actor.label,
            ended_at=now.isoformat())
    return True


def expire_grants() -> int:
    """Record every grant that has run out as expired, with its audit event; return how many."""
    now = clock.now()
    due = db.session.scalars(
        select(RoleGrant).where(RoleGrant.ended_at.is_(None), RoleGrant.until <= now)
        .order_by(RoleGrant.id)
    ).all()
    count = 0
    for grant in due:
        tidied = _changed_rows(
            update(RoleGrant)
            .where(RoleGrant.id == grant.id, RoleGrant.ended_at.is_(None))
            .values(ended_at=RoleGrant.until, end_reason=GRANT_EXPIRED))
        if tidied:
            db.session.refresh(grant)
            _record(EXPIRY_ACTOR, EXPIRED, grant,
                    ended_at=grant.until.astimezone(UTC).isoformat())
            count += 1
    return count


def expires_in_words(until: datetime, now: datetime | None = None) -> str:
    """Say how long a grant has left, e.g. "expires in 5 h 30 min", "expires in 33 h".

    Exact to the minute (rounded up) below 10 hours, so an 8-hour grant given a moment ago
    reads "8 h", not "7 h"; to the nearest hour below 2 days, to the nearest day beyond.
    The page shows the exact end time beside it.
    """
    seconds = (until - (now or clock.now())).total_seconds()
    if seconds <= 0:
        return "expired"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"expires in {minutes} min"
    if minutes < 10 * 60:
        hours, rest = divmod(minutes, 60)
        return f"expires in {hours} h {rest} min" if rest else f"expires in {hours} h"
    hours = round(seconds / 3600)
    if hours < 48:
        return f"expires in {hours} h"
    return f"expires in {round(seconds / 86400)} days"
