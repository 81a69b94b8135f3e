"""IT Settings → IAM → SCIM: provisioning activity, connection health and the status report."""

from __future__ import annotations

import json

from flask import g, make_response, render_template, request
from werkzeug.wrappers import Response

from portal.forms import id_param
from portal.iam import bp
from portal.permissions import AUDIT_VIEW, IAM_MANAGE
from portal.security import current_membership, require_permission
from portal.services import provisioning_activity, scim_health, scim_report
from portal.services.provisioning_activity import RESOURCE_FILTERS, ActivityFilter
from portal.services.scim_status import scim_status


def _vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response


@bp.route("/scim/activity")
@require_permission(IAM_MANAGE)
def scim_activity() -> Response:
    """List the SCIM requests the IdP sent, newest first (page, or rows for HTMX)."""
    org = current_membership().organisation
    if not org.scim_released:  # the same calm line as the Configuration screen
        return _vary(make_response(render_template(
            "settings/iam/scim.html", nav_key="iam.scim", status=scim_status(org))))
    wanted = ActivityFilter.from_args(request.args)
    page = provisioning_activity.list_activity(org, wanted,
                                               before=id_param(request.args.get("before")))
    context = {"page": page, "wanted": wanted, "resources": list(RESOURCE_FILTERS),
               "filter_args": wanted.as_args()}
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        # "Load more" swaps in the next rows; a filter change swaps the whole table.
        part = "_activity_rows.html" if "before" in request.args else "_activity_table.html"
        return _vary(make_response(render_template(f"settings/iam/{part}", **context)))
    health = scim_health.connection_health(org)
    return _vary(make_response(render_template(
        "settings/iam/activity.html", nav_key="iam.scim", scim_tab="activity", health=health,
        paged=request.args.get("before") is not None, **context)))


@bp.route("/scim/health")
@require_permission(IAM_MANAGE)
def scim_health_badge() -> Response:
    """Return the connection-health badge (the partial the SCIM screens include)."""
    health = scim_health.connection_health(current_membership().organisation)
    return _vary(make_response(render_template("settings/iam/_health.html", health=health)))


# The status report is audit evidence: an Auditor (AUDIT_VIEW) reads it too, from the
# Audit Log, without access to the SCIM screen itself (no token, nothing to change).
@bp.route("/scim/report")
@require_permission(IAM_MANAGE, AUDIT_VIEW)
def scim_report_page() -> str:
    """Show the printable SCIM status report (audit evidence)."""
    org = current_membership().organisation
    nav_key = "iam.scim" if IAM_MANAGE in g.permissions else "audit"
    if not org.scim_released:  # the same calm line as the Configuration screen
        return render_template("settings/iam/scim.html", nav_key=nav_key,
                               status=scim_status(org))
    report = scim_report.build_report(org, current_membership())
    return render_template("settings/iam/report.html", nav_key=nav_key, report=report)


@bp.route("/scim/report.json")
@require_permission(IAM_MANAGE, AUDIT_VIEW)
def scim_report_json() -> Response:
    """Download the SCIM status report as JSON (audit evidence)."""
    membership = current_membership()
    report = scim_report.build_report(membership.organisation, membership)
    response = make_response(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    response.content_type = "application/json"
    filename = f"scim-status-{membership.organisation.key}-{report.generated_at:%Y%m%d-%H%M}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
