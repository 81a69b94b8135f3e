"""What we serve: schema URNs, the attribute → column catalogue, and the Schema documents.

The Schema documents are scim2-models' own definitions of RFC 7643 User, EnterpriseUser
and Group, adjusted where our storage differs, so /Schemas describes exactly what is
stored and returned: group members are Users only (no nested groups) and their
`display` is derived (read-only), and the manager's `$ref` is optional on input (Entra
sends a bare id); `active` is required because a User here always has a status.
"""

from __future__ import annotations

from typing import Any

from scim2_models import Context, EnterpriseUser, Mutability, Required, Schema, User
from scim2_models import Group as ScimGroup

from portal.models import Group, MemberEmail, Membership

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# Simple string attributes of a User: SCIM name -> Membership column.
USER_STRINGS: dict[str, str] = {
    "externalId": "external_id", "displayName": "display_name", "nickName": "nick_name",
    "profileUrl": "profile_url", "title": "title", "userType": "user_type",
    "preferredLanguage": "preferred_language", "locale": "locale", "timezone": "timezone",
}
NAME_PARTS: dict[str, str] = {
    "formatted": "name_formatted", "familyName": "family_name", "givenName": "given_name",
    "middleName": "middle_name", "honorificPrefix": "honorific_prefix",
    "honorificSuffix": "honorific_suffix",
}
ENTERPRISE_STRINGS: dict[str, str] = {
    "employeeNumber": "employee_number", "costCenter": "cost_center",
    "organization": "organization", "division": "division", "department": "department",
}
EMAIL_PARTS = ("value", "type", "primary", "display")
_PLAIN_PARTS = ("value", "display", "type", "primary")
# Multi-valued complex attributes kept in Membership.extra_attributes, with their sub-attributes.
EXTRA_MULTI: dict[str, tuple[str, ...]] = {
    "phoneNumbers": _PLAIN_PARTS, "ims": _PLAIN_PARTS, "photos": _PLAIN_PARTS,
    "addresses": ("formatted", "streetAddress", "locality", "region", "postalCode", "country",
                  "type", "primary"),
    "entitlements": _PLAIN_PARTS, "roles": _PLAIN_PARTS, "x509Certificates": _PLAIN_PARTS,
}
# Attributes a client may send but never sets (RFC 7643 readOnly, or ignored by design).
IGNORED_USER_KEYS = frozenset({"schemas", "id", "meta", "groups", "password"})
IGNORED_GROUP_KEYS = frozenset({"schemas", "id", "meta"})

EXTRA_TEXT_LIMIT = 2048  # each sub-attribute value of an extra_attributes entry


def column_length(model: Any, column: str) -> int:
    """Return the declared length of a string column."""
    length: int = model.__table__.c[column].type.length
    return length


USER_NAME_MAX = column_length(Membership, "user_name")
EMAIL_MAX = column_length(MemberEmail, "value")
EMAIL_TYPE_MAX = column_length(MemberEmail, "type")
GROUP_NAME_MAX = column_length(Group, "display_name")
GROUP_EXTERNAL_ID_MAX = column_length(Group, "external_id")

CANONICAL_USER: dict[str, str] = {
    name.lower(): name
    for name in ("userName", "name", "active", "emails", "manager", *USER_STRINGS,
                 *EXTRA_MULTI, *ENTERPRISE_STRINGS, *IGNORED_USER_KEYS)
}
CANONICAL_GROUP: dict[str, str] = {
    name.lower(): name for name in ("displayName", "externalId", "members", *IGNORED_GROUP_KEYS)
}


def canonical_key(name: str, known: dict[str, str]) -> str | None:
    """Return the canonical spelling of an attribute name, or None when unknown."""
    return known.get(name.lower())


def _adjust(attributes: list[Any], name: str, **changes: Any) -> None:
    for attribute in attributes:
        if attribute.name == name:
            for key, value in changes.items():
                setattr(attribute, key, value)


def _schema_documents() -> list[Schema]:
    user = User.to_schema()
    # `active` always has a value here (a POST without it creates an active User), so it is
    # never unassigned: declared required, and a PATCH `remove` of it is refused.
    _adjust(user.attributes or [], "active", required=Required.true)
    enterprise = EnterpriseUser.to_schema()
    manager = next(a for a in enterprise.attributes or [] if a.name == "manager")
    _adjust(manager.sub_attributes or [], "$ref", required=Required.false)
    enterprise.name = "EnterpriseUser"
    group = ScimGroup.to_schema()
    members = next(a for a in group.attributes or [] if a.name == "members")
    subs = members.sub_attributes or []
    _adjust(subs, "$ref", reference_types=["User"])
    _adjust(subs, "type", canonical_values=["User"])
    _adjust(subs, "display", mutability=Mutability.read_only)
    user.description = "A person in the organisation (RFC 7643 §4.1)."
    enterprise.description = "Enterprise User extension (RFC 7643 §4.3)."
    group.description = "A group of Users synced from the identity provider (RFC 7643 §4.2)."
    return [user, enterprise, group]


SCHEMAS: list[Schema] = _schema_documents()


def schema_document(schema: Schema, base_url: str) -> dict[str, Any]:
    """Return one Schema document with its meta, as JSON."""
    body: dict[str, Any] = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["meta"] = {"resourceType": "Schema", "location": f"{base_url}/Schemas/{schema.id}"}
    return body
