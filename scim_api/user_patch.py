"""PATCH for Users, with the dialects real IdPs speak.

A User PATCH is applied in memory to the User's full representation, then read back
through the same lenient reader as a PUT and written once: any invalid operation (the
last of 1,000 included) fails the whole request before anything is written.
Tolerated: path-less add/replace whose value mixes plain, dotted (`name.givenName`) and
URN-prefixed keys (Entra, Okta); `"active": "False"`; add/replace on
`emails[type eq "work"].value` matching nothing creates the element and keeps the others
(Entra); the manager as a bare id, an object or a list, and `""` to remove it; read-only
attributes, `password` and unknown schema URNs ignored. A path naming `id` or `meta`
(RFC 7643 readOnly) is a 400 `mutability`; a path-less value may carry the User's own
`id` (Okta) and `meta`, which are ignored, but a different `id` is a 400 `mutability`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from scim_api.bodies import check_own_id, invalid, items
from scim_api.errors import ScimError
from scim_api.filters import AttrPath, matches, parse_path
from scim_api.patch import Operation, equality_terms, refuse_read_only
from scim_api.schema import CORE_USER, EMAIL_PARTS, ENTERPRISE_USER, EXTRA_MULTI, NAME_PARTS

USER_MULTI = frozenset({"emails", *(name.lower() for name in EXTRA_MULTI)})
USER_COMPLEX = frozenset({"name", "manager"})
USER_READ_ONLY = frozenset({"id", "meta", "groups", "schemas", "password"})
ENTERPRISE_ATTRS = frozenset({"employeenumber", "costcenter", "organization", "division",
                              "department", "manager"})
USER_ATTRS = frozenset({"username", "externalid", "displayname", "nickname", "profileurl",
                        "title", "usertype", "preferredlanguage", "locale", "timezone",
                        "active", "name", *USER_MULTI})
SUB_ATTRIBUTES: dict[str, frozenset[str]] = {
    "name": frozenset(part.lower() for part in NAME_PARTS),
    "manager": frozenset({"value", "$ref", "displayname"}),
    "emails": frozenset(EMAIL_PARTS),
    **{name.lower(): frozenset(part.lower() for part in parts)
       for name, parts in EXTRA_MULTI.items()},
}


def _lower_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in value.items() if isinstance(k, str)}


class UserPatch:
    """Apply operations to a User's representation, in memory."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.resource_id: str | None = doc.get("id")
        self.core: dict[str, Any] = {}
        self.enterprise: dict[str, Any] = {}
        for key, value in copy.deepcopy(dict(doc)).items():
            if key == ENTERPRISE_USER:
                self.enterprise = _lower_keys(value)
            elif key.lower() not in USER_READ_ONLY:
                self.core[key.lower()] = value
        for key in ("name", "manager"):
            for container in (self.core, self.enterprise):
                if isinstance(container.get(key), dict):
                    container[key] = _lower_keys(container[key])
        for key in USER_MULTI:
            if key in self.core:
                self.core[key] = items(self.core[key], key)

    def body(self) -> dict[str, Any]:
        """Return the patched User as a body for the User reader."""
        return {**self.core, ENTERPRISE_USER: self.enterprise}

    def apply(self, operation: Operation) -> None:
        """Apply one operation."""
        if operation.path is None:
            self._apply_pathless(operation)
        else:
            self._apply_path(operation.op, operation.path, operation.value, strict=True)

    def _apply_pathless(self, operation: Operation) -> None:
        if not isinstance(operation.value, dict):
            raise invalid(f"{operation.op} without a path needs an object as its value.")
        for key, value in operation.value.items():
            if not isinstance(key, str):
                continue
            if key.lower() == ENTERPRISE_USER.lower():
                if isinstance(value, dict):
                    for sub_key, sub_value in value.items():
                        self._apply_key(operation.op, f"{ENTERPRISE_USER}:{sub_key}", sub_value)
                elif value is not None:
                    raise invalid(f"{ENTERPRISE_USER} must be an object.")
                continue
            self._apply_key(operation.op, key, value)

    def _apply_key(self, op: str, key: str, value: Any) -> None:
        try:
            path = parse_path(key)
        except ScimError:
            return  # a key that is no attribute name at all is ignored, like unknown ones
        self._apply_path(op, path, value, strict=False)

    def _target(self, path: AttrPath, strict: bool) -> tuple[dict[str, Any], str] | None:
        schema = (path.schema or "").lower()
        if schema == ENTERPRISE_USER.lower():
            if not path.attr:
                return self.enterprise, ""
            if path.attr not in ENTERPRISE_ATTRS:
                if strict:
                    raise ScimError(f"The enterprise extension has no attribute {path.attr!r}.",
                                    scim_type="invalidPath")
                return None
            return self.enterprise, path.attr
        if schema and schema != CORE_USER.lower():
            return None  # an unknown schema URN is ignored
        if path.attr in USER_READ_ONLY:
            return None  # groups, schemas and password are ignored (id, meta: _apply_path)
        if path.attr in ENTERPRISE_ATTRS:
            return self.enterprise, path.attr
        if path.attr in USER_ATTRS:
            return self.core, path.attr
        if strict:
            raise ScimError(f"Users have no attribute {path.attr!r}.", scim_type="invalidPath")
        return None

    def _apply_path(self, op: str, path: AttrPath, value: Any, *, strict: bool) -> None:
        if refuse_read_only(path, strict, CORE_USER):
            check_own_id(value if path.attr == "id" else None, self.resource_id)
            return
        target = self._target(path, strict)
        if target is None:
            return
        container, attr = target
        sub = path.sub_attr
        if strict and sub is not None and attr in SUB_ATTRIBUTES and sub not in SUB_ATTRIBUTES[attr]:
            raise ScimError(f"{attr!r} has no sub-attribute {sub!r}.", scim_type="invalidPath")
        if attr == "":  # the whole enterprise extension
            if op == "remove":
                container.clear()
            elif isinstance(value, dict):
                for key, sub_value in value.items():
                    self._apply_key(op, f"{ENTERPRISE_USER}:{key}", sub_value)
            elif value is not None:
                raise invalid(f"{ENTERPRISE_USER} must be an object.")
            return
        if attr in USER_MULTI:
            self._multi(op, container, attr, path, value)
        elif path.value_filter is not None:
            raise ScimError(f"{attr!r} is not multi-valued; it takes no filter.",
                            scim_type="invalidPath")
        elif attr in USER_COMPLEX:
            self._complex(op, container, attr, path.sub_attr, value)
        elif path.sub_attr is not None:
            raise ScimError(f"{attr!r} has no sub-attributes.", scim_type="invalidPath")
        elif op == "remove":
            if attr == "active":
                raise invalid("active cannot be removed; replace it with false to deactivate.")
            container.pop(attr, None)
        else:
            container[attr] = value

    @staticmethod
    def _complex(op: str, container: dict[str, Any], attr: str, sub: str | None,
                 value: Any) -> None:
        if attr == "manager" and (sub in (None, "value")):
            # Entra: a bare id, {"value": id}, a list of {$ref, value}; "" then Remove to unset.
            if op == "remove" or value in ("", None, []):
                container.pop(attr, None)
            else:
                container[attr] = value if sub is None else {"value": value}
            return
        current = container.get(attr)
        current = current if isinstance(current, dict) else {}
        if sub is not None:
            if op == "remove" or value is None:
                current.pop(sub, None)
            else:
                current[sub] = value
        elif op == "remove" or value is None:
            current = {}
        elif isinstance(value, dict):
            current.update(_lower_keys(value))  # RFC 7644 §3.5.2.3: unnamed sub-attributes stay
        else:
            container[attr] = value  # not an object: the User reader reports it
            return
        if current:
            container[attr] = current
        else:
            container.pop(attr, None)

    @staticmethod
    def _multi(op: str, container: dict[str, Any], attr: str, path: AttrPath,
               value: Any) -> None:
        elements: list[dict[str, Any]] = list(container.get(attr) or [])
        sub = path.sub_attr
        if path.value_filter is not None:
            hits = [i for i, item in enumerate(elements)
                    if matches(path.value_filter, item, attr=attr)]
        else:
            hits = list(range(len(elements)))
        if op == "remove":
            if sub is not None:
                for i in hits:
                    elements[i].pop(sub, None)
            elif path.value_filter is None and value is not None:
                gone = {str(v.get("value")).lower() for v in items(value, attr)}
                elements = [e for e in elements if str(e.get("value")).lower() not in gone]
            else:
                elements = [e for i, e in enumerate(elements) if i not in hits]
        elif sub is not None:
            if not hits:  # Entra: `emails[type eq "work"].value` creates the element
                new = equality_terms(path.value_filter) if path.value_filter else {}
                elements.append(new)
                hits = [len(elements) - 1]
            for i in hits:
                elements[i][sub] = value
        elif path.value_filter is not None:
            replacement = items(value, attr)
            if not hits:
                elements.extend({**equality_terms(path.value_filter), **r} for r in replacement)
            else:
                for i in hits:
                    merged = {**elements[i], **replacement[0]} if replacement else elements[i]
                    elements[i] = merged if op == "add" else (replacement[0] if replacement
                                                              else elements[i])
        elif op == "replace":
            elements = items(value, attr)
        else:
            for new in items(value, attr):
                same = next((e for e in elements if "value" in new and
                             str(e.get("value")).lower() == str(new["value"]).lower()), None)
                if same is not None:
                    same.update(new)
                else:
                    elements.append(new)
        _single_primary(elements)
        if elements:
            container[attr] = elements
        else:
            container.pop(attr, None)


def _single_primary(elements: list[dict[str, Any]]) -> None:
    """Keep `primary: true` on the last element that claims it (the one just written)."""
    primaries = [e for e in elements if e.get("primary") in (True, "true", "True")]
    for element in primaries[:-1]:
        element["primary"] = False
