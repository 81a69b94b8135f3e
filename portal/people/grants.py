"""Time-boxed access on a person's page: grant a role until a date and time, end it early."""

from __future__ import annotations

from flask import abort
from werkzeug.wrappers import Response

from portal import clock
from portal.extensions import db
from portal.models import Role
from portal.people import actor, bp
from portal.people.members import after_role_change, detail_response, grant_form, member_or_404
from portal.permissions import PEOPLE_MANAGE
from portal.security import current_membership, require_permission
from portal.services import role_grants
from portal.services.errors import ServiceError


@bp.route("/<public_id>/grants", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def grant_until(public_id: str) -> Response:
    """Give the member a role until a date and time, for a stated reason."""
    member = member_or_404(public_id)
    form = grant_form(submitted=True)
    if not form.validate_on_submit():
        return detail_response(member, status=422, grant_error=form.error_message(), grant=form)
    role = db.session.get(Role, form.role_id.data)
    assert role is not None  # the form only accepts existing roles
    try:
        until = form.until_utc(clock.now())
        grant = role_grants.grant_role_until(current_membership(), member, role, until,
                                             form.reason.data or "")
    except (ValueError, ServiceError) as exc:
        return detail_response(member, status=422, grant_error=str(exc), grant=form)
    return after_role_change(member, f"{member.label} holds {role.name} until "
                             f"{grant.until:%Y-%m-%d %H:%M} UTC "
                             f"({role_grants.expires_in_words(grant.until)}).")


@bp.route("/<public_id>/grants/<int:grant_id>/end", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def end_grant(public_id: str, grant_id: int) -> Response:
    """End a time-boxed grant now."""
    member = member_or_404(public_id)
    grant = role_grants.get_grant(member, grant_id)
    if grant is None:
        abort(404)
    ended = role_grants.end_grant_early(actor(), grant)
    return after_role_change(member, f"{member.label} no longer holds {grant.role.name} "
                             "through that grant." if ended
                             else f"That grant of {grant.role.name} had already ended.")
