"""The /Users endpoints: thin views over portal.services.scim_users."""

from __future__ import annotations

from flask import Response, request

from portal.models import Membership
from portal.services import scim_users
from portal.services.organisations import scim_base_url
from scim_api import bp
from scim_api.auth import current_actor, current_org
from scim_api.bodies import user_data
from scim_api.errors import ScimError
from scim_api.http import (
    check_if_match,
    empty_response,
    json_object,
    not_modified,
    scim_response,
)
from scim_api.listing import query_from_args, query_from_body, run, single_projection
from scim_api.patch import parse_operations
from scim_api.projection import Projection
from scim_api.serialize import load_user_parts, user_document
from scim_api.user_patch import UserPatch

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CHANGES = frozenset({"PUT", "PATCH", "DELETE"})  # the methods that change one resource


def not_allowed() -> ScimError:
    """Return a 405 SCIM error for the current method."""
    return ScimError(f"{request.method} is not allowed on this endpoint.", status=405)


def full_document(member: Membership) -> dict[str, object]:
    """Return the complete representation of a User."""
    everything = Projection()
    return user_document(member, load_user_parts([member], everything),
                         scim_base_url(current_org()))


def user_response(member: Membership, status: int = 200, *, location: bool = False) -> Response:
    """Answer with the User as the request's attributes/excludedAttributes ask."""
    projection = single_projection()
    doc = user_document(member, load_user_parts([member], projection),
                        scim_base_url(current_org()))
    url = str(doc["meta"]["location"])
    return scim_response(projection.apply(doc), status, location=url if location else None,
                         version=member.version)


@bp.route("/Users", methods=ALL_METHODS, strict_slashes=False)
def users(org_key: str) -> Response:
    """List or filter Users (GET), or provision one (POST)."""
    org = current_org()
    if request.method in ("GET", "HEAD"):
        return scim_response(run(org, ("User",), query_from_args(), scim_base_url(org)))
    if request.method != "POST":
        raise not_allowed()
    data = user_data(json_object(), creating=True)
    member = scim_users.create_user(org, data, current_actor())
    return user_response(member, 201, location=True)


@bp.route("/Users/.search", methods=ALL_METHODS, strict_slashes=False)
def users_search(org_key: str) -> Response:
    """Search Users with a SearchRequest body."""
    if request.method != "POST":
        raise not_allowed()
    org = current_org()
    return scim_response(run(org, ("User",), query_from_body(json_object()), scim_base_url(org)))


@bp.route("/Users/<user_id>", methods=ALL_METHODS, strict_slashes=False)
def user(org_key: str, user_id: str) -> Response:
    """Read, replace, patch or deprovision one User."""
    if request.method == "POST":
        raise not_allowed()
    member = scim_users.get_user(current_org(), user_id, for_update=request.method in CHANGES)
    if request.method in ("GET", "HEAD"):
        if not_modified(member.version):
            response = empty_response(304)
            response.headers["ETag"] = f'W/"{member.version}"'
            return response
        return user_response(member)
    check_if_match(member.version)
    if request.method == "DELETE":
        scim_users.delete_user(member, current_actor())
        return empty_response(204)
    if request.method == "PUT":
        data = user_data(json_object(), creating=False, resource_id=member.public_id,
                         current_user_name=member.user_name)
    else:
        operations = parse_operations(json_object())
        patch = UserPatch(full_document(member))
        for operation in operations:
            patch.apply(operation)
        data = user_data(patch.body(), creating=False, current_user_name=member.user_name)
    scim_users.replace_user(member, data, current_actor())
    return user_response(member)
