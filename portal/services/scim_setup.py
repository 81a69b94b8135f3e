"""What an administrator does on the SCIM Configuration screen: generate and rotate the token.

The rules live here, not in the views: nothing happens while SCIM is not released
for the organisation, Generate never replaces an existing token, and Rotate only
replaces the token the administrator was looking at — so a stale page or a resent
form cannot silently invalidate a token someone else has just pasted into the IdP.
"""

from __future__ import annotations

from flask import url_for
from sqlalchemy import update

from portal.extensions import db
from portal.models import Organisation
from portal.permissions import IAM_MANAGE
from portal.services import audit, notifications, roles, scim_tokens
from portal.services.errors import Conflict
from portal.services.scim_tokens import IssuedToken


class ScimNotReleased(Conflict):
    """SCIM has not been released for this organisation yet."""


class TokenChanged(Conflict):
    """The token changed since the administrator loaded the page."""


NOT_RELEASED = ("The SCIM controls are not yet available for {org}. Nothing was changed. "
                "Ask your Priverion administrator or support contact for the rollout status.")


def generate_token(org: Organisation, actor: audit.Actor) -> IssuedToken:
    """Issue the organisation's first SCIM token; refuse if one already exists."""
    _lock_released(org)
    current = scim_tokens.active_token(org)
    if current is not None:
        raise TokenChanged(
            f"A token was already issued on {current.created_at:%Y-%m-%d %H:%M} UTC by "
            f"{current.created_by_label or 'someone else'}, so no new one was generated. "
            "Rotate the token if you need a new one.")
    return scim_tokens.issue_token(org, actor)


def rotate_token(
    org: Organisation, actor: audit.Actor, expected_token_id: int | None
) -> IssuedToken:
    """Replace the token the administrator saw with a new one and tell the other IAM admins."""
    _lock_released(org)
    current = scim_tokens.active_token(org)
    if current is None or current.id != expected_token_id:
        raise TokenChanged(
            "The token changed since this page was loaded (someone else may have rotated it), "
            "so nothing was rotated. Check the current token below before rotating again.")
    issued = scim_tokens.issue_token(org, actor)
    _notify_rotation(org, actor, issued)
    return issued


def _lock_released(org: Organisation) -> None:
    """Lock the organisation row and check SCIM is released, so the check and the change agree."""
    # A no-op UPDATE locks the row on PostgreSQL and takes the write lock on SQLite (which
    # ignores SELECT ... FOR UPDATE), so two administrators' check-then-change cannot interleave.
    db.session.execute(
        update(Organisation).where(Organisation.id == org.id)
        .values(scim_rollout=Organisation.scim_rollout)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(org, ["scim_rollout"])
    if not org.scim_released:
        raise ScimNotReleased(NOT_RELEASED.format(org=org.name))


def _notify_rotation(org: Organisation, actor: audit.Actor, issued: IssuedToken) -> None:
    """Tell every other IAM administrator of the organisation that the token was rotated."""
    link = url_for("iam.scim")
    for member in roles.members_with_permission(org.id, IAM_MANAGE):
        if member.account_id == actor.account_id:
            continue
        notifications.notify(
            member.account,
            f"The SCIM token of {org.name} was rotated by {actor.label}. "
            "The identity provider needs the new token to keep syncing.",
            organisation=org, link=link, dedupe_key=f"scim-token-rotated:{issued.record.id}",
            permission=IAM_MANAGE,
        )
