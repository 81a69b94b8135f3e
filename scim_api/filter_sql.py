"""Turn a parsed SCIM filter into a SQLAlchemy predicate, given an attribute allow-list.

Every leaf predicate is NULL-safe (true or false, never NULL), so `not (title eq "x")` also
finds people without a title, as RFC 7644 §3.4.2.2 reads. caseExact=false strings compare
on lower() of both sides (or on an indexed copy holding `str.lower()`); values always
travel as bound parameters; LIKE wildcards in co/sw/ew values are escaped.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeAlias

from scim2_models.path import AttrPath as NodePath
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
from sqlalchemy import ColumnElement, String, and_, bindparam, func, literal, not_, or_, true
from sqlalchemy.orm import QueryableAttribute

from scim_api.errors import ScimError
from scim_api.filter_parser import SUBSTRING, as_bool, canonical_schema, check_operand

Predicate: TypeAlias = ColumnElement[bool]


class Kind(Enum):
    """The SCIM type of an allow-listed attribute, which decides the operators it takes."""

    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"


@dataclass(frozen=True, eq=False)
class Scalar:
    """A singular attribute read from one column."""

    column: ColumnElement[Any]
    kind: Kind = Kind.STRING
    case_exact: bool = False
    lowered: ColumnElement[Any] | None = None  # indexed copy holding str.lower(column)


def _column(attr: QueryableAttribute[Any]) -> ColumnElement[Any]:
    return attr.expression


def string(attr: QueryableAttribute[Any], *, exact: bool = False,
           lowered: QueryableAttribute[Any] | None = None) -> Scalar:
    """Declare a string attribute (caseExact=false unless `exact`)."""
    return Scalar(_column(attr), Kind.STRING, exact,
                  _column(lowered) if lowered is not None else None)


def boolean(attr: QueryableAttribute[Any]) -> Scalar:
    """Declare a boolean attribute."""
    return Scalar(_column(attr), Kind.BOOLEAN)


def date_time(attr: QueryableAttribute[Any]) -> Scalar:
    """Declare a dateTime attribute."""
    return Scalar(_column(attr), Kind.DATETIME)


@dataclass(frozen=True, eq=False)
class MultiValued:
    """A multi-valued (or referenced) attribute, matched through an EXISTS subquery."""

    exists: Callable[[Predicate], Predicate]
    subs: Mapping[str, Scalar]
    sort: Callable[[], ColumnElement[Any]] | None = None  # sorts by the primary value


Complex: TypeAlias = Mapping[str, Scalar]  # a singular complex attribute: name, meta
Attribute: TypeAlias = Scalar | MultiValued | Complex
Target: TypeAlias = Scalar | tuple[MultiValued, Scalar | None] | Complex
Schemas: TypeAlias = Mapping[str, Mapping[str, Attribute]]  # schema URN -> name -> attribute


def _invalid(detail: str) -> ScimError:
    return ScimError(detail, scim_type="invalidFilter", status=400)


def resolve(schemas: Schemas, ref: NodePath) -> Target:
    """Find the allow-listed attribute a path names, or raise invalidFilter."""
    name = str(ref)
    if ref.uri is None:
        candidates = list(schemas.values())
    else:
        urn = canonical_schema(ref.uri)
        if urn is None or urn not in schemas:
            raise _invalid(f"The schema {ref.uri} has no filterable attributes here.")
        candidates = [schemas[urn]]
    attr = next((s[ref.attr.lower()] for s in candidates if ref.attr.lower() in s), None)
    sub = ref.sub_attr.lower() if ref.sub_attr else None
    if attr is None:
        raise _invalid(f"Filtering on {name!r} is not supported.")
    if isinstance(attr, Scalar):
        if sub is not None:
            raise _invalid(f"{ref.attr!r} has no sub-attribute {ref.sub_attr!r}.")
        return attr
    if isinstance(attr, MultiValued):
        if sub is None:
            return attr, None
        if sub not in attr.subs:
            raise _invalid(f"Filtering on {name!r} is not supported.")
        return attr, attr.subs[sub]
    if sub is None:
        return attr
    if sub not in attr:
        raise _invalid(f"Filtering on {name!r} is not supported.")
    return attr[sub]


# ---- leaf predicates --------------------------------------------------------------------

_ORDER: Mapping[CompareOperator, Callable[[Any, Any], Predicate]] = {
    CompareOperator.eq: operator.eq, CompareOperator.gt: operator.gt,
    CompareOperator.ge: operator.ge, CompareOperator.lt: operator.lt,
    CompareOperator.le: operator.le,
}


def escape_like(text: str) -> str:
    """Escape LIKE wildcards and the escape character itself ("/")."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _present(attr: Scalar) -> Predicate:
    if attr.kind is Kind.STRING:
        return and_(attr.column.is_not(None), attr.column != "")
    return attr.column.is_not(None)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # e.g. employeeNumber eq 1001, unquoted
    raise _invalid(f"A string attribute cannot be compared with {value!r}.")


def _moment(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise _invalid(f"{value!r} is not an ISO 8601 date and time.")


def _like(attr: Scalar, op: CompareOperator, text: str) -> Predicate:
    def pattern(escaped: str) -> str:
        if op == CompareOperator.sw:
            return f"{escaped}%"
        return f"%{escaped}" if op == CompareOperator.ew else f"%{escaped}%"

    column = attr.column
    if attr.lowered is not None:
        return attr.lowered.like(pattern(escape_like(text.lower())), escape="/")
    if not attr.case_exact:
        return func.lower(column).like(func.lower(literal(pattern(escape_like(text)))),
                                       escape="/")
    # SQLite's LIKE ignores ASCII case, so caseExact attributes also check the exact text.
    like = column.like(pattern(escape_like(text)), escape="/")
    if not text:
        return like
    if op == CompareOperator.sw:
        return and_(like, func.substr(column, 1, len(text)) == text)
    if op == CompareOperator.ew:
        return and_(like, func.substr(column, func.length(column) - len(text) + 1) == text)
    return and_(like, func.replace(column, text, "") != column)


def _compare(attr: Scalar, op: CompareOperator, value: Any) -> Predicate:
    """Build a NULL-safe predicate for one comparison on one column."""
    check_operand(op, value)
    if value is None:
        return not_(_present(attr)) if op == CompareOperator.eq else _present(attr)
    if op == CompareOperator.ne:
        return not_(_compare(attr, CompareOperator.eq, value))
    column = attr.column
    if attr.kind is Kind.BOOLEAN:
        flag = as_bool(value)
        if flag is None or op != CompareOperator.eq:
            raise _invalid(f"A boolean attribute cannot be compared with {op.value} {value!r}.")
        return and_(column.is_not(None), column == flag)
    if attr.kind is Kind.DATETIME:
        if op in SUBSTRING:
            raise _invalid(f"The operator {op.value} does not apply to a dateTime.")
        return and_(column.is_not(None), _ORDER[op](column, _moment(value)))
    text = _text(value)
    # Guard the column actually compared, so `user_name_lower = :v` stays an index lookup.
    guard = (attr.lowered if attr.lowered is not None else column).is_not(None)
    if op in SUBSTRING:
        return and_(guard, _like(attr, op, text))
    left: ColumnElement[Any]
    right: ColumnElement[Any]
    if attr.case_exact:
        left, right = column, literal(text)
    elif attr.lowered is not None:
        left, right = attr.lowered, literal(text.lower())
    else:
        left, right = func.lower(column), func.lower(literal(text))
    return and_(guard, _ORDER[op](left, right))


EQUALITY_VALUE = "filter_value"


@cache  # one entry per allow-listed string attribute (Scalar hashes by identity)
def equality(attr: Scalar) -> tuple[Predicate, Callable[[str], str]]:
    """Return `attr eq :filter_value` and how to prepare the value, for a string attribute.

    The same predicate `_compare` builds for `eq "text"`, with the text as a named bound
    parameter instead of a literal and the same object on every call, so the statement
    around it can be built once and reused: the IdPs' lookup before every create
    (`userName eq "…"`, `externalId eq "…"`, `displayName eq "…"`) skips building the
    expression and its cache key.
    """
    if attr.kind is not Kind.STRING:
        raise ValueError("equality() is for string attributes")
    value = bindparam(EQUALITY_VALUE, type_=String())
    if attr.case_exact:
        return and_(attr.column.is_not(None), attr.column == value), str
    if attr.lowered is not None:
        return and_(attr.lowered.is_not(None), attr.lowered == value), str.lower
    return and_(attr.column.is_not(None), func.lower(attr.column) == func.lower(value)), str


# ---- the tree walk ----------------------------------------------------------------------

class _Compiler:
    """Walk a filter tree into a predicate, resolving names through `resolve`."""

    def __init__(self, resolve: Callable[[NodePath], Target]) -> None:
        self.resolve = resolve

    def visit(self, node: FilterNode) -> Predicate:
        if isinstance(node, LogicalExpr):
            terms = [self.visit(term) for term in node.terms]
            return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
        if isinstance(node, Not):
            return not_(self.visit(node.expr))
        if isinstance(node, Present):
            return self._present(self.resolve(node.attr_path))
        if isinstance(node, Comparison):
            return self._comparison(self.resolve(node.attr_path), node)
        if isinstance(node, ValuePath):
            return self._value_path(node)
        raise _invalid("Unsupported filter expression.")

    def _present(self, target: Target) -> Predicate:
        if isinstance(target, Scalar):
            return _present(target)
        if isinstance(target, tuple):
            multi, sub = target
            return multi.exists(true() if sub is None else _present(sub))
        return or_(*(_present(sub) for sub in target.values()))

    def _comparison(self, target: Target, node: Comparison) -> Predicate:
        if isinstance(target, Scalar):
            return _compare(target, node.op, node.value)
        if not isinstance(target, tuple):
            raise _invalid(f"Compare a sub-attribute of {node.attr_path.attr!r}, not the whole.")
        multi, sub = target
        sub = sub or multi.subs["value"]  # `emails eq "x"` means emails.value
        check_operand(node.op, node.value)
        if node.value is None:
            present = multi.exists(_present(sub))
            return not_(present) if node.op == CompareOperator.eq else present
        if node.op == CompareOperator.ne:  # no value equals it (scim2-models' reading too)
            return not_(multi.exists(_compare(sub, CompareOperator.eq, node.value)))
        return multi.exists(_compare(sub, node.op, node.value))

    def _value_path(self, node: ValuePath) -> Predicate:
        target = self.resolve(node.attr_path)
        if not isinstance(target, tuple) or target[1] is not None:
            raise _invalid(f"{node.attr_path.attr!r} is not a multi-valued attribute.")
        multi = target[0]

        def resolve_sub(ref: NodePath) -> Target:
            sub = multi.subs.get(ref.attr.lower())
            if ref.uri is not None or ref.sub_attr is not None or sub is None:
                raise _invalid(f"{node.attr_path.attr!r} has no sub-attribute {str(ref)!r}.")
            return sub

        return multi.exists(_Compiler(resolve_sub).visit(node.val_filter))


def compile_filter(schemas: Schemas, node: FilterNode) -> Predicate:
    """Translate a filter tree into a predicate over the attributes in `schemas`."""
    return _Compiler(lambda ref: resolve(schemas, ref)).visit(node)
