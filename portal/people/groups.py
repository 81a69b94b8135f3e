"""The Groups screen: the organisation's groups, their members and group-to-role mappings."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from portal.errors import render_error
from portal.extensions import db
from portal.models import Group, Role
from portal.people import actor, groups_bp, org_id, page_size, render
from portal.people.forms import RoleForm
from portal.permissions import PEOPLE_MANAGE, PEOPLE_VIEW
from portal.security import current_membership, require_permission
from portal.services import audit_details, directory, group_roles, roles
from portal.services.errors import ServiceError

MAX_QUERY = 200


@groups_bp.route("/")
@require_permission(PEOPLE_VIEW)
def index() -> Response:
    """List the organisation's groups (page, or the table fragment for HTMX)."""
    q = request.args.get("q", "").strip()
    if len(q) > MAX_QUERY:
        return render_error(400, f"Search for at most {MAX_QUERY} characters.")
    page = directory.list_groups(org_id(), q, after=request.args.get("after"),
                                 before=request.args.get("before"),
                                 size=page_size("GROUPS_PAGE_SIZE"))
    return render("groups/index.html", "groups/_table.html", page=page,
                  filters={"q": q} if q else {}, sources=directory.SOURCE_LABELS)


def _group(public_id: str) -> Group:
    group = group_roles.get_group(org_id(), public_id)
    if group is None:
        abort(404)
    return group


def _role_form() -> RoleForm:
    return RoleForm().set_roles(roles.all_roles())


def _members_cursor() -> dict[str, str]:
    """Return the members page being shown (after/before), so a mapping change keeps it.

    A mapping form sends the members table's current cursor (hx-include, or the query
    string of its action without JavaScript); a GET carries it in the query string.
    """
    source = request.form if {"after", "before"} & set(request.form) else request.args
    return {key: source[key] for key in ("after", "before") if source.get(key)}


def _members_page(group: Group, cursor: dict[str, str]) -> directory.Page[directory.PersonRow]:
    return directory.list_people(org_id(), directory.PeopleFilter(group_id=group.id),
                                 after=cursor.get("after"), before=cursor.get("before"),
                                 size=page_size("GROUP_MEMBERS_PAGE_SIZE", 25))


def _detail(group: Group, *, status: int = 200, mapping_error: str | None = None,
            confirm_role: Role | None = None,
            fragment: str = "groups/detail.html") -> Response:
    """Render the group's page, or one of its sections for HTMX."""
    events = directory.history(org_id(), group.public_id)
    all_roles = roles.all_roles()
    cursor = _members_cursor()
    return render(
        "groups/detail.html", fragment, status,
        group=group, mapped=group_roles.mapped_roles(group),
        members=_members_page(group, cursor), members_cursor=cursor,
        events=events, details=audit_details.readable(org_id(), events),
        role_form=RoleForm().set_roles(all_roles),
        confirm_roles=[r for r in all_roles if group_roles.needs_confirmation(r)],
        mapping_error=mapping_error, confirm_role=confirm_role,
        sources=directory.SOURCE_LABELS, status_labels=directory.STATUS_LABELS,
    )


@groups_bp.route("/<public_id>")
@require_permission(PEOPLE_VIEW)
def detail(public_id: str) -> Response:
    """Show a group: mapped roles, members (paginated; the table alone for HTMX), history."""
    return _detail(_group(public_id), fragment="groups/_members.html")


def _after_mapping_change(group: Group, message: str) -> Response:
    if request.headers.get("HX-Request"):
        # The members' roles and the history changed too: they come along out of band.
        return _detail(group, fragment="groups/_mapping_change.html")
    flash(message, "success")
    cursor: dict[str, Any] = _members_cursor()
    return redirect(url_for("groups.detail", public_id=group.public_id, **cursor))


def _refused(group: Group, message: str, confirm_role: Role | None = None) -> Response:
    return _detail(group, status=422, mapping_error=message, confirm_role=confirm_role,
                   fragment="groups/_mappings.html")


@groups_bp.route("/<public_id>/roles", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def map_role(public_id: str) -> Response:
    """Map the group to a role: its members hold it while in the group (IAM roles: confirmed)."""
    group = _group(public_id)
    form = _role_form()
    if not form.validate_on_submit():
        return _refused(group, form.error_message())
    role = db.session.get(Role, form.role_id.data)
    assert role is not None  # the form only accepts existing roles
    try:
        changed = group_roles.map_group(
            group, role, actor(),
            granter_permissions=roles.permanent_permissions(current_membership()),
            confirmed=request.form.get("confirm") == "yes")
    except group_roles.ConfirmationRequired as exc:
        return _refused(group, str(exc), confirm_role=role)
    except ServiceError as exc:
        return _refused(group, str(exc))
    return _after_mapping_change(group, f"Members of {group.display_name} now hold {role.name}."
                                 if changed else f"{group.display_name} was already mapped to "
                                 f"{role.name}.")


@groups_bp.route("/<public_id>/roles/<int:role_id>/unmap", methods=["POST"])
@require_permission(PEOPLE_MANAGE)
def unmap_role(public_id: str, role_id: int) -> Response:
    """Remove a mapping (refused if nobody could manage IAM afterwards)."""
    group = _group(public_id)
    role = db.session.get(Role, role_id)
    if role is None:
        abort(404)
    try:
        changed = group_roles.unmap_group(group, role, actor())
    except ServiceError as exc:
        return _refused(group, str(exc))
    return _after_mapping_change(group, f"Members of {group.display_name} no longer hold "
                                 f"{role.name} through this group." if changed else
                                 f"{group.display_name} was not mapped to {role.name}.")
