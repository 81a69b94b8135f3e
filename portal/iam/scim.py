"""The SCIM Configuration screen: Base URL, the bearer token (shown once), rotation."""

from __future__ import annotations

from typing import Any

from flask import make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.forms import id_param
from portal.iam import bp
from portal.models import Organisation
from portal.permissions import IAM_MANAGE
from portal.security import current_membership, require_permission
from portal.services import scim_health, scim_setup
from portal.services.audit import Actor
from portal.services.scim_status import scim_status
from portal.services.scim_tokens import IssuedToken

PAGE = "settings/iam/scim.html"
PANEL = "settings/iam/_token_panel.html"
PENDING = "settings/iam/_rollout_pending.html"


def _respond(org: Organisation, *, issued: IssuedToken | None = None, rotated: bool = False,
             message: str | None = None, status: int = 200) -> Response:
    """Render the page, or for HTMX the token panel (plus the auditor block out of band)."""
    context: dict[str, Any] = {"status": scim_status(org), "issued": issued, "rotated": rotated,
                               "message": message, "nav_key": "iam.scim",
                               "health": scim_health.connection_health(org)}
    htmx = request.headers.get("HX-Request") is not None
    if not htmx:
        response = make_response(render_template(PAGE, **context), status)
    elif not org.scim_released:
        response = make_response(render_template(PENDING, **context), status)
        response.headers["HX-Retarget"] = "#scim-main"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(render_template(PANEL, oob_status=request.method == "POST",
                                                 **context), status)
        if status >= 400:
            response.headers["HX-Reswap"] = "outerHTML"  # swap the refreshed panel in anyway
    response.vary.add("HX-Request")
    # A token may be in this response, or be swapped into this page later: no cache, proxy
    # or back-forward cache may keep either.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/scim")
@require_permission(IAM_MANAGE)
def scim() -> Response:
    """Show the SCIM Configuration screen (or, for HTMX, its token panel)."""
    return _respond(current_membership().organisation)


@bp.route("/scim/token", methods=["POST"])
@require_permission(IAM_MANAGE)
def scim_generate_token() -> Response:
    """Issue the organisation's first SCIM token and show it this once."""
    org = current_membership().organisation
    try:
        issued = scim_setup.generate_token(org, Actor.of(current_user))
    except scim_setup.ScimNotReleased:
        return _respond(org, status=409)
    except scim_setup.TokenChanged as exc:
        return _respond(org, message=str(exc), status=409)
    return _respond(org, issued=issued)


@bp.route("/scim/token/rotate", methods=["GET"])
@require_permission(IAM_MANAGE)
def scim_rotate_confirm() -> Response | str:
    """Ask for confirmation before rotating (the no-JavaScript form of the dialog)."""
    status = scim_status(current_membership().organisation)
    if not status.released or not status.token_issued:
        return redirect(url_for("iam.scim"))
    return render_template("settings/iam/scim_rotate.html", status=status, nav_key="iam.scim")


@bp.route("/scim/token/rotate", methods=["POST"])
@require_permission(IAM_MANAGE)
def scim_rotate_token() -> Response:
    """Replace the current token with a new one, shown this once; the old one stops working."""
    org = current_membership().organisation
    expected = id_param(request.form.get("token_id"))
    try:
        issued = scim_setup.rotate_token(org, Actor.of(current_user), expected)
    except scim_setup.ScimNotReleased:
        return _respond(org, status=409)
    except scim_setup.TokenChanged as exc:
        return _respond(org, message=str(exc), status=409)
    return _respond(org, issued=issued, rotated=True)
