"""Telling an organisation's IAM administrators about SCIM: failures and the release.

(Token rotations are announced by portal.services.scim_setup.)

Each notice carries a dedupe key, so an incident is announced once however many
failing requests it spans, and repeated calls never pile up messages.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Account, Organisation
from portal.permissions import IAM_MANAGE
from portal.services import notifications, roles, scim_health


def iam_admins(org: Organisation) -> list[Account]:
    """Return the accounts that hold the IAM permission in the organisation right now."""
    return [m.account for m in roles.members_with_permission(org.id, IAM_MANAGE)]


def _link(endpoint: str, **values: Any) -> str:
    """Return the path of a portal page, also outside a request (command line)."""
    if has_request_context():
        return url_for(endpoint, **values)
    return current_app.url_map.bind("localhost").build(endpoint, values)


def _tell_admins(org: Organisation, message: str, link: str, dedupe_key: str) -> int:
    """Notify every IAM admin once per dedupe key; return how many were notified."""
    sent = 0
    for account in iam_admins(org):
        try:
            # A concurrent request may announce the same incident: the unique
            # (account, dedupe key) index decides, and the loser's insert is dropped.
            with db.session.begin_nested():
                if notifications.notify(account, message, organisation=org, link=link,
                                        dedupe_key=dedupe_key):
                    sent += 1
        except IntegrityError:
            continue
    return sent


def notify_if_failing(org: Organisation) -> int:
    """Announce a provisioning failure incident once, when the connection is failing."""
    health = scim_health.connection_health(org)
    if health.state != scim_health.FAILING or health.since is None:
        return 0
    return _tell_admins(
        org,
        f"SCIM provisioning for {org.name} is failing: {health.line.split(' — ', 1)[-1]}.",
        _link("iam.scim_activity", status="errors"),
        f"scim-failing:{org.id}:{health.since.isoformat()}",
    )


def scim_released(org: Organisation, marker: str) -> int:
    """Tell the organisation's IAM admins that SCIM is now available to them."""
    return _tell_admins(
        org,
        f"SCIM provisioning is now available for {org.name}: connect your identity provider.",
        _link("iam.scim"),
        f"scim-released:{org.id}:{marker}",
    )
