"""The PATCH engine (RFC 7644 §3.5.2): the operation envelope, and Group changes.

A Group PATCH compiles its member operations into one add/remove/replace set, written as
targeted INSERT/DELETE statements, so the member list is never loaded to change it.
Member removal is accepted as `members[value eq "x"]` or as `members` with a value list
(both Entra dialects), a rename with `id` inside a path-less value (Okta) and a path-less
replace of the whole group (authentik); a path naming `id` or `meta` is a 400
`mutability`, and so is a path-less `id` other than the Group's own. Op names are
case-insensitive. Users are patched in scim_api.user_patch. scim2-models' PatchOp model
rejects several of these IdP payloads (capitalised ops, string booleans, dotted keys in
path-less values), hence this hand-written engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator

from scim_api.bodies import check_own_id, invalid, member_ids
from scim_api.errors import ScimError
from scim_api.filters import AttrPath, Filter, parse_path
from scim_api.http import lookup
from scim_api.schema import CORE_GROUP

OPS = ("add", "replace", "remove")
MAX_OPERATIONS = 10_000


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


def refuse_read_only(path: AttrPath, strict: bool, core_schema: str) -> bool:
    """Return whether the path names `id` or `meta`; with an explicit path, refuse it.

    RFC 7644 §3.5.2: changing a readOnly attribute is a 400 `mutability`. A path-less
    value may carry them (Okta re-sends the id); the caller compares the id.
    """
    if path.attr not in ("id", "meta") or (path.schema or core_schema).lower() != \
            core_schema.lower():
        return False
    if strict:
        raise ScimError(f"{path.attr} is read-only and cannot be changed by PATCH.",
                        scim_type="mutability")
    return True


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


# (a member filter, ids or None for the stored members) -> the ids whose member matches
MembersMatching = Callable[[Filter, list[str] | None], list[str]]


class GroupPatch:
    """Group changes compiled from operations: name, externalId and one member change set.

    Member operations fold into `replace` (a full list, when any op replaced members) or
    `add`/`remove`; later operations win over earlier ones for the same id. A removal by
    a filter other than `value eq` is resolved where it stands among the operations, by
    `members_matching(filter, ids)`: the ids among `ids` (None: the stored members) whose
    member matches. So `[replace [A, B], remove members[display eq "A's name"]]` leaves B.
    """

    def __init__(self, display_name: Any, external_id: Any, resource_id: str,
                 members_matching: MembersMatching) -> None:
        self.resource_id = resource_id
        self.display_name = display_name
        self.external_id = external_id
        self.replace: dict[str, None] | None = None
        self.add: dict[str, None] = {}
        self.remove: dict[str, None] = {}
        self.members_matching = members_matching

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
        if refuse_read_only(path, strict, CORE_GROUP):
            check_own_id(value if path.attr == "id" else None, self.resource_id)
            return
        schema = (path.schema or "").lower()
        if (schema and schema != CORE_GROUP.lower()) or path.attr == "schemas":
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
            self._removed(self._matching(path.value_filter) if ids is None else ids)
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

    def _matching(self, value_filter: Filter) -> list[str]:
        """Return the ids of the members, as the operations so far left them, that match."""
        if self.replace is not None:
            return self.members_matching(value_filter, list(self.replace))
        return [*self.members_matching(value_filter, None),
                *self.members_matching(value_filter, list(self.add))]

    def _removed(self, ids: list[str]) -> None:
        for member in ids:
            self.add.pop(member, None)
            if self.replace is not None:
                self.replace.pop(member, None)
            else:
                self.remove[member] = None
