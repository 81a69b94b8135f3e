"""The SSO / SAML Configuration screen."""

from __future__ import annotations

from flask import render_template

from portal.iam import bp
from portal.permissions import IAM_MANAGE
from portal.security import require_permission


@bp.route("/sso")
@require_permission(IAM_MANAGE)
def sso() -> str:
    """Show the SSO Configuration screen."""
    return render_template("settings/iam/sso.html", nav_key="iam.sso")
