"""The PATCH engine (RFC 7644 §3.5.2) with the dialects real IdPs speak.

A User PATCH is applied in memory to the User's full representation, then read back
through the same lenient reader as a PUT and written once: any invalid operation (the
last of 1,000 included) fails the whole request before anything is written. A Group
PATCH compiles its member operations into one add/remove/replace set, written as
targeted INSERT/DELETE statements, so the member list is never loaded to change it.

Tolerated dialects: op names in any case; path-less add/replace whose value mixes plain,
dotted (`name.givenName`) and URN-prefixed keys (Entra, Okta); `"active": "False"`;
add/replace on `emails[type eq "work"].value` matching nothing creates the element
(Entra); the manager as a bare id, an object or a list, and `""` to remove it; member
removal as `members[value eq "x"]` or as `members` with a value list (both Entra
dialects); Okta's group rename with `id` inside the value. scim2-models' PatchOp model
rejects several of these, hence this hand-written engine.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator

from scim_api.bodies import invalid, items, member_ids
from scim_api.errors import ScimError
from scim_api.filters import AttrPath, Filter, matches, parse_path
from scim_api.http import lookup
from scim_api.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, EXTRA_MULTI

OPS = ("add", "replace", "remove")
MAX_OPERATIONS = 10_000
USER_MULTI = frozenset({"emails", *(name.lower() for name in EXTRA_MULTI)})
USER_COMPLEX = frozenset({"name", "manager"})
USER_READ_ONLY = frozenset({"id", "meta", "groups", "schemas", "password"})
ENTERPRISE_ATTRS = frozenset({"employeenumber", "costcenter", "organization", "division",
                              "department", "manager"})
USER_ATTRS = frozenset({"username", "externalid", "displayname", "nickname", "profileurl",
                        "title", "usertype", "preferredlanguage", "locale", "timezone",
                        "active", "name", *USER_MULTI})


@dataclass
class Operation:
    """One PATCH operation, validated for shape."""

    op: str
    path: AttrPath | None
    value: Any
    has_value: bool


def parse_operations(body: Mapping[str, Any]) -> list[Operation]:
    """Read the PatchOp envelope; op names in any case, paths parsed up front."""
    raw = lookup(body, "Operations")
    if not isinstance(raw, list) or not raw:
        raise ScimError("A PATCH body needs a non-empty 'Operations' list.",
                        scim_type="invalidSyntax")
    if len(raw) > MAX_OPERATIONS:
        raise ScimError(f"A PATCH may carry at most {MAX_OPERATIONS} operations.",
                        scim_type="tooMany")
    operations = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ScimError(f"Operation {index} is not an object.", scim_type="invalidSyntax")
        op = lookup(item, "op")
        if not isinstance(op, str) or op.strip().lower() not in OPS:
            raise ScimError(f"Operation {index}: op must be add, replace or remove.",
                            scim_type="invalidSyntax")
        path_text = lookup(item, "path")
        if path_text is not None and not isinstance(path_text, str):
            raise ScimError(f"Operation {index}: path must be a string.",
                            scim_type="invalidPath")
        path = parse_path(path_text) if path_text and path_text.strip() else None
        has_value = any(isinstance(k, str) and k.lower() == "value" for k in item)
        operations.append(Operation(op.strip().lower(), path, lookup(item, "value"), has_value))
        if operations[-1].op == "remove" and path is None:
            raise ScimError(f"Operation {index}: remove needs a path.", scim_type="noTarget")
    return operations


def equality_terms(f: Filter) -> dict[str, Any]:
    """Return `attr eq value` terms joined by `and` (to create the element a filter names)."""
    terms: dict[str, Any] = {}
    stack = [f.node]
    while stack:
        node = stack.pop()
        if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
            stack.extend(node.terms)
        elif (isinstance(node, Comparison) and node.op == CompareOperator.eq
              and node.attr_path.sub_attr is None and node.attr_path.uri is None):
            terms[node.attr_path.attr.lower()] = node.value
    return terms


def value_ids(f: Filter) -> list[str] | None:
    """Return the ids of `value eq "x" [or value eq "y"]`, or None for any other filter."""
    ids: list[str] = []
    stack = [f.node]
    while stack:
        node = stack.pop()
        if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
            stack.extend(node.terms)
        elif (isinstance(node, Comparison) and node.op == CompareOperator.eq
              and node.attr_path.attr.lower() == "value" and node.attr_path.sub_attr is None
              and isinstance(node.value, str)):
            ids.append(node.value)
        else:
            return None
    return ids


def _lower_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in value.items() if isinstance(k, str)}


class UserPatch:
    """Apply operations to a User's representation, in memory."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
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
            return None  # read-only (id, meta, groups) and password are ignored
        if path.attr in ENTERPRISE_ATTRS:
            return self.enterprise, path.attr
        if path.attr in USER_ATTRS:
            return self.core, path.attr
        if strict:
            raise ScimError(f"Users have no attribute {path.attr!r}.", scim_type="invalidPath")
        return None

    def _apply_path(self, op: str, path: AttrPath, value: Any, *, strict: bool) -> None:
        target = self._target(path, strict)
        if target is None:
            return
        container, attr = target
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


class GroupPatch:
    """Group changes compiled from operations: name, externalId and one member change set.

    Member operations fold into `replace` (a full list, when any op replaced members) or
    `add`/`remove`; later operations win over earlier ones for the same id.
    """

    def __init__(self, display_name: Any, external_id: Any) -> None:
        self.display_name = display_name
        self.external_id = external_id
        self.replace: dict[str, None] | None = None
        self.add: dict[str, None] = {}
        self.remove: dict[str, None] = {}
        self.filtered_removals: list[Filter] = []

    def apply(self, operation: Operation) -> None:
        """Apply one operation."""
        if operation.path is None:
            if not isinstance(operation.value, dict):
                raise invalid(f"{operation.op} without a path needs an object as its value.")
            for key, value in operation.value.items():
                try:
                    path = parse_path(key) if isinstance(key, str) else None
                except ScimError:
                    continue
                if path is not None:
                    self._apply_path(operation.op, path, value, operation.has_value, False)
        else:
            self._apply_path(operation.op, operation.path, operation.value, operation.has_value,
                             True)

    def _apply_path(self, op: str, path: AttrPath, value: Any, has_value: bool,
                    strict: bool) -> None:
        schema = (path.schema or "").lower()
        if (schema and schema != CORE_GROUP.lower()) or path.attr in ("id", "meta", "schemas"):
            return
        if path.attr == "members":
            self._members(op, path, value, has_value)
        elif path.attr in ("displayname", "externalid") and path.value_filter is None \
                and path.sub_attr is None:
            new = None if op == "remove" else value
            if path.attr == "displayname":
                self.display_name = new
            else:
                self.external_id = new
        elif strict:
            raise ScimError(f"Groups have no attribute {path.attr!r} to change.",
                            scim_type="invalidPath")

    def _members(self, op: str, path: AttrPath, value: Any, has_value: bool) -> None:
        if path.sub_attr is not None or (path.value_filter is not None and op != "remove"):
            raise ScimError("Change members with add/replace on 'members', or remove with "
                            "'members[value eq \"id\"]'.", scim_type="invalidPath")
        if path.value_filter is not None:
            ids = value_ids(path.value_filter)
            if ids is None:
                self.filtered_removals.append(path.value_filter)
                return
            self._removed(ids)
        elif op == "remove":
            if has_value and value is not None:
                self._removed(member_ids(value))
            else:
                self.replace, self.add, self.remove = {}, {}, {}
        elif op == "replace":
            self.replace, self.add, self.remove = dict.fromkeys(member_ids(value)), {}, {}
        else:
            for member in member_ids(value):
                self.remove.pop(member, None)
                if self.replace is not None:
                    self.replace[member] = None
                else:
                    self.add[member] = None

    def _removed(self, ids: list[str]) -> None:
        for member in ids:
            self.add.pop(member, None)
            if self.replace is not None:
                self.replace.pop(member, None)
            else:
                self.remove[member] = None
