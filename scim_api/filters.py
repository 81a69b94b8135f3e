"""SCIM filters and sortBy for Users and Groups, through an explicit attribute allow-list.

Every attribute a filter or sortBy may name is declared below with the column it reads;
names never reach `getattr`, values never reach SQL text. Multi-valued attributes (emails,
groups, members) and the manager reference become EXISTS subqueries, so a page never
repeats a row. Parsing is scim_api.filter_parser (the scim2-models grammar); predicate
building is scim_api.filter_sql. scim2-models evaluates filters on its own models only,
so the storage mapping is ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import aliased

from portal.models import Group, GroupMember, MemberEmail, Membership
from scim_api.errors import ScimError
from scim_api.filter_parser import (
    CORE_GROUP_URN,
    CORE_USER_URN,
    ENTERPRISE_USER_URN,
    AttrPath,
    CompareOperator,
    Comparison,
    Filter,
    matches,
    parse_filter,
    parse_path,
)
from scim_api.filter_sql import (
    EQUALITY_VALUE,
    Attribute,
    Kind,
    MultiValued,
    NodePath,
    Predicate,
    Scalar,
    Schemas,
    boolean,
    compile_filter,
    date_time,
    equality,
    resolve,
    string,
)

__all__ = ["AttrPath", "Filter", "group_filter_clause", "matches", "parse_filter",
           "parse_path", "sort_column", "user_filter_clause"]


_manager = aliased(Membership, name="manager")
_member = aliased(Membership, name="member")


def _user_emails(inner: Predicate) -> Predicate:
    return (select(MemberEmail.id).where(MemberEmail.membership_id == Membership.id, inner)
            .correlate(Membership).exists())


def _user_groups(inner: Predicate) -> Predicate:
    return (select(GroupMember.group_id).join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.membership_id == Membership.id, inner)
            .correlate(Membership).exists())


def _user_manager(inner: Predicate) -> Predicate:
    return (select(_manager.id).where(_manager.id == Membership.manager_id,
                                      _manager.scim_deleted_at.is_(None), inner)
            .correlate(Membership).exists())


def _group_members(inner: Predicate) -> Predicate:
    return (select(GroupMember.membership_id).join(_member, _member.id == GroupMember.membership_id)
            .where(GroupMember.group_id == Group.id, _member.scim_deleted_at.is_(None), inner)
            .correlate(Group).exists())


def _primary_email() -> ColumnElement[Any]:
    return (select(MemberEmail.value_lower).where(MemberEmail.membership_id == Membership.id)
            .order_by(MemberEmail.primary.desc(), MemberEmail.id).limit(1)
            .correlate(Membership).scalar_subquery())


USER_CORE: Mapping[str, Attribute] = {
    "id": string(Membership.public_id, exact=True),
    "externalid": string(Membership.external_id, exact=True),
    "username": string(Membership.user_name, lowered=Membership.user_name_lower),
    "displayname": string(Membership.display_name),
    "nickname": string(Membership.nick_name),
    "title": string(Membership.title),
    "usertype": string(Membership.user_type),
    "locale": string(Membership.locale),
    "preferredlanguage": string(Membership.preferred_language),
    "timezone": string(Membership.timezone),
    "profileurl": string(Membership.profile_url),
    "active": boolean(Membership.active),
    "name": {
        "formatted": string(Membership.name_formatted),
        "givenname": string(Membership.given_name),
        "familyname": string(Membership.family_name),
        "middlename": string(Membership.middle_name),
        "honorificprefix": string(Membership.honorific_prefix),
        "honorificsuffix": string(Membership.honorific_suffix),
    },
    "emails": MultiValued(_user_emails, {
        "value": string(MemberEmail.value, lowered=MemberEmail.value_lower),
        "type": string(MemberEmail.type),
        "primary": boolean(MemberEmail.primary),
        "display": string(MemberEmail.display),
    }, sort=_primary_email),
    "groups": MultiValued(_user_groups, {
        "value": string(Group.public_id, exact=True),
        "display": string(Group.display_name, lowered=Group.display_name_lower),
    }),
    "meta": {
        "created": date_time(Membership.created_at),
        "lastmodified": date_time(Membership.updated_at),
    },
}

USER_ENTERPRISE: Mapping[str, Attribute] = {
    "employeenumber": string(Membership.employee_number),
    "costcenter": string(Membership.cost_center),
    "organization": string(Membership.organization),
    "division": string(Membership.division),
    "department": string(Membership.department),
    "manager": MultiValued(_user_manager, {
        "value": string(_manager.public_id, exact=True),
        "displayname": string(_manager.display_name),
    }),
}

GROUP_CORE: Mapping[str, Attribute] = {
    "id": string(Group.public_id, exact=True),
    "externalid": string(Group.external_id, exact=True),
    "displayname": string(Group.display_name, lowered=Group.display_name_lower),
    "members": MultiValued(_group_members, {
        "value": string(_member.public_id, exact=True),
        "display": string(_member.display_name),
    }),
    "meta": {
        "created": date_time(Group.created_at),
        "lastmodified": date_time(Group.updated_at),
    },
}

# Unqualified names are looked up in the core schema first, then the extensions.
RESOURCES: Mapping[str, Schemas] = {
    "user": {CORE_USER_URN: USER_CORE, ENTERPRISE_USER_URN: USER_ENTERPRISE},
    "group": {CORE_GROUP_URN: GROUP_CORE},
}


def _clause(resource: str, f: Filter) -> Predicate:
    if not isinstance(f, Filter):
        raise TypeError("expected a Filter from parse_filter()")
    return compile_filter(RESOURCES[resource], f.node)


def equality_filter(resource: str, f: Filter) -> tuple[Predicate, dict[str, str]] | None:
    """Return a reusable predicate and its parameters when `f` is one `attr eq "text"`.

    That is the shape of the lookup every IdP sends before a create; the predicate is the
    same object for every request on the same attribute (see filter_sql.equality), so the
    statement built around it can be cached. Any other filter returns None.
    """
    if not isinstance(f, Filter):
        raise TypeError("expected a Filter from parse_filter()")
    node = f.node
    if not (isinstance(node, Comparison) and node.op is CompareOperator.eq
            and isinstance(node.value, str)):
        return None
    try:
        target = resolve(RESOURCES[resource], node.attr_path)
    except ScimError:
        return None  # the general path reports the error
    if not isinstance(target, Scalar) or target.kind is not Kind.STRING:
        return None
    predicate, prepare = equality(target)
    return predicate, {EQUALITY_VALUE: prepare(node.value)}


def user_filter_clause(f: Filter) -> Predicate:
    """Translate a filter into a predicate over Membership (the caller scopes the org)."""
    return _clause("user", f)


def group_filter_clause(f: Filter) -> Predicate:
    """Translate a filter into a predicate over Group (the caller scopes the org)."""
    return _clause("group", f)


def sort_column(resource: str, attr: str) -> ColumnElement[Any]:
    """Return the column to sort `resource` ("User"/"Group") by, or raise invalidValue."""
    schemas = RESOURCES.get(resource.lower())
    if schemas is None:
        raise ValueError(f"unknown SCIM resource type {resource!r}")
    try:
        path = parse_path(attr)
        if path.value_filter is not None or not path.attr:
            raise ValueError("not an attribute")
        ref = NodePath(path.attr, path.sub_attr, path.schema)
        target = resolve(schemas, ref)
    except (ScimError, ValueError):
        raise ScimError(f"Sorting by {str(attr)[:200]!r} is not supported.",
                        scim_type="invalidValue", status=400) from None
    if isinstance(target, tuple):
        multi, sub = target
        if multi.sort is None or (sub is not None and sub is not multi.subs.get("value")):
            raise ScimError(f"Sorting by {attr[:200]!r} is not supported.",
                            scim_type="invalidValue", status=400)
        return multi.sort()
    if not isinstance(target, Scalar):
        raise ScimError(f"Sort by a sub-attribute of {attr[:200]!r}.", scim_type="invalidValue",
                        status=400)
    if target.lowered is not None:
        return target.lowered
    if target.kind is Kind.STRING and not target.case_exact:
        return func.lower(target.column)
    return target.column
