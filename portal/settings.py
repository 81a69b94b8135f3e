"""IT Settings: the section landing page, General and the Audit Log."""

from __future__ import annotations

from flask import Blueprint, abort, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from portal.forms import id_param
from portal.models import utcnow
from portal.permissions import AUDIT_VIEW, IAM_MANAGE, SETTINGS_GENERAL
from portal.security import current_membership, require_permission
from portal.services import audit_details
from portal.services import audit_log as audit_log_service
from portal.services.audit import Actor
from portal.services.audit_log import AuditFilter
from portal.services.errors import ServiceError

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.route("/")
@login_required
def index() -> Response:
    """Open the first IT Settings section the member may use."""
    for permission, endpoint in (
        (SETTINGS_GENERAL, "settings.general"),
        (IAM_MANAGE, "iam.scim"),
        (AUDIT_VIEW, "settings.audit_log"),
    ):
        if permission in g.permissions:
            return redirect(url_for(endpoint))
    abort(403)  # no IT Settings section at all: the 403 page says so here


@bp.route("/general")
@require_permission(SETTINGS_GENERAL)
def general() -> str:
    """Show the organisation's general settings."""
    return render_template("settings/general.html", nav_key="general")


@bp.route("/audit")
@require_permission(AUDIT_VIEW)
def audit_log() -> Response:
    """List the organisation's audit events, newest first (page, or rows for HTMX)."""
    org = current_membership().organisation
    wanted = AuditFilter.from_args(request.args)
    page = audit_log_service.list_events(org, wanted, before=id_param(request.args.get("before")))
    context = {"page": page, "wanted": wanted, "filter_args": wanted.as_args(),
               "details": audit_details.readable(org.id, page.events),
               "paged": request.args.get("before") is not None}
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        # The filter form swaps the results (messages, export link, table); paging, rows.
        partial = "_audit_results.html" if request.headers.get("HX-Target") == "audit-results" \
            else "_audit_rows.html"
        response = make_response(render_template(f"settings/{partial}", **context))
    else:
        response = make_response(render_template(
            "settings/audit_log.html", nav_key="audit", actions=audit_log_service.actions(org),
            **context))
    response.vary.update(("HX-Request", "HX-Target"))
    return response


@bp.route("/audit/export.csv")
@require_permission(AUDIT_VIEW)
def audit_export() -> Response:
    """Download the (filtered) audit log as CSV."""
    org = current_membership().organisation
    try:
        body = audit_log_service.export_csv(org, AuditFilter.from_args(request.args),
                                            Actor.of(current_user))
    except ServiceError:  # unusable filters: back to the log, which says what is wrong
        query = request.query_string.decode("utf-8", "replace")
        return redirect(f"{url_for('settings.audit_log')}?{query}")
    response = make_response(body)
    response.content_type = "text/csv; charset=utf-8"
    filename = f"audit-log-{org.key}-{utcnow():%Y%m%d-%H%M}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
