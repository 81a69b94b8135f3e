"""IT Settings → Identity & Access Management: the SCIM and SSO screens."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from werkzeug.wrappers import Response

from portal.permissions import IAM_MANAGE
from portal.security import require_permission

bp = Blueprint("iam", __name__, url_prefix="/settings/iam")


@bp.route("/")
@require_permission(IAM_MANAGE)
def index() -> Response:
    """Open the first IAM screen."""
    return redirect(url_for("iam.scim"))


from portal.iam import activity, scim, sso  # noqa: E402,F401  (routes register on bp)
