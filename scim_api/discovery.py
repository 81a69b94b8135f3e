"""Discovery (RFC 7644 §4): ServiceProviderConfig, ResourceTypes and Schemas.

The documents are scim2-models objects, so they follow RFC 7643 §5–7 to the letter; they
advertise only what works here: PATCH, filtering (with the page maximum), sorting and
ETags; no bulk, no password change. They need the bearer token like every other SCIM
request (Okta and Entra send it; RFC 7644 leaves that to the server).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Response, request
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Patch,
    ResourceType,
    ServiceProviderConfig,
    Sort,
)

from portal.services.organisations import scim_base_url
from scim_api import bp
from scim_api.auth import current_org
from scim_api.errors import ScimError
from scim_api.http import MAX_COUNT, scim_response
from scim_api.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, LIST_RESPONSE, SCHEMAS
from scim_api.schema import schema_document as _schema_document

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _base() -> str:
    return scim_base_url(current_org())


def _only_get() -> None:
    if request.method not in ("GET", "HEAD"):
        raise ScimError(f"{request.method} is not allowed here; discovery endpoints are "
                        "read-only.", status=405)


def _dump(obj: Any) -> dict[str, Any]:
    body: dict[str, Any] = obj.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return body


# The documents depend only on the base URL: built once per URL and worker (building one
# through scim2-models costs ~0.4 ms). Callers serialise them and never change them.
@lru_cache(maxsize=256)
def service_provider_config(base: str) -> dict[str, Any]:
    """Return the ServiceProviderConfig document (shared: do not modify)."""
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="OAuth Bearer Token",
            description="The organisation's SCIM token, sent as 'Authorization: Bearer <token>'. "
                        "Generate or rotate it on the SCIM Configuration screen.",
            primary=True,
        )],
    )
    body = _dump(config)
    body["meta"] = {"resourceType": "ServiceProviderConfig",
                    "location": f"{base}/ServiceProviderConfig"}
    return body


@lru_cache(maxsize=256)
def resource_types(base: str) -> list[dict[str, Any]]:
    """Return the User and Group ResourceType documents."""
    user = ResourceType.model_validate({
        "id": "User", "name": "User", "endpoint": "/Users", "description": "User Account",
        "schema": CORE_USER, "schemaExtensions": [{"schema": ENTERPRISE_USER, "required": False}],
    })
    group = ResourceType.model_validate({"id": "Group", "name": "Group", "endpoint": "/Groups",
                                         "description": "Group", "schema": CORE_GROUP})
    documents = []
    for resource_type in (user, group):
        body = _dump(resource_type)
        body["meta"] = {"resourceType": "ResourceType",
                        "location": f"{base}/ResourceTypes/{resource_type.id}"}
        documents.append(body)
    return documents


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [LIST_RESPONSE], "totalResults": len(resources),
            "itemsPerPage": len(resources), "startIndex": 1, "Resources": resources}


@bp.route("/ServiceProviderConfig", methods=ALL_METHODS, strict_slashes=False)
def service_provider_config_view(org_key: str) -> Response:
    """Describe the features this SCIM service provider supports."""
    _only_get()
    return scim_response(service_provider_config(_base()))


@bp.route("/ResourceTypes", methods=ALL_METHODS, strict_slashes=False)
def resource_types_view(org_key: str) -> Response:
    """List the resource types served here."""
    _only_get()
    return scim_response(_list(resource_types(_base())))


@bp.route("/ResourceTypes/<name>", methods=ALL_METHODS, strict_slashes=False)
def resource_type_view(org_key: str, name: str) -> Response:
    """Return one resource type."""
    _only_get()
    for document in resource_types(_base()):
        if document["id"].lower() == name.lower():
            return scim_response(document)
    raise ScimError(f"There is no resource type {name[:80]!r}.", status=404)


@bp.route("/Schemas", methods=ALL_METHODS, strict_slashes=False)
def schemas_view(org_key: str) -> Response:
    """List the schemas served here."""
    _only_get()
    base = _base()
    return scim_response(_list([_schema_document(schema, base) for schema in SCHEMAS]))


@bp.route("/Schemas/<path:schema_id>", methods=ALL_METHODS, strict_slashes=False)
def schema_view(org_key: str, schema_id: str) -> Response:
    """Return one schema by its URN."""
    _only_get()
    for schema in SCHEMAS:
        if (schema.id or "").lower() == schema_id.strip("/").lower():
            return scim_response(_schema_document(schema, _base()))
    raise ScimError(f"There is no schema {schema_id[:120]!r}.", status=404)
