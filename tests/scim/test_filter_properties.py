"""Property tests: no input makes the filter engine fail with anything but a SCIM 400."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import Group, MemberEmail, Membership
from scim_api.errors import ScimError
from scim_api.filters import (
    group_filter_clause,
    matches,
    parse_filter,
    parse_path,
    user_filter_clause,
)
from tests.scim.conftest import Directory

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DB_SETTINGS = settings(max_examples=25, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])

TOKENS = ["userName", "emails", "[", "]", "(", ")", ".", "value", "type", "eq", "ne", "co",
          "sw", "ew", "gt", "ge", "lt", "le", "pr", "and", "or", "not", "NOT", '"x"', '"',
          "true", "null", "1", "-2.5e3", ENTERPRISE + ":", "manager", ":", " ", "\\", "\\u00",
          "meta.lastModified", '"2024-01-01T00:00:00Z"', "members", "$ref", "'", "\t", "%"]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join)
any_text = st.one_of(st.text(max_size=120), token_soup,
                     st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))

NAMES = ["userName", "USERNAME", "displayName", "title", "active", "externalId", "id",
         "name.givenName", "name", "emails", "emails.value", "emails.type", "emails.primary",
         "groups", "groups.value", "groups.display", "meta.lastModified", "meta.created",
         "manager", "manager.value", f"{ENTERPRISE}:department", f"{ENTERPRISE}:manager.value",
         "urn:ietf:params:scim:schemas:core:2.0:User:userName", "members", "members.value",
         "members.display", "password", "meta", "nickName", "urn:a:b:c:title"]
SUBS = ["value", "type", "primary", "display", "foo"]
OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
VALUES = st.one_of(
    st.text(max_size=12), st.integers(-(10**20), 10**20), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-13-01", "9999-12-31T23:59:59-01:00", "",
                     "%", "_", "/", "'", '"', "O'Brien", "work", "True", "alice@example.com"]),
)


def _leaf(names: list[str]) -> st.SearchStrategy[str]:
    compare = st.builds(lambda n, o, v: f"{n} {o} {json.dumps(v)}",
                        st.sampled_from(names), st.sampled_from(OPS), VALUES)
    present = st.builds(lambda n: f"{n} pr", st.sampled_from(names))
    return st.one_of(compare, present)


def _tree(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
        st.builds(lambda a: f"({a})", inner)), max_leaves=6)


value_paths = st.builds(lambda p, f: f"{p}[{f}]",
                        st.sampled_from(["emails", "groups", "members", "manager", "userName"]),
                        _tree(_leaf(SUBS)))
filters = _tree(st.one_of(_leaf(NAMES), value_paths))


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_any_text_parses_to_a_filter_or_raises_invalid_filter(text: str) -> None:
    try:
        parse_filter(text)
    except ScimError as exc:
        assert (exc.scim_type, exc.status) == ("invalidFilter", 400)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_any_text_parses_to_a_path_or_raises_invalid_path(text: str) -> None:
    try:
        parse_path(text)
    except ScimError as exc:
        assert (exc.scim_type, exc.status) == ("invalidPath", 400)


@settings(max_examples=300, deadline=None)
@given(filters)
def test_any_parsed_filter_compiles_to_sql_or_raises_invalid_filter(text: str) -> None:
    try:
        f = parse_filter(text)
    except ScimError as exc:
        assert exc.scim_type == "invalidFilter"
        return
    for build, entity in ((user_filter_clause, Membership), (group_filter_clause, Group)):
        try:
            clause = build(f)
        except ScimError as exc:
            assert (exc.scim_type, exc.status) == ("invalidFilter", 400)
            continue
        statement = select(entity.id).where(clause)
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            assert "SELECT" in str(statement.compile(dialect=dialect))


def _run(directory: Directory, text: str) -> None:
    try:
        f = parse_filter(text)
    except ScimError:
        return
    with directory.app.app_context():
        for build, entity in ((user_filter_clause, Membership), (group_filter_clause, Group)):
            try:
                clause = build(f)
            except ScimError:
                continue
            ids = db.session.scalars(select(entity.id).where(
                entity.organisation_id == directory.org_id, clause)).all()
            assert len(ids) == len(set(ids))


@DB_SETTINGS
@given(text=filters)
def test_generated_filters_run_on_the_database_or_raise_invalid_filter(
        directory: Directory, text: str) -> None:
    _run(directory, text)


ascii_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10)
SQLISH = st.sampled_from(["'; DROP TABLE membership; --", "' OR '1'='1", "%' --", "\\", "_%",
                          "a/b", "//", "Alice", "O'B", "100%", "ex", "@EXAMPLE.", ".com"])


@DB_SETTINGS
@given(value=st.one_of(ascii_values, SQLISH), op=st.sampled_from(["eq", "co", "sw", "ew"]))
def test_string_operators_agree_with_python_and_leave_rows_unchanged(
        directory: Directory, value: str, op: str) -> None:
    with directory.app.app_context():
        people = db.session.execute(select(
            Membership.id, Membership.user_name, Membership.display_name,
            Membership.external_id).where(Membership.organisation_id == directory.org_id,
                                          Membership.scim_deleted_at.is_(None))).all()
        before = db.session.scalar(select(func.count()).select_from(Membership))
    names = {v: k for k, v in directory.people.items()}

    def check(actual: str | None, exact: bool) -> bool:
        if actual is None:
            return False
        a, v = (actual, value) if exact else (actual.lower(), value.lower())
        return {"eq": a == v, "co": v in a, "sw": a.startswith(v), "ew": a.endswith(v)}[op]

    quoted = json.dumps(value)
    for attr, column, exact in (("userName", "user_name", False),
                                ("displayName", "display_name", False),
                                ("externalId", "external_id", True)):
        expected = {names[row.id] for row in people if check(getattr(row, column), exact)}
        assert directory.users(f"{attr} {op} {quoted}", template=False) == expected
    with directory.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership)) == before


email_filters = _tree(st.one_of(
    st.builds(lambda n, o, v: f"{n} {o} {json.dumps(v)}", st.sampled_from(SUBS[:4]),
              st.sampled_from(OPS), st.one_of(ascii_values, st.sampled_from(
                  ["work", "WORK", "home", "alice", "bob@corp.test", "Home", ".test", True,
                   False, None, "true", 5]))),
    st.builds(lambda n: f"{n} pr", st.sampled_from(SUBS[:4]))))


@DB_SETTINGS
@given(text=email_filters)
def test_email_value_filters_agree_between_sql_and_in_memory_matches(
        directory: Directory, text: str) -> None:
    try:
        user_filter_clause(parse_filter(f"emails[{text}]"))
    except ScimError:
        return  # an operand SQL refuses (e.g. primary gt true) is a 400, checked elsewhere
    with directory.app.app_context():
        rows = db.session.execute(select(
            MemberEmail.membership_id, MemberEmail.value, MemberEmail.type,
            MemberEmail.primary, MemberEmail.display).join(Membership).where(
            Membership.organisation_id == directory.org_id,
            Membership.scim_deleted_at.is_(None))).all()
    names = {v: k for k, v in directory.people.items()}
    value_filter = parse_filter(text)
    expected: set[str] = set()
    for membership_id, value, type_, primary, display in rows:
        item: dict[str, Any] = {"value": value, "type": type_, "primary": primary,
                                "display": display}
        if matches(value_filter, item, attr="emails"):
            expected.add(names[membership_id])
    assert directory.users(f"emails[{text}]", template=False) == expected


@pytest.mark.parametrize("text", ['emails[type eq "work"]', 'members[value eq "x"]'])
def test_path_value_filter_knows_its_attribute(text: str) -> None:
    path = parse_path(text)
    assert path.value_filter is not None and path.value_filter.parent == path.attr
