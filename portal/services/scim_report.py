"""The SCIM status report: audit evidence that automated provisioning is in place and works."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from portal.extensions import db
from portal.models import (
    SOURCE_SCIM,
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


@dataclass(frozen=True)
class Deprovisioning:
    """One person whose access the IdP removed, and how long that took."""

    user_name: str
    member_id: str
    kind: str  # "deactivated" or "deleted"
    removed_at: datetime
    requested_at: datetime | None  # start of the IdP's SCIM request, if one did it
    client: str | None

    @property
    def seconds(self) -> float | None:
        """Return the time from the IdP's request to access removal, in seconds."""
        if self.requested_at is None:
            return None
        return round(max(0.0, (self.removed_at - self.requested_at).total_seconds()), 3)


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
    deprovisioning_total: int
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
                "total": self.deprovisioning_total,
                "listed": len(self.deprovisionings),
                "items": [{
                    "user_name": d.user_name, "member_id": d.member_id, "kind": d.kind,
                    "idp_request_at": _iso(d.requested_at), "access_removed_at": _iso(d.removed_at),
                    "seconds_to_removal": d.seconds, "client": d.client,
                } for d in self.deprovisionings],
            },
            "generated_at": _iso(self.generated_at),
            "generated_by": self.generated_by,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _count(*conditions: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(*conditions)) or 0


def deprovisionings(org: Organisation, since: datetime) -> tuple[list[Deprovisioning], int]:
    """Return SCIM-managed people who lost access since `since` (newest first), and the total."""
    removed_at = func.coalesce(Membership.deactivated_at, Membership.scim_deleted_at)
    conditions = (
        Membership.organisation_id == org.id,
        Membership.scim_managed.is_(True),
        or_(Membership.active.is_(False), Membership.scim_deleted_at.is_not(None)),
        removed_at >= since,
    )
    total = _count(*conditions)
    members = list(db.session.scalars(
        select(Membership).where(*conditions).order_by(removed_at.desc()).limit(MAX_LISTED)
    ))
    requests: dict[str, list[ProvisioningActivity]] = {}
    if members:
        for row in db.session.scalars(
            select(ProvisioningActivity).where(
                ProvisioningActivity.organisation_id == org.id,
                ProvisioningActivity.resource_type == "User",
                ProvisioningActivity.resource_id.in_([m.public_id for m in members]),
                ProvisioningActivity.method.in_(("PATCH", "PUT", "DELETE")),
                ProvisioningActivity.status < 400,
                ProvisioningActivity.time >= since - MATCH_TOLERANCE,
            ).order_by(ProvisioningActivity.time.desc())
        ):
            requests.setdefault(row.resource_id or "", []).append(row)
    items = []
    for member in members:
        when = member.deactivated_at or member.scim_deleted_at
        assert when is not None
        # The request that removed access started at or just before the removal.
        cause = next((r for r in requests.get(member.public_id, [])
                      if timedelta(0) <= when - r.time <= MATCH_TOLERANCE), None)
        items.append(Deprovisioning(
            user_name=member.user_name, member_id=member.public_id,
            kind="deleted" if member.scim_deleted_at and not member.deactivated_at
            else "deactivated",
            removed_at=when, requested_at=cause.time if cause else None,
            client=cause.client if cause else None,
        ))
    return items, total


def build_report(org: Organisation, requested_by: Membership) -> ScimReport:
    """Assemble the SCIM status report for the organisation, as of now."""
    now = utcnow()
    token = scim_tokens.active_token(org)
    managed = (Membership.organisation_id == org.id, Membership.scim_managed.is_(True))
    listed, total = deprovisionings(org, now - timedelta(days=WINDOW_DAYS))
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
        deprovisioning_total=total,
        health=scim_health.connection_health(org, now),
        generated_at=now,
        generated_by=requested_by.account.email,
    )
