"""Attribute paths for PATCH and attributes/excludedAttributes, and in-memory value filters."""

from __future__ import annotations

from typing import Any, cast

import pytest
from scim2_models import EnterpriseUser, Group, Path, User

from scim_api.errors import ScimError
from scim_api.filter_parser import MAX_LENGTH
from scim_api.filters import AttrPath, matches, parse_filter, parse_path

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.mark.parametrize(("text", "schema", "attr", "sub_attr", "value_filter"), [
    ("userName", None, "username", None, None),
    ("  displayName ", None, "displayname", None, None),
    ("name.familyName", None, "name", "familyname", None),
    ("members", None, "members", None, None),
    ('members[value eq "2819c223"]', None, "members", None, 'value eq "2819c223"'),
    ('emails[type eq "work"].value', None, "emails", "value", 'type eq "work"'),
    ('Emails[Type eq "work" and primary eq true].Display', None, "emails", "display",
     'Type eq "work" and primary eq true'),
    ('emails.type eq "work"', None, "emails", None, 'type eq "work"'),
    ('members eq "u1"', None, "members", None, 'value eq "u1"'),
    (f"{ENTERPRISE}:manager", ENTERPRISE, "manager", None, None),
    (f"{ENTERPRISE}:manager.value", ENTERPRISE, "manager", "value", None),
    (f"{ENTERPRISE}:department", ENTERPRISE, "department", None, None),
    (f"{ENTERPRISE.lower()}:Department", ENTERPRISE, "department", None, None),
    (f"{CORE_USER}:name.givenName", CORE_USER, "name", "givenname", None),
    (f"{CORE_USER}:userName", CORE_USER, "username", None, None),
    (ENTERPRISE, ENTERPRISE, "", None, None),
    (ENTERPRISE.upper(), ENTERPRISE, "", None, None),
    ("urn:example:custom:2.0:User:badge", "urn:example:custom:2.0:User", "badge", None, None),
])
def test_parse_path_splits_schema_attribute_filter_and_sub_attribute(
        text: str, schema: str | None, attr: str, sub_attr: str | None,
        value_filter: str | None) -> None:
    path = parse_path(text)
    assert isinstance(path, AttrPath)
    assert (path.schema, path.attr, path.sub_attr) == (schema, attr, sub_attr)
    assert (str(path.value_filter) if path.value_filter else None) == value_filter
    if path.value_filter is not None:
        assert path.value_filter.parent == attr


@pytest.mark.parametrize("text", [
    "", "  ", "a b", 'emails[type eq "work"].value.x', 'emails[type eq "work"', "emails[]",
    "name.familyName.x", "urn:foo:bar", "urn:x", "1abc", 'members[value eq "x"]]', "émails",
    "userName eq", 'emails[value eq "\\u0000"]', "a" * (MAX_LENGTH + 1),
])
def test_invalid_path_raises_invalid_path_400(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_path(text)
    assert (caught.value.scim_type, caught.value.status) == ("invalidPath", 400)


WORK = {"value": "Alice@Example.com", "type": "Work", "primary": True}
HOME = {"value": "alice@home.test", "type": "home", "display": "Home"}
BARE = {"value": "x@y.test"}


@pytest.mark.parametrize(("text", "item", "expected"), [
    ('emails[type eq "work"]', WORK, True),
    ('emails[type eq "work"]', HOME, False),
    ('emails[value eq "alice@example.com"]', WORK, True),  # emails.value is caseExact=false
    ('emails[value co "EXAMPLE"]', WORK, True),
    ('emails[value sw "alice@h"]', HOME, True),
    ('emails[value ew ".TEST"]', HOME, True),
    ('emails[type eq "work" and primary eq true]', WORK, True),
    ('emails[type eq "home" and primary eq true]', HOME, False),
    ('emails[type eq "home" or primary eq true]', WORK, True),
    ('emails[not (type eq "work")]', HOME, True),
    ('emails[not (type eq "work")]', BARE, True),
    ('emails[type ne "work"]', BARE, True),
    ('emails[type pr]', BARE, False),
    ('emails[type eq null]', BARE, True),
    ('emails[display pr]', HOME, True),
    ('emails[primary eq false]', HOME, False),  # absent is not false
    ('emails[primary eq true]', {"value": "a", "primary": "True"}, True),  # Entra's string
    ('emails[value gt "b"]', HOME, False),
    ('emails[value lt "b"]', HOME, True),
    ('emails[TYPE EQ "work"]', {"Type": "work"}, True),  # keys matched case-insensitively
    ('members[value eq "2819c223"]', {"value": "2819c223"}, True),
    ('members[value eq "2819C223"]', {"value": "2819c223"}, False),  # ids are caseExact
    ('members[value eq "2819c223"]', {"value": "2819c223", "$ref": None}, True),
    ('members[display eq "ALICE"]', {"value": "1", "display": "alice"}, True),
    ('members[value eq "x"]', {}, False),
    ('emails[value eq 5]', {"value": 5}, True),
])
def test_matches_evaluates_a_value_filter_on_one_element(text: str, item: dict[str, Any],
                                                         expected: bool) -> None:
    f = parse_path(text).value_filter
    assert f is not None
    assert matches(f, item) is expected


def test_matches_takes_the_case_rule_from_the_named_attribute() -> None:
    f = parse_filter('value eq "ABC"')
    assert matches(f, {"value": "abc"}) is True
    assert matches(f, {"value": "abc"}, attr="emails") is True
    assert matches(f, {"value": "abc"}, attr="members") is False
    assert matches(f, {"value": "ABC"}, attr="members") is True


@pytest.mark.parametrize("text", [
    'emails[primary gt true]', 'emails[value co 5]', 'emails[type lt null]',
    'emails[urn:x:y:z:type eq "work"]',
])
def test_matches_refuses_operands_the_rfc_rules_out_whatever_the_element(text: str) -> None:
    f = parse_path(text).value_filter
    assert f is not None
    for item in (WORK, HOME, {}):
        with pytest.raises(ScimError) as caught:
            matches(f, item)
        assert caught.value.scim_type == "invalidFilter"


def test_matches_reads_a_plain_value_as_its_own_value_sub_attribute() -> None:
    f = parse_filter('value eq "Admin"')
    assert matches(f, cast(Any, "admin"), attr="roles") is True
    assert matches(f, cast(Any, "user"), attr="roles") is False


@pytest.mark.parametrize("model", [User[EnterpriseUser], Group])
def test_every_attribute_path_of_the_core_and_enterprise_schemas_parses(model: Any) -> None:
    paths = [str(p) for p in Path[model].iter_paths()]
    assert len(paths) > 5
    for text in paths:
        parsed = parse_path(text)
        if parsed.attr:
            tail = text.rsplit(":", 1)[-1] if text.startswith("urn:") else text
            assert parsed.attr == tail.split(".")[0].lower()
        else:
            assert parsed.schema == text
