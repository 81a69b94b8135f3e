"""The People screen: the organisation's members, one person's detail, their manual roles."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from portal.errors import render_error
from portal.extensions import db
from portal.models import SOURCE_MANUAL, SOURCE_SCIM, Membership, Role
from portal.people import actor, bp, org_id, page_size, render
from portal.people.forms import GrantForm, RoleForm
from portal.permissions import PEOPLE_MANAGE, PEOPLE_VIEW
from portal.security import current_membership, require_permission
from portal.services import audit_details, directory, group_roles, profiles, role_grants, roles
from portal.services.errors import ServiceError

MAX_QUERY = 200


def _filter_from_args() -> directory.PeopleFilter | Response:
    """Read the list's filters from the query string; a bad value is a clear 400."""
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    source = request.args.get("source", "")
    if len(q) > MAX_QUERY:
        return render_error(400, f"Search for at most {MAX_QUERY} characters.")
    if status and status not in directory.STATUS_LABELS:
        return render_error(400, "Choose a status from the list.")
    if source and source not in (SOURCE_SCIM, SOURCE_MANUAL):
        return render_error(400, "Choose a source from the list.")
    group_id = None
    if request.args.get("group"):
        group = group_roles.get_group(org_id(), request.args["group"])
        if group is None:
            abort(404)
        group_id = group.id
    return directory.PeopleFilter(q=q, status=status, source=source, group_id=group_id)


@bp.route("/")
@require_permission(PEOPLE_VIEW)
def index() -> Response:
    """List the organisation's members (page, or the table fragment for HTMX)."""
    flt = _filter_from_args()
    if isinstance(flt, Response):
        return flt
    page = directory.list_people(org_id(), flt, after=request.args.get("after"),
                                 before=request.args.get("before"), size=page_size())
    filters = {k: request.args.get(k, "") for k in ("q", "status", "source", "group")
               if request.args.get(k)}
    return render("people/index.html", "people/_table.html", page=page, filters=filters,
                  group_choices=directory.group_choices(org_id()),
                  statuses=directory.STATUS_LABELS, sources=directory.SOURCE_LABELS)


def member_or_404(public_id: str) -> Membership:
    """Return the organisation's member with this public id, or 404."""
    member = directory.get_member(org_id(), public_id)
    if member is None:
        abort(404)
    return member


def _role_form() -> RoleForm:
    return RoleForm().set_roles(roles.all_roles())


def grant_form(*, submitted: bool = False) -> GrantForm:
    """Return the "Grant a role until…" form offering every role (read from the request or blank)."""
    form = GrantForm() if submitted else GrantForm(formdata=None)
    form.set_roles(roles.all_roles())
    return form


def detail_response(member: Membership, *, status: int = 200, role_error: str | None = None,
                    profile_error: str | None = None, grant_error: str | None = None,
                    grant: GrantForm | None = None, fragment: bool = True) -> Response:
    """Render the person's page, or just the roles section for an HTMX role change."""
    events = directory.history(org_id(), member.public_id)
    return render(
        "people/detail.html", "people/_roles.html" if fragment else "people/detail.html", status,
        member=member, grants=roles.role_grants_for([member.id])[member.id],
        groups=directory.groups_by_member(org_id(), [member.id]).get(member.id, []),
        events=events, details=audit_details.readable(org_id(), events),
        role_form=_role_form(), role_error=role_error, profile_error=profile_error,
        grant_form=grant or grant_form(), grant_error=grant_error,
        max_grant_days=role_grants.max_grant_days(),
        editable=profiles.EDITABLE_FIELDS, status_labels=directory.STATUS_LABELS,
        member_status=directory.member_status(member),
    )


@bp.route("/<public_id>")
@require_permission(PEOPLE_VIEW)
def detail(public_id: str) -> Response:
    """Show one person: profile, groups, roles with their sources, provisioning history."""
    return detail_response(member_or_404(public_id), fragment=False)


@bp.route("/<public_id>/profile", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def update_profile(public_id: str) -> Response:
    """Change a manually managed member's profile; IdP-owned fields are refused."""
    member = member_or_404(public_id)
    values = {name: request.form.get(name) for name in profiles.EDITABLE_FIELDS
              if name in request.form}
    try:
        changed = profiles.update_profile(member, values, actor())
    except profiles.ManagedByIdentityProvider as exc:
        return detail_response(member, status=409, profile_error=str(exc), fragment=False)
    except ServiceError as exc:
        return detail_response(member, status=422, profile_error=str(exc), fragment=False)
    flash("Profile saved." if changed else "Nothing to change.", "success")
    return redirect(url_for("people.detail", public_id=member.public_id))


def after_role_change(member: Membership, message: str) -> Response:
    """Re-render the roles section for HTMX, or flash and go back to the person's page."""
    if request.headers.get("HX-Request"):
        return detail_response(member)
    flash(message, "success")
    return redirect(url_for("people.detail", public_id=member.public_id))


@bp.route("/<public_id>/roles", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def grant_role(public_id: str) -> Response:
    """Give the member a role by hand."""
    member = member_or_404(public_id)
    form = _role_form()
    if not form.validate_on_submit():
        return detail_response(member, status=422, role_error=form.error_message())
    role = db.session.get(Role, form.role_id.data)
    assert role is not None  # the form only accepts existing roles
    try:
        changed = roles.grant_manual_role(
            member, role, actor(),
            granter_permissions=roles.permanent_permissions(current_membership()))
    except ServiceError as exc:
        return detail_response(member, status=422, role_error=str(exc))
    return after_role_change(member, f"{member.label} now holds {role.name}." if changed
                              else f"{member.label} already held {role.name} by hand.")


@bp.route("/<public_id>/roles/<int:role_id>/revoke", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def revoke_role(public_id: str, role_id: int) -> Response:
    """Take a manually given role away (refused if nobody could manage IAM afterwards)."""
    member = member_or_404(public_id)
    role = db.session.get(Role, role_id)
    if role is None:
        abort(404)
    try:
        changed = roles.revoke_manual_role(member, role, actor())
    except ServiceError as exc:
        return detail_response(member, status=422, role_error=str(exc))
    return after_role_change(member, f"{member.label} no longer holds {role.name} by hand."
                              if changed else f"{member.label} did not hold {role.name} by hand.")
