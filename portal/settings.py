"""IT Settings: the section landing page, General and the Audit Log."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, url_for
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.models import AuditEvent
from portal.permissions import AUDIT_VIEW, IAM_MANAGE, SETTINGS_GENERAL
from portal.security import require_permission

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
    return redirect(url_for("settings.general"))


@bp.route("/general")
@require_permission(SETTINGS_GENERAL)
def general() -> str:
    """Show the organisation's general settings."""
    return render_template("settings/general.html", nav_key="general")


@bp.route("/audit")
@require_permission(AUDIT_VIEW)
def audit_log() -> str:
    """List the organisation's audit events, newest first."""
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.organisation_id == g.membership.organisation_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(100)
    ).all()
    return render_template("settings/audit_log.html", nav_key="audit", events=events)
