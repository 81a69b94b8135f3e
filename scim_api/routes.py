"""The catch-all: any other path under the base URL is a SCIM 404.

Blueprint 404 handlers never see unmatched URLs, so this is a route; the base URL
itself answers the same way.
"""

from __future__ import annotations

from flask import Response

from scim_api import bp
from scim_api.errors import scim_error_response

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route("", methods=ALL_METHODS)
@bp.route("/", methods=ALL_METHODS)
def base(org_key: str) -> Response:
    """Answer the base URL itself with a SCIM 404 pointing at the endpoints."""
    return scim_error_response(404, "This is a SCIM base URL; use /Users, /Groups or the "
                                    "discovery endpoints under it.")


@bp.route("/<path:rest>", methods=ALL_METHODS)
def not_found(org_key: str, rest: str) -> Response:
    """Answer any unknown path under the base URL with a SCIM 404."""
    return scim_error_response(404, f"There is no SCIM endpoint at /{rest[:200]}.")
