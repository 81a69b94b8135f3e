"""Reading User and Group bodies as real IdPs send them, into typed service input.

Deliberately lenient (see docs IDP-COMPAT.md): attribute names in any case, `null` as
unset, `"True"`/`"False"` strings, a multi-valued attribute sent as one object
(OneLogin), URN-prefixed keys, unknown schema URNs, a malformed enterprise URN and the
read-only `id`/`meta`/`groups` ignored, `password` ignored (never stored). scim2-models'
pydantic models reject several of these payloads, which is why this module does not
validate bodies with them; it checks every value's type and length instead, so a bad
body is a 400 `invalidValue` and never a database error. String attributes take JSON
strings (RFC 7643 §2.3.1); profile attributes also take a JSON integer as its text,
because OneLogin's bodies are admin-written templates, while identifiers (userName),
emails and references refuse anything but a string. A PUT body
may carry the resource's own `id` (Okta re-sends it); a different `id` is a 400
`mutability` rather than ignored (RFC 7644 §3.5.1 would allow ignoring it), because a
body written for another resource must not overwrite this one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portal.models import Membership
from portal.services.scim_users import EmailData, UserData
from scim_api.errors import ScimError
from scim_api.schema import (
    CORE_GROUP,
    CORE_USER,
    EMAIL_MAX,
    EMAIL_TYPE_MAX,
    ENTERPRISE_STRINGS,
    ENTERPRISE_USER,
    EXTRA_MULTI,
    EXTRA_TEXT_LIMIT,
    GROUP_EXTERNAL_ID_MAX,
    GROUP_NAME_MAX,
    NAME_PARTS,
    USER_NAME_MAX,
    USER_STRINGS,
    column_length,
)

_CORE_PREFIXES = (CORE_USER.lower() + ":", CORE_GROUP.lower() + ":")
_ENTERPRISE = ENTERPRISE_USER.lower()


def invalid(detail: str) -> ScimError:
    """Return a 400 invalidValue error."""
    return ScimError(detail, scim_type="invalidValue")


def text(value: Any, label: str, limit: int, *, integers: bool = False) -> str | None:
    """Read a string attribute: None or "" unset, anything but a JSON string refused.

    With `integers`, a JSON integer is read as its decimal text: OneLogin's bodies are
    templates an admin writes, where an unquoted `{$user.employee_id}` is a number. Only
    profile attributes take that; identifiers, emails and references never do.
    """
    if value is None:
        return None
    if integers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise invalid(f"{label} must be a string, not {_json_type(value)}.")
    if "\x00" in value:
        raise invalid(f"{label} must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{label} is not valid Unicode text.") from None
    if len(value) > limit:
        raise invalid(f"{label} is longer than {limit} characters.")
    return value or None


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (int | float, "a number"), (dict, "an object"),
                       (list, "a list")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


# Control characters and line/paragraph separators: no identifier holds them.
_NOT_IN_IDENTIFIERS = frozenset({"Cc", "Zl", "Zp"})


def identifier(value: Any, label: str, limit: int, current: str | None = None) -> str:
    """Read an identifier (userName): a non-empty string without control characters.

    Surrounding whitespace (a template's trailing newline) is trimmed first. The stored
    value (`current`) is taken as it is: a User saved before this rule must still be
    deactivated by a PATCH that re-reads the whole document.
    """
    found = (text(value, label, limit) or "").strip()
    if not found:
        raise invalid(f"{label} is required.")
    if found != current and any(unicodedata.category(c) in _NOT_IN_IDENTIFIERS
                                for c in found):
        raise invalid(f"{label} must not contain control characters (tab, newline...).")
    return found


def check_own_id(value: Any, resource_id: str | None) -> None:
    """Refuse a body's `id` that names another resource (the resource's own id is fine)."""
    if value in (None, "") or resource_id is None:
        return  # null or "" is unset; on POST the server assigns the id, the body's is ignored
    if not (isinstance(value, str) and value.strip().lower() == resource_id.lower()):
        raise ScimError(f"id is read-only: it cannot be changed to {str(value)[:80]!r}.",
                        scim_type="mutability")


def boolean(value: Any, label: str) -> bool | None:
    """Read a boolean, accepting Entra's and OneLogin's "True"/"false" strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid(f"{label} must be true or false.")


def items(value: Any, label: str) -> list[dict[str, Any]]:
    """Read a multi-valued attribute: a list, or one object (OneLogin), of objects."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise invalid(f"{label} must be a list of objects.")
    result = []
    for item in value:
        if isinstance(item, str):
            item = {"value": item}
        if not isinstance(item, dict):
            raise invalid(f"Each entry of {label} must be an object.")
        result.append({k.lower(): v for k, v in item.items() if isinstance(k, str)})
    return result


def split_user_body(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a User body into core and enterprise attributes, keyed by lower-case name."""
    core: dict[str, Any] = {}
    enterprise: dict[str, Any] = {}
    for key, value in body.items():
        if not isinstance(key, str):
            continue
        lower = key.lower()
        if lower == _ENTERPRISE:
            if isinstance(value, dict):
                enterprise.update({k.lower(): v for k, v in value.items() if isinstance(k, str)})
            elif value is not None:
                raise invalid(f"{ENTERPRISE_USER} must be an object.")
        elif lower.startswith(_ENTERPRISE + ":"):
            enterprise[lower[len(_ENTERPRISE) + 1:]] = value
        elif lower.startswith(_CORE_PREFIXES):
            core[lower.rsplit(":", 1)[1]] = value
        elif not lower.startswith("urn:"):  # unknown or malformed schema URNs are ignored
            core[lower] = value
    return core, enterprise


def _length(column: str) -> int:
    return column_length(Membership, column)


def _emails(value: Any) -> list[EmailData]:
    emails: list[EmailData] = []
    for item in items(value, "emails"):
        address = text(item.get("value"), "emails.value", EMAIL_MAX)
        if address is None:  # OneLogin templates send empty secondary emails
            continue
        primary = bool(boolean(item.get("primary"), "emails.primary"))
        if primary and any(e.primary for e in emails):
            primary = False  # RFC 7643 §2.4: "primary" true at most once
        emails.append(EmailData(value=address, primary=primary,
                                type=text(item.get("type"), "emails.type", EMAIL_TYPE_MAX),
                                display=text(item.get("display"), "emails.display", EMAIL_MAX)))
    return emails


def _extra(name: str, value: Any) -> list[dict[str, Any]]:
    parts = {part.lower(): part for part in EXTRA_MULTI[name]}
    result = []
    for item in items(value, name):
        entry: dict[str, Any] = {}
        for key, raw in item.items():
            part = parts.get(key)
            if part == "primary":
                flag = boolean(raw, f"{name}.primary")
                if flag is not None:
                    entry[part] = flag
            elif part is not None:
                clean = text(raw, f"{name}.{part}", EXTRA_TEXT_LIMIT, integers=True)
                if clean:
                    entry[part] = clean
        if entry:
            result.append(entry)
    return result


def manager_id(value: Any) -> str | None:
    """Read the manager: a bare id (Entra), {"value": id}, a list of those, or "" to remove."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        lowered = {k.lower(): v for k, v in value.items() if isinstance(k, str)}
        value = lowered.get("value")
        if value in (None, "") and isinstance(lowered.get("$ref"), str):
            value = lowered["$ref"].rstrip("/").rsplit("/", 1)[-1]
    return text(value, "manager", 100)


def user_data(body: Mapping[str, Any], *, creating: bool, resource_id: str | None = None,
              current_user_name: str | None = None) -> UserData:
    """Read a POST/PUT User body; a PUT without `active` leaves it unchanged."""
    core, enterprise = split_user_body(body)
    check_own_id(core.get("id"), resource_id)
    user_name = identifier(core.get("username"), "userName", USER_NAME_MAX, current_user_name)
    profile: dict[str, str | None] = {}
    for key, column in USER_STRINGS.items():
        if key != "externalId":
            profile[column] = text(core.get(key.lower()), key, _length(column),
                                   integers=True)
    name = core.get("name")
    if isinstance(name, str):
        name = {"formatted": name}
    if name is not None and not isinstance(name, dict):
        raise invalid("name must be an object.")
    name = {k.lower(): v for k, v in (name or {}).items() if isinstance(k, str)}
    for key, column in NAME_PARTS.items():
        profile[column] = text(name.get(key.lower()), f"name.{key}", _length(column),
                               integers=True)
    for key, column in ENTERPRISE_STRINGS.items():
        profile[column] = text(enterprise.get(key.lower()), key, _length(column),
                               integers=True)
    active = boolean(core.get("active"), "active")
    return UserData(
        user_name=user_name,
        active=True if active is None and creating else active,
        external_id=text(core.get("externalid"), "externalId", _length("external_id"),
                         integers=True),
        profile=profile,
        emails=_emails(core.get("emails")),
        extra={name: _extra(name, core.get(name.lower())) for name in EXTRA_MULTI},
        manager_id=manager_id(enterprise.get("manager")),
    )


@dataclass
class GroupData:
    """A Group body: its name, externalId and (when sent) the full member list."""

    display_name: str
    external_id: str | None
    member_ids: list[str] | None


def member_ids(value: Any) -> list[str]:
    """Read a members value: objects with `value` (or `$ref`), or bare ids."""
    ids = []
    for item in items(value, "members"):
        member = item.get("value")
        if member in (None, "") and isinstance(item.get("$ref"), str):
            member = item["$ref"].rstrip("/").rsplit("/", 1)[-1]
        member = text(member, "members.value", 100)
        if not member:
            raise invalid("Each member needs a value (the User id).")
        ids.append(member)
    return ids


def group_data(body: Mapping[str, Any], resource_id: str | None = None) -> GroupData:
    """Read a POST/PUT Group body; without `members` the member list is left alone."""
    core = {key.lower().rsplit(":", 1)[-1] if key.lower().startswith(_CORE_PREFIXES)
            else key.lower(): value for key, value in body.items() if isinstance(key, str)}
    check_own_id(core.get("id"), resource_id)
    name = (text(core.get("displayname"), "displayName", GROUP_NAME_MAX) or "").strip()
    if not name:
        raise invalid("displayName is required.")
    members = core.get("members")
    return GroupData(
        display_name=name,
        external_id=text(core.get("externalid"), "externalId", GROUP_EXTERNAL_ID_MAX),
        member_ids=None if "members" not in core else member_ids(members),
    )
