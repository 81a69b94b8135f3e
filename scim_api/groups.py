"""The /Groups endpoints: thin views over portal.services.scim_groups.

A Group PATCH answers 204 No Content (with the new ETag), as RFC 7644 §3.5.2 allows and
Entra prefers: the full representation lists every member, and building it after each
membership change would load the whole member list that the change itself never needs.
A PATCH that asks for a representation (`attributes` or `excludedAttributes`) gets 200
with it.
"""

from __future__ import annotations

from flask import Response, request

from portal.extensions import db
from portal.models import Group
from portal.services import scim_groups
from portal.services.organisations import scim_base_url
from scim_api import bp
from scim_api.auth import current_actor, current_org
from scim_api.bodies import group_data, invalid, text
from scim_api.filters import Filter, matches
from scim_api.http import (
    check_if_match,
    empty_response,
    etag_of,
    json_object,
    not_modified,
    query_arg,
    scim_response,
)
from scim_api.listing import query_from_args, query_from_body, run, single_projection
from scim_api.patch import GroupPatch, parse_operations
from scim_api.projection import Projection
from scim_api.schema import GROUP_EXTERNAL_ID_MAX, GROUP_NAME_MAX
from scim_api.serialize import group_document, load_members
from scim_api.users import ALL_METHODS, CHANGES, not_allowed


def group_response(group: Group, status: int = 200, *, location: bool = False) -> Response:
    """Answer with the Group as the request's attributes/excludedAttributes ask."""
    db.session.flush()
    projection = single_projection()
    members = load_members([group], projection).get(group.id, [])
    doc = group_document(group, members, scim_base_url(current_org()))
    url = str(doc["meta"]["location"])
    return scim_response(projection.apply(doc), status, location=url if location else None,
                         version=group.version)


@bp.route("/Groups", methods=ALL_METHODS, strict_slashes=False)
def groups(org_key: str) -> Response:
    """List or filter Groups (GET), or create one (POST)."""
    org = current_org()
    if request.method in ("GET", "HEAD"):
        return scim_response(run(org, ("Group",), query_from_args(), scim_base_url(org)))
    if request.method != "POST":
        raise not_allowed()
    data = group_data(json_object())
    group = scim_groups.create_group(org, data.display_name, data.external_id,
                                     data.member_ids or [], current_actor())
    return group_response(group, 201, location=True)


@bp.route("/Groups/.search", methods=ALL_METHODS, strict_slashes=False)
def groups_search(org_key: str) -> Response:
    """Search Groups with a SearchRequest body."""
    if request.method != "POST":
        raise not_allowed()
    org = current_org()
    return scim_response(run(org, ("Group",), query_from_body(json_object()),
                             scim_base_url(org)))


@bp.route("/.search", methods=ALL_METHODS, strict_slashes=False)
def root_search(org_key: str) -> Response:
    """Search Users and Groups at once (RFC 7644 §3.4.3)."""
    if request.method != "POST":
        raise not_allowed()
    org = current_org()
    return scim_response(run(org, ("User", "Group"), query_from_body(json_object()),
                             scim_base_url(org)))


class _MembersMatching:
    """Which members match a removal filter (`GroupPatch.members_matching`) for one group.

    The stored members and their names are read once, on the first filtered removal; ids
    an earlier operation of the same PATCH added are looked up by id.
    """

    def __init__(self, group: Group) -> None:
        self.group = group
        self.stored: list[tuple[str, str | None]] | None = None

    def __call__(self, value_filter: Filter, ids: list[str] | None) -> list[str]:
        if self.stored is None:
            self.stored = load_members([self.group], Projection()).get(self.group.id, [])
        if ids is None:
            candidates = self.stored
        else:
            names = dict(self.stored)
            names.update(scim_groups.display_names(
                self.group.org_scope, [i for i in ids if i not in names]))
            candidates = [(i, names[i]) for i in ids if i in names]
        return [public_id for public_id, display in candidates
                if matches(value_filter, {"value": public_id, "display": display,
                                          "type": "User"}, attr="members")]


def _patch(group: Group) -> Response:
    patch = GroupPatch(group.display_name, group.external_id, group.public_id,
                       _MembersMatching(group))
    for operation in parse_operations(json_object()):
        patch.apply(operation)
    name = (text(patch.display_name, "displayName", GROUP_NAME_MAX) or "").strip()
    if not name:
        raise invalid("displayName is required; it cannot be removed.")
    external_id = text(patch.external_id, "externalId", GROUP_EXTERNAL_ID_MAX)
    actor = current_actor()
    scim_groups.update_group(group, name, external_id, actor)
    if patch.replace is not None:
        scim_groups.set_members(group, list(patch.replace), actor)
    else:
        scim_groups.add_members(group, list(patch.add), actor)
        scim_groups.remove_members(group, list(patch.remove), actor)
    if query_arg("attributes") or query_arg("excludedAttributes"):
        return group_response(group)
    db.session.flush()
    response = empty_response(204)
    response.headers["ETag"] = etag_of(group.version)
    return response


@bp.route("/Groups/<group_id>", methods=ALL_METHODS, strict_slashes=False)
def group(org_key: str, group_id: str) -> Response:
    """Read, replace, patch or delete one Group."""
    if request.method == "POST":
        raise not_allowed()
    found = scim_groups.get_group(current_org(), group_id, for_update=request.method in CHANGES)
    if request.method in ("GET", "HEAD"):
        if not_modified(found.version):
            response = empty_response(304)
            response.headers["ETag"] = etag_of(found.version)
            return response
        return group_response(found)
    check_if_match(found.version)
    actor = current_actor()
    if request.method == "DELETE":
        scim_groups.delete_group(found, actor)
        return empty_response(204)
    if request.method == "PATCH":
        return _patch(found)
    data = group_data(json_object(), found.public_id)
    scim_groups.update_group(found, data.display_name, data.external_id, actor)
    if data.member_ids is not None:
        scim_groups.set_members(found, data.member_ids, actor)
    return group_response(found)
