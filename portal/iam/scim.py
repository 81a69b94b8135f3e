"""The SCIM Configuration screen."""

from __future__ import annotations

from flask import render_template

from portal.iam import bp
from portal.permissions import IAM_MANAGE
from portal.security import current_membership, require_permission
from portal.services import scim_health


@bp.route("/scim")
@require_permission(IAM_MANAGE)
def scim() -> str:
    """Show the SCIM Configuration screen."""
    health = scim_health.connection_health(current_membership().organisation)
    return render_template("settings/iam/scim.html", nav_key="iam.scim", health=health)
