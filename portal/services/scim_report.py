"""The SCIM status report: audit evidence that automated provisioning is in place and works."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.models import (
    SOURCE_SCIM,
    AuditEvent,
    Group,
    Membership,
    Organisation,
    ProvisioningActivity,
    utcnow,
)
from portal.services import organisations, provisioning_activity, scim_health, scim_tokens
from portal.services.scim_status import rollout_pending_line

WINDOW_DAYS = 90
MAX_LISTED = 500
# A removal is credited to an IdP request only if the request started this shortly before
# it (it is normally the same request, so milliseconds); otherwise someone else removed access.
MATCH_TOLERANCE = timedelta(minutes=5)
# The audit actions that remove access (scim_users.set_active / delete_user) and restore it.
DEACTIVATED, DELETED, REACTIVATED = "member.deactivated", "member.deprovisioned", \
    "member.reactivated"


@dataclass(frozen=True)
class Deprovisioning:
    """One removal of a person's access (from the audit trail), and how long it took."""

    user_name: str
    member_id: str
    kind: str  # "deactivated" or "deleted"
    removed_at: datetime
    removed_by: str  # the audit actor: "SCIM: <client>", an administrator's email, ...
    requested_at: datetime | None  # start of the IdP's SCIM request, if one did it
    client: str | None
    restored_at: datetime | None  # when access was given back later, if it was

    @property
    def seconds(self) -> float | None:
        """Return the time from the IdP's request to access removal, in seconds."""
        if self.requested_at is None:
            return None
        return round(max(0.0, (self.removed_at - self.requested_at).total_seconds()), 3)


@dataclass(frozen=True)
class DeprovisioningTotals:
    """The whole window's figures (the list may stop at MAX_LISTED)."""

    removals: int = 0
    people: int = 0
    restored: int = 0


@dataclass(frozen=True)
class ScimReport:
    """Everything the report states, as of `generated_at`."""

    organisation: str
    organisation_key: str
    base_url: str
    scim_released: bool
    token_issued: bool
    token_issued_at: datetime | None
    last_success: ProvisioningActivity | None
    users_active: int
    users_deactivated: int
    users_deleted: int
    groups: int
    deprovisionings: list[Deprovisioning]
    deprovisioning_totals: DeprovisioningTotals
    health: scim_health.Health
    generated_at: datetime
    generated_by: str
    window_days: int = WINDOW_DAYS

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (only the rollout line while SCIM is pending)."""
        if not self.scim_released:  # as the SCIM screen: no Base URL, token or figures yet
            return {
                "report": "SCIM provisioning status",
                "organisation": {"name": self.organisation, "key": self.organisation_key},
                "scim_released": False,
                "summary": rollout_pending_line(self.organisation),
                "generated_at": _iso(self.generated_at),
                "generated_by": self.generated_by,
            }
        last = self.last_success
        return {
            "report": "SCIM provisioning status",
            "organisation": {"name": self.organisation, "key": self.organisation_key},
            "scim_base_url": self.base_url,
            "scim_released": self.scim_released,
            "token": {"issued": self.token_issued, "issued_at": _iso(self.token_issued_at)},
            "last_successful_request": None if last is None else {
                "time": _iso(last.time), "method": last.method, "path": last.path,
                "status": last.status, "client": last.client,
            },
            "connection_health": {"state": self.health.state, "summary": self.health.line},
            "managed_users": {"active": self.users_active, "deactivated": self.users_deactivated,
                              "deleted_by_idp": self.users_deleted},
            "managed_groups": self.groups,
            "deprovisionings": {
                "window_days": self.window_days,
                "total": self.deprovisioning_totals.removals,
                "people": self.deprovisioning_totals.people,
                "later_restored": self.deprovisioning_totals.restored,
                "listed": len(self.deprovisionings),
                "items": [{
                    "user_name": d.user_name, "member_id": d.member_id, "kind": d.kind,
                    "idp_request_at": _iso(d.requested_at), "access_removed_at": _iso(d.removed_at),
                    "seconds_to_removal": d.seconds, "client": d.client,
                    "removed_by": d.removed_by, "later_restored_at": _iso(d.restored_at),
                } for d in self.deprovisionings],
            },
            "generated_at": _iso(self.generated_at),
            "generated_by": self.generated_by,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _count(*conditions: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(*conditions)) or 0


def _removals(org: Organisation, since: datetime) -> tuple[Any, ...]:
    """Return the conditions for the audit events that each took someone's access away."""
    return (
        AuditEvent.organisation_id == org.id,
        AuditEvent.created_at >= since,
        or_(AuditEvent.action == DEACTIVATED,
            # Deleting someone already deactivated removes no access (the deactivation did).
            and_(AuditEvent.action == DELETED,
                 func.coalesce(AuditEvent.details["was_active"].as_boolean(), true()))),
    )


def _restored_at() -> Any:
    """Return when the removal's person next got access back (a correlated subquery)."""
    later = aliased(AuditEvent)
    return (select(func.min(later.created_at)).where(
        later.organisation_id == AuditEvent.organisation_id,
        later.target_id == AuditEvent.target_id,
        later.action == REACTIVATED,
        later.created_at >= AuditEvent.created_at,
        later.id > AuditEvent.id,
    ).correlate(AuditEvent).scalar_subquery())


def _removed_at(event: AuditEvent) -> datetime:
    ended = (event.details or {}).get("access_ended_at")
    return datetime.fromisoformat(ended) if isinstance(ended, str) else event.created_at


def deprovisionings(org: Organisation, since: datetime
                    ) -> tuple[list[Deprovisioning], DeprovisioningTotals]:
    """Return every removal of access since `since` (newest first), and the window's totals."""
    conditions = _removals(org, since)
    removals, people, restored = db.session.execute(
        select(func.count(), func.count(func.distinct(AuditEvent.target_id)),
               func.count(_restored_at())).where(*conditions)).one()
    totals = DeprovisioningTotals(removals or 0, people or 0, restored or 0)
    rows = db.session.execute(
        select(AuditEvent, _restored_at()).where(*conditions)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(MAX_LISTED)).all()
    requests: dict[str, list[ProvisioningActivity]] = {}
    if rows:
        for request in db.session.scalars(
            select(ProvisioningActivity).where(
                ProvisioningActivity.organisation_id == org.id,
                ProvisioningActivity.resource_type == "User",
                ProvisioningActivity.resource_id.in_({e.target_id for e, _ in rows}),
                ProvisioningActivity.method.in_(("PATCH", "PUT", "DELETE", "POST")),
                ProvisioningActivity.status < 400,
                ProvisioningActivity.time >= since - MATCH_TOLERANCE,
            ).order_by(ProvisioningActivity.time.desc())
        ):
            requests.setdefault(request.resource_id or "", []).append(request)
    items = []
    for event, restored_at in rows:
        when = _removed_at(event)
        # The request that removed access started at or just before the removal.
        cause = next((r for r in requests.get(event.target_id or "", [])
                      if timedelta(0) <= when - r.time <= MATCH_TOLERANCE), None)
        items.append(Deprovisioning(
            user_name=event.target_label or "", member_id=event.target_id or "",
            kind="deleted" if event.action == DELETED else "deactivated",
            removed_at=when, removed_by=event.actor_label,
            requested_at=cause.time if cause else None, client=cause.client if cause else None,
            restored_at=restored_at,
        ))
    return items, totals


def build_report(org: Organisation, requested_by: Membership) -> ScimReport:
    """Assemble the SCIM status report for the organisation, as of now."""
    now = utcnow()
    token = scim_tokens.active_token(org)
    managed = (Membership.organisation_id == org.id, Membership.scim_managed.is_(True))
    listed, totals = deprovisionings(org, now - timedelta(days=WINDOW_DAYS))
    return ScimReport(
        organisation=org.name,
        organisation_key=org.key,
        base_url=organisations.scim_base_url(org),
        scim_released=org.scim_released,
        token_issued=token is not None,
        token_issued_at=token.created_at if token else None,
        last_success=provisioning_activity.last_request(org, successful=True),
        users_active=_count(*managed, Membership.scim_deleted_at.is_(None),
                            Membership.active.is_(True)),
        users_deactivated=_count(*managed, Membership.scim_deleted_at.is_(None),
                                 Membership.active.is_(False)),
        users_deleted=_count(*managed, Membership.scim_deleted_at.is_not(None)),
        groups=db.session.scalar(select(func.count()).select_from(Group).where(
            Group.organisation_id == org.id, Group.source == SOURCE_SCIM)) or 0,
        deprovisionings=listed,
        deprovisioning_totals=totals,
        health=scim_health.connection_health(org, now),
        generated_at=now,
        generated_by=requested_by.account.email,
    )
