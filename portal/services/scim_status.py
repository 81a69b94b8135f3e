"""The SCIM connection state of an organisation, as the screen and audit reports state it.

One small read-only function so the SCIM screen, the support overview and the
downloadable status report all say the same thing. "Last provisioning request" is
the newest record of the provisioning activity log (with its result, failures
included); without one, the latest time any of the organisation's tokens was
accepted, and by which client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Organisation, ProvisioningActivity, ScimToken
from portal.services.organisations import scim_base_url
from portal.services.scim_health import failure_reason

RESULT_ACCEPTED = "Token accepted"


@dataclass(frozen=True)
class ScimStatus:
    """What an auditor needs to record about one organisation's SCIM connection."""

    organisation_name: str
    organisation_key: str
    released: bool
    base_url: str
    token_id: int | None = None
    token_hint: str | None = None
    token_issued_at: datetime | None = None
    token_issued_by: str | None = None
    token_last_used_at: datetime | None = None
    token_last_used_agent: str | None = None
    last_request_at: datetime | None = None
    last_request_client: str | None = None
    last_request_result: str | None = None

    @property
    def token_issued(self) -> bool:
        return self.token_id is not None

    @property
    def endpoint_configured(self) -> bool:
        return self.released

    @property
    def rollout_line(self) -> str:
        """Return the one calm line shown instead of SCIM while it is not released."""
        return rollout_pending_line(self.organisation_name)


def rollout_pending_line(organisation_name: str) -> str:
    """Return the guide's "not yet available" line for an organisation awaiting SCIM."""
    return (f"The SCIM controls are not yet available for {organisation_name}. Ask your "
            "Priverion administrator or support contact for the rollout status of your "
            "organisation.")


def scim_status(org: Organisation) -> ScimStatus:
    """Return the SCIM connection state of one organisation."""
    return scim_statuses([org])[org.id]


def scim_statuses(orgs: Sequence[Organisation]) -> dict[int, ScimStatus]:
    """Return the SCIM connection state of several organisations in one query."""
    ids = [org.id for org in orgs]
    tokens: dict[int, list[ScimToken]] = {org_id: [] for org_id in ids}
    latest: dict[int, ProvisioningActivity] = {}
    if ids:
        for token in db.session.scalars(
            select(ScimToken).where(ScimToken.organisation_id.in_(ids)).order_by(ScimToken.id)
        ):
            tokens[token.organisation_id].append(token)
        newest = (select(func.max(ProvisioningActivity.id))
                  .where(ProvisioningActivity.organisation_id.in_(ids))
                  .group_by(ProvisioningActivity.organisation_id))
        for row in db.session.scalars(
            select(ProvisioningActivity).where(ProvisioningActivity.id.in_(newest))
        ):
            latest[row.organisation_id or 0] = row
    return {org.id: _status(org, tokens[org.id], latest.get(org.id)) for org in orgs}


def request_result(record: ProvisioningActivity) -> str:
    """Return a request's result in words, e.g. "Succeeded (HTTP 201)"."""
    if record.status < 400:
        return f"Succeeded (HTTP {record.status})"
    reason = failure_reason(record.status, record.scim_type, record.detail)
    return f"Failed: {reason} (HTTP {record.status})"


def _status(org: Organisation, tokens: list[ScimToken],
            record: ProvisioningActivity | None) -> ScimStatus:
    active = next((t for t in tokens if t.revoked_at is None), None)
    used = [t for t in tokens if t.last_used_at is not None]
    # The most recent request may have come with a token that has since been rotated.
    last = max(used, key=lambda t: t.last_used_at) if used else None  # type: ignore[arg-type,return-value]
    status = ScimStatus(
        organisation_name=org.name,
        organisation_key=org.key,
        released=org.scim_released,
        base_url=scim_base_url(org),
        token_id=active.id if active else None,
        token_hint=active.hint if active else None,
        token_issued_at=active.created_at if active else None,
        token_issued_by=active.created_by_label if active else None,
        token_last_used_at=active.last_used_at if active else None,
        token_last_used_agent=active.last_used_agent if active else None,
        last_request_at=last.last_used_at if last else None,
        last_request_client=last.last_used_agent if last else None,
        last_request_result=RESULT_ACCEPTED if last else None,
    )
    if record is not None:
        status = replace(status, last_request_at=record.time, last_request_client=record.client,
                         last_request_result=request_result(record))
    return status
