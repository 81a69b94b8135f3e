"""SCIM routes (to be completed by the SCIM service provider issue)."""

from __future__ import annotations

from flask import Response

from scim_api import bp
from scim_api.errors import scim_error_response


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(org_key: str, rest: str) -> Response:
    """Answer any unknown path under the base URL with a SCIM 404."""
    return scim_error_response(404, f"There is no SCIM endpoint at /{rest}.")
