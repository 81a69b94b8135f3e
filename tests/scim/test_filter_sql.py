"""SCIM filters and sortBy translated to SQL, run against real rows on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Group, Membership
from scim_api.errors import ScimError
from scim_api.filters import group_filter_clause, parse_filter, sort_column, user_filter_clause
from tests.scim.conftest import Directory

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ALL = {"alice", "bob", "carol", "dave"}

USER_CASES = [
    # userName is caseExact=false: an upper-cased value still finds the user (Okta, Entra)
    ('userName eq "ALICE@EXAMPLE.COM"', {"alice"}),
    ('userName eq "alice@example.com"', {"alice"}),
    ('USERNAME Eq "Alice@Example.com"', {"alice"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "carol@EXAMPLE.com"', {"carol"}),
    ('userName ne "alice@example.com"', ALL - {"alice"}),
    ('userName sw "B"', {"bob"}),
    ('userName ew ".COM"', ALL),
    ('userName co "O\'BRIEN"', {"dave"}),
    # LIKE wildcards in values are literal characters
    ('userName co "_"', {"bob"}),
    ('userName co "%"', set()),
    ('userName co "/"', set()),
    ('userName sw "_"', set()),
    ('displayName co "100%"', {"bob"}),
    ('displayName co "0% s"', {"bob"}),
    ('displayName ew "%"', set()),
    # externalId and id are caseExact=true
    ('externalId eq "EXT-1"', {"alice"}),
    ('externalId eq "ext-1"', {"bob"}),
    ('externalId sw "ext"', {"bob"}),
    ('externalId co "XT"', {"alice"}),
    ('externalId ew "T-1"', {"alice"}),
    ('externalId ew "t-1"', {"bob"}),
    ('id eq "{alice}"', {"alice"}),
    ('id eq "{twin}"', set()),
    # pr means not null and not empty; not/ne include people without a value
    ('title pr', {"alice"}),
    ('not (title pr)', {"bob", "carol", "dave"}),
    ('title eq "engineer"', {"alice"}),
    ('not (title eq "Engineer")', {"bob", "carol", "dave"}),
    ('title ne "Engineer"', {"bob", "carol", "dave"}),
    ('title eq null', {"bob", "carol", "dave"}),
    ('title ne null', {"alice"}),
    # string ordering, case-insensitive
    ('displayName lt "B"', {"alice"}),
    ('displayName ge "bob"', {"bob", "dave"}),
    ('displayName le "BOB 100% SMITH"', {"alice", "bob"}),
    ('displayName gt "bob 100% smith"', {"dave"}),
    # booleans, including Entra's "False" string
    ('active eq true', {"alice", "carol", "dave"}),
    ('active eq FALSE', {"bob"}),
    ('active eq "False"', {"bob"}),
    ('active ne true', {"bob"}),
    ('not (active eq true)', {"bob"}),
    # complex singular attributes
    ('name.familyName eq "ADAMS"', {"alice"}),
    ('name.givenName sw "b"', {"bob"}),
    ('name pr', {"alice", "bob"}),
    ('nickName eq "ali"', {"alice"}),
    # emails: EXISTS, case-insensitive values, value paths
    ('emails.value eq "ALICE@home.test"', {"alice"}),
    ('emails eq "bob@corp.test"', {"bob"}),
    ('emails co "HOME.test"', {"alice", "carol"}),
    ('emails.value sw "bob"', {"bob"}),
    ('emails[type eq "work" and value co "x"]', {"alice"}),
    ('emails[type eq "work" and value co "corp"]', {"bob"}),
    ('emails[type eq "work" and value co "home"]', set()),
    ('emails[type eq "WORK" and primary eq true]', {"alice", "bob"}),
    ('emails[type eq "work"].value eq "alice@example.com"', {"alice"}),
    ('emails[not (type pr)]', {"bob"}),
    ('emails[display eq "home"]', {"alice"}),
    ('emails pr', {"alice", "bob", "carol"}),
    ('not (emails pr)', {"dave"}),
    ('emails.type ne "home"', {"bob", "dave"}),
    ('emails.primary eq true', {"alice", "bob"}),
    ('emails.type eq null', {"dave"}),
    # groups (read-only, from group membership)
    ('groups.value eq "{engineering}"', {"alice"}),
    ('groups eq "{everyone}"', {"alice", "bob"}),
    ('groups.value eq "{other_engineering}"', set()),
    ('groups.display eq "EVERYONE"', {"alice", "bob"}),
    ('groups[display sw "eng"]', {"alice"}),
    ('groups pr', {"alice", "bob"}),
    # enterprise extension, qualified and not
    (f'{ENTERPRISE}:department eq "engineering"', {"alice"}),
    ('department eq "Sales"', {"bob"}),
    (f'{ENTERPRISE.upper()}:costCenter eq "cc-7"', {"alice"}),
    (f'{ENTERPRISE}:employeeNumber eq 1002', {"bob"}),
    (f'{ENTERPRISE}:manager.value eq "{{carol}}"', {"alice", "bob"}),
    ('manager.value eq "{alice}"', {"dave"}),
    ('manager eq "{alice}"', {"dave"}),
    (f'{ENTERPRISE}:manager pr', {"alice", "bob", "dave"}),
    ('manager.value eq "{zed}"', set()),
    # meta dates, any ISO 8601 offset
    ('meta.lastModified gt "2024-01-01T00:00:00Z"', {"alice", "bob", "dave"}),
    ('meta.lastModified lt "2024-01-01T00:30:00+01:00"', {"carol"}),
    ('meta.lastModified ge "2024-01-10T12:00:00Z"', {"alice", "bob", "dave"}),
    ('meta.lastModified eq "2024-01-10T12:00:00Z"', {"alice"}),
    ('meta.lastModified ne "2024-01-10T12:00:00Z"', ALL - {"alice"}),
    ('meta.created le "2023-06-01T08:00:00Z"', {"alice", "carol"}),
    ('meta.created gt "2023-07-01"', {"bob", "dave"}),
    # precedence: not > and > or; parentheses override
    ('title pr or userName sw "c" and active eq false', {"alice"}),
    ('(title pr or userName sw "c") and active eq true', {"alice", "carol"}),
    ('not (userName sw "a" or userName sw "b")', {"carol", "dave"}),
    ('userName eq "nobody" or (title pr and active eq true)', {"alice"}),
    ('not (not (active eq false))', {"bob"}),
    # values that look like SQL stay values
    ('userName eq "x\' OR \'1\'=\'1"', set()),
    ('displayName eq "Dave O\'Brien"', {"dave"}),
    ('userName eq "\\"; DROP TABLE membership; --"', set()),
]


@pytest.mark.parametrize(("text", "expected"), USER_CASES, ids=[c[0] for c in USER_CASES])
def test_user_filter_selects_exactly_the_matching_people(directory: Directory, text: str,
                                                         expected: set[str]) -> None:
    assert directory.users(text) == expected


GROUP_CASES = [
    ('displayName eq "ENGINEERING"', {"engineering"}),
    ('displayName co "_100%"', {"sales"}),
    ('displayName co "_"', {"sales"}),
    ('displayName co "%"', {"sales"}),
    ('displayName sw "e"', {"engineering", "everyone", "empty"}),
    ('urn:ietf:params:scim:schemas:core:2.0:Group:displayName ew "STAFF"', {"former"}),
    ('externalId eq "GRP-eng"', {"engineering"}),
    ('externalId eq "grp-eng"', set()),
    ('id eq "{everyone}"', {"everyone"}),
    ('members.value eq "{alice}"', {"engineering", "everyone"}),
    ('members[value eq "{bob}"]', {"everyone"}),
    ('members eq "{bob}"', {"everyone"}),
    ('members.value eq "{twin}"', set()),
    # a SCIM-deleted user is no longer a member as far as SCIM can tell
    ('members.value eq "{zed}"', set()),
    ('members pr', {"engineering", "everyone"}),
    ('not (members pr)', {"empty", "former", "sales"}),
    ('members.display eq "ALICE ADAMS"', {"engineering", "everyone"}),
    ('meta.lastModified gt "2024-01-01T00:00:00Z"', {"engineering", "everyone"}),
    ('displayName eq "Engineering" and members.value eq "{bob}"', set()),
    ('displayName eq "Empty" or members.value eq "{bob}"', {"empty", "everyone"}),
]


@pytest.mark.parametrize(("text", "expected"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_group_filter_selects_exactly_the_matching_groups(directory: Directory, text: str,
                                                          expected: set[str]) -> None:
    assert directory.group_names(text) == expected


def test_injection_like_filter_leaves_tables_and_rows_unchanged(directory: Directory) -> None:
    with directory.app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Membership))
    for value in ['"; DROP TABLE membership; --', "' OR 1=1 --", "%' OR '%'='",
                  "x\\' UNION SELECT password_hash FROM account --"]:
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        assert directory.users(f'userName eq "{quoted}" or displayName co "{quoted}"') == set()
        assert directory.group_names(f'displayName sw "{quoted}"') == set()
    with directory.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership)) == before
    assert directory.users("userName pr") == ALL


def _sorted_users(directory: Directory, attr: str, *, descending: bool = False) -> list[str]:
    names = {v: k for k, v in directory.people.items()}
    with directory.app.app_context():
        column = sort_column("User", attr)
        order = column.desc().nulls_last() if descending else column.asc().nulls_last()
        rows = db.session.scalars(select(Membership.id).where(
            Membership.organisation_id == directory.org_id,
            Membership.scim_deleted_at.is_(None)).order_by(order, Membership.id)).all()
    return [names[r] for r in rows]


@pytest.mark.parametrize(("attr", "expected"), [
    # "Carol@..." sorts after "bob_..." because userName compares case-insensitively
    ("userName", ["alice", "bob", "carol", "dave"]),
    ("USERNAME", ["alice", "bob", "carol", "dave"]),
    ("urn:ietf:params:scim:schemas:core:2.0:User:userName", ["alice", "bob", "carol", "dave"]),
    ("meta.lastModified", ["carol", "alice", "dave", "bob"]),
    ("meta.created", ["carol", "alice", "bob", "dave"]),
    ("name.familyName", ["alice", "bob", "carol", "dave"]),
    ("emails", ["alice", "bob", "carol", "dave"]),
    ("emails.value", ["alice", "bob", "carol", "dave"]),
    (f"{ENTERPRISE}:employeeNumber", ["alice", "bob", "carol", "dave"]),
    ("displayName", ["alice", "bob", "dave", "carol"]),
])
def test_sort_column_orders_users(directory: Directory, attr: str, expected: list[str]) -> None:
    assert _sorted_users(directory, attr) == expected


def test_sort_column_descending_keeps_case_insensitive_order(directory: Directory) -> None:
    assert _sorted_users(directory, "userName", descending=True) == [
        "dave", "carol", "bob", "alice"]


def test_sort_column_orders_groups_by_display_name(directory: Directory) -> None:
    names = {v: k for k, v in directory.groups.items()}
    with directory.app.app_context():
        rows = db.session.scalars(select(Group.id).where(
            Group.organisation_id == directory.org_id).order_by(
            sort_column("Group", "displayname"), Group.id)).all()
    assert [names[r] for r in rows] == ["empty", "engineering", "everyone", "former", "sales"]


@pytest.mark.parametrize(("resource", "attr"), [
    ("User", "password"), ("User", "name"), ("User", "groups"), ("User", "members"),
    ("User", 'emails[type eq "work"]'), ("User", "emails.type"), ("User", "urn:x:y:userName"),
    ("User", "userName.x"), ("User", ""), ("User", "user name"), ("Group", "userName"),
    ("Group", "members"), ("User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
])
def test_sort_column_refuses_unknown_attributes_with_invalid_value(resource: str,
                                                                   attr: str) -> None:
    with pytest.raises(ScimError) as caught:
        sort_column(resource, attr)
    assert (caught.value.scim_type, caught.value.status) == ("invalidValue", 400)


INVALID_USER_FILTERS = [
    'password eq "x"', 'emails.foo eq "x"', 'userName.x eq "y"', 'name eq "x"',
    'meta eq "x"', 'active gt true', 'active co "t"', 'active eq 1', 'active eq "yes"',
    'meta.lastModified gt "yesterday"', 'meta.created co "2024"', 'meta.created eq 5',
    'userName[value eq "x"]', 'emails[foo eq "x"]', 'emails[emails.value eq "x"]',
    'urn:unknown:schema:User:userName eq "x"',
    'urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"',
    'userName eq true', 'userName gt null', 'userName co 5', 'userName eq 1.5',
    'members.value eq "x"', 'manager.foo eq "x"', 'groups.type eq "direct"',
    'emails.primary gt false', 'title pr and password eq "x"',
]


@pytest.mark.parametrize("text", INVALID_USER_FILTERS)
def test_user_filter_on_unsupported_attribute_or_operand_is_invalid_filter(text: str) -> None:
    f = parse_filter(text)
    with pytest.raises(ScimError) as caught:
        user_filter_clause(f)
    assert (caught.value.scim_type, caught.value.status) == ("invalidFilter", 400)


@pytest.mark.parametrize("text", [
    'userName eq "x"', 'emails.value eq "x"', 'members.type eq "User"', 'displayName gt true',
    f'{ENTERPRISE}:department eq "x"', 'members[type eq "User"]',
])
def test_group_filter_on_unsupported_attribute_is_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        group_filter_clause(parse_filter(text))
    assert (caught.value.scim_type, caught.value.status) == ("invalidFilter", 400)
