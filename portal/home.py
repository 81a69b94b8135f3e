"""The home page, the organisation switcher and the notification bell."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from portal.auth import safe_next
from portal.forms import id_param
from portal.permissions import IAM_MANAGE
from portal.security import ORG_SESSION_KEY
from portal.services import notifications, roles

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index() -> str:
    """Show the member's organisation, roles and what they may open."""
    membership = g.membership
    member_roles = roles.effective_roles(membership) if membership else []
    return render_template(
        "home/index.html",
        member_roles=member_roles,
        can_iam=IAM_MANAGE in g.permissions,
    )


@bp.route("/switch-organisation", methods=["POST"])
@login_required
def switch_organisation() -> Response:
    """Make another of the person's organisations the current one."""
    wanted = id_param(request.form.get("organisation_id"))
    target = next((m for m in g.memberships if m.organisation_id == wanted), None)
    if target is None:
        abort(404)
    session[ORG_SESSION_KEY] = target.organisation_id
    flash(f"You are now working in {target.organisation.name}.", "info")
    return redirect(url_for("home.index"))


def _reach() -> notifications.Reach:
    """Return (once per request) which organisations' notices the signed-in person may read."""
    if "notification_reach" not in g:
        g.notification_reach = notifications.reach(current_user, g.get("memberships", []))
    return g.notification_reach


@bp.route("/notifications")
@login_required
def notification_list() -> str:
    """List the person's notifications (page or HTMX dropdown fragment)."""
    items = notifications.recent(_reach())
    template = "home/_notifications.html" if request.headers.get("HX-Request") else \
        "home/notifications.html"
    return render_template(template, items=items)


@bp.route("/notifications/<int:note_id>", methods=["GET", "POST"])
@login_required
def notification_open(note_id: int) -> Response | str:
    """Open a notification: a GET only looks; the POST (CSRF) marks it read and switches."""
    note = notifications.get_visible(_reach(), note_id)
    if note is None:
        abort(404)  # not the reader's, or no longer readable there: the same answer
    current = g.membership.organisation_id if g.membership else None
    elsewhere = note.organisation_id is not None and note.organisation_id != current
    if request.method != "POST":
        if elsewhere or not note.link:
            return render_template("home/notification_open.html", note=note, elsewhere=elsewhere)
        return redirect(safe_next(note.link) or url_for("home.notification_list"))
    if elsewhere:
        session[ORG_SESSION_KEY] = note.organisation_id
        flash(f"You are now working in {note.organisation.name}.", "info")  # type: ignore[union-attr]
    notifications.mark_read(note)
    return redirect(safe_next(note.link) or url_for("home.notification_list"))


@bp.route("/notifications/read", methods=["POST"])
@login_required
def notifications_read() -> Response:
    """Mark all of the person's notifications as read."""
    notifications.mark_all_read(_reach())
    return redirect(url_for("home.notification_list"))


@bp.app_context_processor
def _bell() -> dict[str, int]:
    if current_user.is_authenticated:
        return {"unread_notifications": notifications.unread_count(_reach())}
    return {"unread_notifications": 0}
