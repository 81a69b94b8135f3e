"""Parse SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2) into typed trees.

The grammar is scim2-models' own (a lark LALR parser with the RFC errata applied, JSON
literals and escapes, case-insensitive keywords and attribute names, a cap on nesting,
and Entra's `emails[type eq "work"].value eq "x"` form): we reuse its parser and node types
rather than keep a second grammar. What this module adds is what the SCIM API needs on top:
a length cap, a single error type (`ScimError` with `invalidFilter`/`invalidPath`), schema
URNs resolved to the ones we serve, and an in-memory `matches` over plain JSON dicts for the
PATCH engine (the library's evaluator only works on its pydantic models). Translation to SQL
lives in `scim_api.filters`, over an explicit allow-list of columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models import Path, SCIMException, ScimFilter
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from scim_api.errors import ScimError

CORE_USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
KNOWN_SCHEMAS = {urn.lower(): urn for urn in (CORE_USER_URN, ENTERPRISE_USER_URN, CORE_GROUP_URN)}

MAX_LENGTH = 4096
"""The longest filter or path accepted; real IdP filters are a few hundred characters."""
MAX_DEPTH = 32
"""Nesting cap enforced by the scim2-models parser (deeper input is an invalidFilter)."""

# Sub-attributes compared case-sensitively (RFC 7643: they hold resource ids); every other
# string sub-attribute is caseExact=false.
CASE_EXACT_SUB_ATTRS = frozenset({("members", "value"), ("groups", "value"),
                                  ("manager", "value"), ("members", "$ref"),
                                  ("groups", "$ref"), ("manager", "$ref")})
ORDERING = frozenset({CompareOperator.gt, CompareOperator.ge, CompareOperator.lt,
                      CompareOperator.le})
SUBSTRING = frozenset({CompareOperator.co, CompareOperator.sw, CompareOperator.ew})


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter; `parent` names the multi-valued attribute a value filter selects in."""

    node: FilterNode
    parent: str | None = None

    def __str__(self) -> str:
        return str(self.node)


@dataclass(frozen=True, slots=True)
class AttrPath:
    """A parsed attribute path: `attr` and `sub_attr` lower-cased, `attr` "" for a bare URN."""

    schema: str | None
    attr: str
    value_filter: Filter | None = None
    sub_attr: str | None = None


def _check_length(text: object, scim_type: str) -> str:
    if not isinstance(text, str):
        raise ScimError("The expression must be a string.", scim_type=scim_type, status=400)
    if len(text) > MAX_LENGTH:
        raise ScimError(f"The expression is longer than {MAX_LENGTH} characters.",
                        scim_type=scim_type, status=400)
    if not text.strip():
        raise ScimError("The expression is empty.", scim_type=scim_type, status=400)
    return text


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter, or raise ScimError(invalidFilter)."""
    text = _check_length(text, "invalidFilter")
    try:
        node = ScimFilter(text).ast
    except (SCIMException, ValueError, TypeError, RecursionError) as exc:
        detail = exc.detail if isinstance(exc, SCIMException) else "invalid syntax"
        raise ScimError(f"Invalid filter {text[:200]!r}: {detail}.", scim_type="invalidFilter",
                        status=400) from None
    _check_strings(node, "invalidFilter")
    return Filter(node)


def comparisons(root: FilterNode) -> Iterator[Comparison]:
    """Yield every comparison in a filter tree, without recursion."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, LogicalExpr):
            stack.extend(node.terms)
        elif isinstance(node, Not):
            stack.append(node.expr)
        elif isinstance(node, ValuePath):
            stack.append(node.val_filter)
        elif isinstance(node, Comparison):
            yield node


def _check_strings(root: FilterNode, scim_type: str) -> None:
    """Refuse string values no database can store: NUL and lone surrogates (JSON allows both)."""
    for node in comparisons(root):
        if not isinstance(node.value, str):
            continue
        try:
            node.value.encode("utf-8")
        except UnicodeEncodeError:
            raise ScimError("A filter value contains an unpaired surrogate.",
                            scim_type=scim_type, status=400) from None
        if "\x00" in node.value:
            raise ScimError("A filter value contains a NUL character.",
                            scim_type=scim_type, status=400)


def canonical_schema(urn: str | None) -> str | None:
    """Return the canonical spelling of a schema URN we serve, else the URN as written."""
    if urn is None:
        return None
    return KNOWN_SCHEMAS.get(urn.lower(), urn)


def parse_path(text: str) -> AttrPath:
    """Parse a PATCH path or an attributes/excludedAttributes entry, or raise invalidPath."""
    text = _check_length(text, "invalidPath").strip()
    if text.lower() in KNOWN_SCHEMAS:
        return AttrPath(schema=KNOWN_SCHEMAS[text.lower()], attr="")
    try:
        path: Path[Any] = Path(text)
        schema, parts, node = path.schema, path.parts, path.value_filter
    except (SCIMException, ValueError, TypeError, RecursionError) as exc:
        detail = exc.detail if isinstance(exc, SCIMException) else "invalid syntax"
        raise ScimError(f"Invalid path {text[:200]!r}: {detail}.", scim_type="invalidPath",
                        status=400) from None
    if node is not None:
        _check_strings(node, "invalidPath")
    attr = parts[0].lower()
    return AttrPath(
        schema=canonical_schema(schema),
        attr=attr,
        value_filter=Filter(node, parent=attr) if node is not None else None,
        sub_attr=parts[1].lower() if len(parts) > 1 else None,
    )


def _invalid(detail: str) -> ScimError:
    return ScimError(detail, scim_type="invalidFilter", status=400)


def _lookup(item: Mapping[str, Any], name: str) -> Any:
    """Read a key case-insensitively (IdPs vary the case of sub-attribute names)."""
    if name in item:
        return item[name]
    lowered = name.lower()
    for key, value in item.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def is_present(value: Any) -> bool:
    """Return whether a JSON value counts as present for `pr` (not null, not empty)."""
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def as_bool(value: Any) -> bool | None:
    """Read a JSON boolean, tolerating Entra's "True"/"False" strings; None if not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def check_operand(op: CompareOperator, expected: Any) -> None:
    """Refuse operator/value pairs the RFC rules out, whatever the data holds."""
    if expected is None and op not in (CompareOperator.eq, CompareOperator.ne):
        raise _invalid(f"The operator {op.value} cannot compare with null.")
    if isinstance(expected, bool) and op not in (CompareOperator.eq, CompareOperator.ne):
        raise _invalid(f"The operator {op.value} cannot compare booleans.")
    if op in SUBSTRING and not isinstance(expected, str):
        raise _invalid(f"The operator {op.value} needs a string value.")


def _compare_values(actual: Any, op: CompareOperator, expected: Any, case_exact: bool) -> bool:
    check_operand(op, expected)
    if expected is None:
        return not is_present(actual) if op == CompareOperator.eq else is_present(actual)
    if isinstance(expected, bool):
        equal = as_bool(actual) is expected
        return equal if op == CompareOperator.eq else not equal
    if actual is None or isinstance(actual, dict | list):
        return op == CompareOperator.ne
    if isinstance(actual, str) and isinstance(expected, int):
        expected = str(expected)  # as the SQL side reads `employeeNumber eq 1001`
    if isinstance(expected, str):
        if isinstance(actual, bool) or not isinstance(actual, str):
            actual = str(actual)
        if not case_exact:
            actual, expected = actual.lower(), expected.lower()
    elif isinstance(actual, bool) or not isinstance(actual, int | float):
        return op == CompareOperator.ne
    result: bool
    if op == CompareOperator.eq:
        result = actual == expected
    elif op == CompareOperator.ne:
        result = actual != expected
    elif op == CompareOperator.co:
        result = expected in actual
    elif op == CompareOperator.sw:
        result = actual.startswith(expected)
    elif op == CompareOperator.ew:
        result = actual.endswith(expected)
    elif op == CompareOperator.gt:
        result = actual > expected
    elif op == CompareOperator.ge:
        result = actual >= expected
    elif op == CompareOperator.lt:
        result = actual < expected
    else:
        result = actual <= expected
    return result


def _evaluate(node: FilterNode, item: Mapping[str, Any], parent: str | None) -> bool:
    if isinstance(node, LogicalExpr):
        results = (_evaluate(term, item, parent) for term in node.terms)
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not _evaluate(node.expr, item, parent)
    if isinstance(node, Present | Comparison):
        ref = node.attr_path
        if ref.uri is not None:
            raise _invalid(f"A value filter cannot name a schema ({ref.uri}).")
        name = ref.attr if ref.sub_attr is None else f"{ref.attr}.{ref.sub_attr}"
        actual = _lookup(item, ref.attr)
        if ref.sub_attr is not None:
            actual = _lookup(actual, ref.sub_attr) if isinstance(actual, Mapping) else None
        if isinstance(node, Present):
            return is_present(actual)
        case_exact = (parent or "", name.lower()) in CASE_EXACT_SUB_ATTRS
        return _compare_values(actual, node.op, node.value, case_exact)
    if isinstance(node, ValuePath):
        raise _invalid("A value filter cannot contain another value filter.")
    raise _invalid("Unsupported filter expression.")


def matches(f: Filter, item: Mapping[str, Any], *, attr: str | None = None) -> bool:
    """Return whether one element of a multi-valued attribute satisfies a value filter.

    `attr` (or `f.parent`) names that attribute ("emails", "members"), which decides case rules:
    member/group ids compare exactly, every other string case-insensitively.
    """
    parent = (attr or f.parent or "").lower() or None
    for node in comparisons(f.node):  # a bad operand fails whatever the data holds
        check_operand(node.op, node.value)
    if not isinstance(item, Mapping):
        item = {"value": item}  # a plain value stands for its own `value` (RFC 7643 §2.4)
    return _evaluate(f.node, item, parent)
