"""SCIM errors: a typed hierarchy that maps to the RFC 7644 §3.12 Error response."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from portal.services.errors import Conflict, NotFound, ServiceError

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_CONTENT_TYPE = "application/scim+json"


class ScimError(Exception):
    """An error the SCIM API answers with an Error body."""

    status = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, scim_type: str | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if scim_type is not None:
            self.scim_type = scim_type
        if status is not None:
            self.status = status


def scim_error_response(status: int, detail: str, scim_type: str | None = None) -> Response:
    """Return a SCIM Error response."""
    body: dict[str, object] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    response = Response(json.dumps(body), status=status, content_type=SCIM_CONTENT_TYPE)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="SCIM"'
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


def service_error_response(exc: ServiceError) -> Response:
    """Map a service rule to its SCIM status: 404, 409 uniqueness, else 400 invalidValue."""
    if isinstance(exc, NotFound):
        return scim_error_response(404, str(exc))
    if isinstance(exc, Conflict):
        return scim_error_response(409, str(exc), "uniqueness")
    return scim_error_response(400, str(exc), "invalidValue")


def scim_content_type(response: Response) -> Response:
    """Label every SCIM response application/scim+json (an after_request hook)."""
    response.headers["Content-Type"] = SCIM_CONTENT_TYPE
    return response


def register(bp: Blueprint) -> None:
    """Answer SCIM and service errors raised in the blueprint with SCIM Error bodies."""
    bp.register_error_handler(
        ScimError, lambda exc: scim_error_response(exc.status, exc.detail, exc.scim_type))
    bp.register_error_handler(ServiceError, service_error_response)
