"""Parsing SCIM filters (RFC 7644 §3.4.2.2): operators, precedence, literals, URNs, errors."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from scim_api.errors import ScimError
from scim_api.filter_parser import MAX_DEPTH, MAX_LENGTH
from scim_api.filters import Filter, parse_filter

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def cmp(attr: str, op: str, value: Any, sub: str | None = None,
        uri: str | None = None) -> Comparison:
    return Comparison(AttrPath(attr, sub, uri), CompareOperator(op), value)


def pr(attr: str) -> Present:
    return Present(AttrPath(attr))


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title])
def test_every_comparison_operator_parses_in_any_case(op: str, spelling: Any) -> None:
    f = parse_filter(f'title {spelling(op)} "x"')
    assert isinstance(f, Filter)
    assert f.node == cmp("title", op, "x")


@pytest.mark.parametrize("text", ["title pr", "title PR", "title Pr", "  title   pr  "])
def test_presence_operator_parses_in_any_case_and_spacing(text: str) -> None:
    assert parse_filter(text).node == pr("title")


@pytest.mark.parametrize(("text", "expected"), [
    # and binds tighter than or
    ("a pr or b pr and c pr",
     LogicalExpr(LogicalOperator.or_, (pr("a"), LogicalExpr(LogicalOperator.and_,
                                                            (pr("b"), pr("c")))))),
    ("a pr and b pr or c pr",
     LogicalExpr(LogicalOperator.or_, (LogicalExpr(LogicalOperator.and_, (pr("a"), pr("b"))),
                                       pr("c")))),
    # parentheses override precedence
    ("(a pr or b pr) and c pr",
     LogicalExpr(LogicalOperator.and_, (LogicalExpr(LogicalOperator.or_, (pr("a"), pr("b"))),
                                        pr("c")))),
    # not binds tighter than and
    ("not (a pr) and b pr", LogicalExpr(LogicalOperator.and_, (Not(pr("a")), pr("b")))),
    ("not(a pr or b pr)", Not(LogicalExpr(LogicalOperator.or_, (pr("a"), pr("b"))))),
    ("a pr AND b pr Or c pr",
     LogicalExpr(LogicalOperator.or_, (LogicalExpr(LogicalOperator.and_, (pr("a"), pr("b"))),
                                       pr("c")))),
    ("((((a pr))))", pr("a")),
    ("a pr and b pr and c pr", LogicalExpr(LogicalOperator.and_, (pr("a"), pr("b"), pr("c")))),
])
def test_logical_operators_follow_rfc_precedence(text: str, expected: Any) -> None:
    assert parse_filter(text).node == expected


@pytest.mark.parametrize(("literal", "value"), [
    ('"plain"', "plain"),
    ('"with \\"quotes\\" and \\\\ backslash"', 'with "quotes" and \\ backslash'),
    ('"\\u00e9t\\u00E9 \\n\\t\\/"', "été \n\t/"),
    ('"caf\u00e9 \U0001f600"', "café \U0001f600"),
    ('""', ""),
    ("42", 42),
    ("-7", -7),
    ("1.5", 1.5),
    ("2e3", 2000.0),
    ("true", True),
    ("FALSE", False),
    ("True", True),
    ("null", None),
    ("NULL", None),
])
def test_literals_follow_json_rules(literal: str, value: Any) -> None:
    node = parse_filter(f"title eq {literal}").node
    assert isinstance(node, Comparison)
    assert node.value == value
    assert type(node.value) is type(value)


@pytest.mark.parametrize(("text", "expected"), [
    ("name.familyName eq \"O'Malley\"", cmp("name", "eq", "O'Malley", "familyName")),
    ('emails.value ew "@example.com"', cmp("emails", "ew", "@example.com", "value")),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"',
     cmp("meta", "gt", "2011-05-13T04:42:34Z", "lastModified")),
    (f'{ENTERPRISE}:department eq "Eng"', cmp("department", "eq", "Eng", uri=ENTERPRISE)),
    (f'{ENTERPRISE}:manager.value eq "26118915"',
     cmp("manager", "eq", "26118915", "value", ENTERPRISE)),
    (f'{CORE_USER}:userName eq "bjensen"', cmp("userName", "eq", "bjensen", uri=CORE_USER)),
    (f'{CORE_USER}:name.givenName sw "B"', cmp("name", "sw", "B", "givenName", CORE_USER)),
])
def test_sub_attributes_and_schema_urn_prefixes_parse(text: str, expected: Any) -> None:
    assert parse_filter(text).node == expected


def test_value_path_with_logical_filter_parses() -> None:
    node = parse_filter('emails[type eq "work" and primary eq true]').node
    assert node == ValuePath(AttrPath("emails"), LogicalExpr(
        LogicalOperator.and_, (cmp("type", "eq", "work"), cmp("primary", "eq", True))))


def test_entra_value_path_with_trailing_comparison_reads_as_one_value_filter() -> None:
    node = parse_filter('emails[type eq "work"].value eq "a@x.com"').node
    assert node == ValuePath(AttrPath("emails"), LogicalExpr(
        LogicalOperator.and_, (cmp("type", "eq", "work"), cmp("value", "eq", "a@x.com"))))


def test_value_path_combines_with_other_expressions() -> None:
    node = parse_filter('userType eq "Employee" and (emails co "example.com" or '
                        'emails[value co "example.org"])').node
    assert isinstance(node, LogicalExpr)
    assert node.op == LogicalOperator.and_
    assert isinstance(node.terms[1], LogicalExpr)
    assert isinstance(node.terms[1].terms[1], ValuePath)


@pytest.mark.parametrize("text", [
    'userName eq "a"', ' userName eq "a" ', '\tuserName\neq\r\n"a"  ', 'userName  eq   "a"',
    '( userName eq "a" )', 'emails[ type eq "work" ]',
])
def test_extra_whitespace_is_tolerated(text: str) -> None:
    node = parse_filter(text).node
    assert node in (cmp("userName", "eq", "a"),
                    ValuePath(AttrPath("emails"), cmp("type", "eq", "work")))


def test_filter_renders_back_as_text() -> None:
    assert str(parse_filter('userName EQ "a"  and not(title pr)')) == \
        'userName eq "a" and not (title pr)'


INVALID = [
    "", "   ", "userName", "userName eq", 'userName xx "a"', 'eq "a"',
    'userName eq "unterminated', "userName eq 'single quotes'", 'userName eq "a" and',
    'userName eq "a" or', '(userName eq "a"', 'userName eq "a")', 'userName eq "a" title pr',
    'emails[type eq "work"', 'emails[type eq "work"]]', 'emails[type[value eq "x"] eq "y"]',
    'emails.value[type eq "x"]', 'not userName eq "a"', "not (title pr", "a.b.c eq \"x\"",
    'title eq 1e999', 'title eq "bad \\x escape"', 'title eq "raw\ttab"', "title eq 01",
    "title eq tru", 'title eq "a" "b"', "title pr pr", "1title pr", "ti tle pr",
    'urn:x eq "a"', "émails pr", 'title eq "\\ud800', "[] pr", "title eq ", "title eq .5",
    "and", "not ()", "()", 'emails[]', 'userName eq "a" & title pr', "title pr;",
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_filter_raises_invalid_filter_400(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.scim_type == "invalidFilter"
    assert caught.value.status == 400
    assert caught.value.detail


def test_filter_longer_than_the_limit_is_refused() -> None:
    text = 'userName eq "' + "a" * MAX_LENGTH + '"'
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.scim_type == "invalidFilter"
    assert str(MAX_LENGTH) in caught.value.detail


def test_filter_at_the_nesting_limit_parses_and_one_deeper_is_refused() -> None:
    assert parse_filter("not(" * MAX_DEPTH + "a pr" + ")" * MAX_DEPTH)
    with pytest.raises(ScimError) as caught:
        parse_filter("not(" * (MAX_DEPTH + 1) + "a pr" + ")" * (MAX_DEPTH + 1))
    assert caught.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(("text", "parses"), [
    ("not(" * 800 + "a pr" + ")" * 800, False),
    ("emails[" * 1000 + "a pr" + "]" * 1000, False),
    ("(" * 4000, False),
    ("(" * 2000 + "a pr" + ")" * 2000, True),  # parentheses add no nesting to the tree
    (" and ".join(["a pr"] * 400), True),  # a chain is one node
])
def test_deeply_nested_or_huge_filter_is_an_error_never_a_recursion_error(text: str,
                                                                          parses: bool) -> None:
    if parses:
        assert isinstance(parse_filter(text), Filter)
    else:
        with pytest.raises(ScimError) as caught:
            parse_filter(text)
        assert caught.value.scim_type == "invalidFilter"


@pytest.mark.parametrize("text", ['title eq "\\ud800"', 'title eq "a\\u0000b"',
                                  'emails[value eq "\\udfff"]'])
def test_values_no_database_can_store_are_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.scim_type == "invalidFilter"


@pytest.mark.parametrize("value", [None, 42, b'userName eq "a"', ["a"]])
def test_non_string_filter_is_invalid_filter(value: Any) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(value)
    assert caught.value.scim_type == "invalidFilter"
