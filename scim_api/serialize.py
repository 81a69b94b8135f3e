"""Turning memberships and groups into SCIM JSON, a page at a time.

A page of Users reads each User's emails and groups as JSON columns of its own statement
(`related_columns`); other related rows (a single User's emails and groups, managers,
members) are loaded for a whole page in one query each. A page of 100 Users costs the
same few statements as a page of 1.
Resources are built as plain dicts rather than scim2-models objects: stored IdP data is
returned as sent (a photo `value` that is not a URL, an email without a type) and must
never fail output validation, and a page of 1,000 must stay cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import BindParameter, ColumnElement, DateTime, String, bindparam, func, select, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

from portal.extensions import core_rows
from portal.models import SOURCE_SCIM, Group, GroupMember, MemberEmail, Membership
from portal.prepared import Prepared, Row
from scim_api.http import etag_of
from scim_api.projection import Projection
from scim_api.schema import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_STRINGS,
    ENTERPRISE_USER,
    EXTRA_MULTI,
    NAME_PARTS,
    USER_STRINGS,
)


def timestamp(moment: datetime | str) -> str:
    """Return an RFC 3339 UTC timestamp (a `ScimTime` column already is one)."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:  # stored times are UTC (portal.models.UTCDateTime)
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


class ScimTime(TypeDecorator[str]):
    """A UTC datetime column read straight into its SCIM text ("2026-11-28T12:34:56.123Z").

    A page of 100 Users shows 200 of them. On SQLite the stored text ("2026-11-28
    12:34:56.123456", UTC: portal.models.UTCDateTime) is rearranged by slicing (~0.5 µs)
    instead of parsed into a datetime and formatted again (~5 µs); anything else (text
    without microseconds, PostgreSQL's datetimes) goes the long way.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(String() if dialect.name == "sqlite"
                                       else DateTime(timezone=True))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            if len(value) == 26 and value[10] == " " and value[19] == ".":
                return f"{value[:10]}T{value[11:23]}Z"
            return timestamp(datetime.fromisoformat(value))
        return timestamp(value)


def scim_time(column: ColumnElement[Any]) -> ColumnElement[str]:
    """Select a UTCDateTime column as SCIM text, under its own name."""
    return type_coerce(column, ScimTime()).label(column.key)


class EmailRow(NamedTuple):
    """One email of a User as a document shows it."""

    value: str
    type: str | None
    primary: bool
    display: str | None


@dataclass
class UserParts:
    """Related rows of a page of Users, keyed by membership id."""

    emails: dict[int, list[Any]] = field(default_factory=dict)  # member_email rows
    groups: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    managers: dict[int, tuple[str, str | None]] = field(default_factory=dict)


_EMAILS = MemberEmail.__table__
_Triples = Iterable[tuple[int, str, str]]  # (id, public id, display name) rows
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
# Built once: the statements a page of Users or Groups runs, whatever its size.
_EMAIL_ROWS = (  # only what a document shows
    select(_EMAILS.c.membership_id, _EMAILS.c.value, _EMAILS.c.type, _EMAILS.c.primary,
           _EMAILS.c.display)
    .order_by(_EMAILS.c.id)
)
_GROUP_ROWS = (
    select(GroupMember.membership_id, Group.public_id, Group.display_name)
    .join(Group, Group.id == GroupMember.group_id)
    .where(Group.source == SOURCE_SCIM)
    .order_by(GroupMember.membership_id, GroupMember.group_id)  # the index's order
)
_EMAILS_OF = _EMAIL_ROWS.where(_EMAILS.c.membership_id.in_(_IDS))
_GROUPS_OF = _GROUP_ROWS.where(GroupMember.membership_id.in_(_IDS))
# The IdP's lookup before a create finds one User: for one id the same statements run
# prepared (portal.prepared), which an expanding IN cannot.
_EMAILS_OF_ONE = Prepared(_EMAIL_ROWS.where(_EMAILS.c.membership_id == bindparam("id")))
_GROUPS_OF_ONE = Prepared(_GROUP_ROWS.where(GroupMember.membership_id == bindparam("id")))
_MANAGERS_OF = select(Membership.id, Membership.public_id, Membership.display_name).where(
    Membership.id.in_(_IDS), Membership.scim_deleted_at.is_(None))
_MEMBERS_OF = (
    select(GroupMember.group_id, Membership.public_id, Membership.display_name)
    .join(Membership, Membership.id == GroupMember.membership_id)
    .where(GroupMember.group_id.in_(_IDS), Membership.scim_managed.is_(True),
           Membership.scim_deleted_at.is_(None))
    .order_by(GroupMember.group_id, Membership.id)
)


_MEMBERSHIP = Membership.__table__
_EMAIL_VALUES = (_EMAILS.c.value, _EMAILS.c.type, _EMAILS.c.primary, _EMAILS.c.display)
_OF_MEMBER = _EMAILS.c.membership_id == _MEMBERSHIP.c.id


# The JSON columns below come back as the driver gives them (text on SQLite, already read
# by psycopg on PostgreSQL) and are read once by `_json_list`: the JSON type's processors
# are three Python calls a value, for two values a User on every page.
_AS_SENT = NullType()


def _json_list(value: Any) -> list[Any]:
    """Return a JSON array column as a list (no rows: NULL, "[]" or [])."""
    if isinstance(value, str | bytes):
        # Strings, booleans as 0/1 and nothing else: orjson's one weakness, integers
        # beyond 64 bits (portal._load_json), cannot occur here.
        loaded: list[Any] = orjson.loads(value)
        return loaded
    return value or []


@cache
def related_columns(dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Return a User's emails and groups as two JSON columns of a page's own statement.

    A page then costs one statement instead of three (on PostgreSQL each statement is a
    round trip to the server, and an expanding IN of 100 ids is rendered anew each time):
    `emails_json` holds [value, type, primary, display] per email, `groups_json`
    [public id, display name] per SCIM group, both in id order; no rows: NULL or [].
    """
    group_values = (Group.public_id, Group.display_name)
    group_rows = (select(*group_values).select_from(GroupMember)
                  .join(Group, Group.id == GroupMember.group_id)
                  .where(GroupMember.membership_id == _MEMBERSHIP.c.id,
                         Group.source == SOURCE_SCIM))
    if dialect == "postgresql":
        emails = select(func.json_agg(aggregate_order_by(
            func.json_build_array(*_EMAIL_VALUES), _EMAILS.c.id), type_=_AS_SENT)).where(_OF_MEMBER)
        groups = group_rows.with_only_columns(func.json_agg(aggregate_order_by(
            func.json_build_array(*group_values), GroupMember.group_id), type_=_AS_SENT))
    else:  # SQLite: json_group_array keeps the order of an ordered subquery
        ordered = select(*_EMAIL_VALUES).where(_OF_MEMBER).order_by(_EMAILS.c.id) \
            .correlate(_MEMBERSHIP).subquery()
        emails = select(func.json_group_array(func.json_array(*ordered.c), type_=_AS_SENT))
        # In group_member's order, which its (membership_id, group_id) index gives without a
        # sort or a table read: ordering by "group".id sorted each User's groups in a
        # temporary B-tree (~4% of a page of 100's SQL on SQLite).
        in_order = group_rows.order_by(GroupMember.group_id).correlate(_MEMBERSHIP).subquery()
        groups = select(func.json_group_array(func.json_array(*in_order.c), type_=_AS_SENT))
    return (emails.scalar_subquery().label("emails_json"),
            groups.scalar_subquery().label("groups_json"))


def _rows_for(one: Prepared, many: Any, ids: list[int]) -> Any:
    """Run the one-id prepared statement for a single User, the expanding IN otherwise."""
    return one.rows({"id": ids[0]}) if len(ids) == 1 else core_rows(many, {"ids": ids})


def load_user_parts(members: Sequence[Any], projection: Projection) -> UserParts:
    """Load emails, groups and managers of these Users (objects or rows), one query each."""
    parts = UserParts()
    ids = [m.id for m in members]
    if not ids:
        return parts
    if hasattr(members[0], "emails_json"):  # a first page carries them (related_columns)
        for m in members:
            emails, groups = _json_list(m.emails_json), _json_list(m.groups_json)
            if emails:
                parts.emails[m.id] = [EmailRow(*e) for e in emails]
            if groups:
                parts.groups[m.id] = [(g[0], g[1]) for g in groups]
    else:
        if projection.wants("emails"):
            # Plain rows, not ORM objects: a page reads them once and never changes them.
            grouped: dict[int, list[Any]] = defaultdict(list)
            for email in _rows_for(_EMAILS_OF_ONE, _EMAILS_OF, ids):
                grouped[email.membership_id].append(email)
            parts.emails = dict(grouped)
        if projection.wants("groups"):
            by_member: dict[int, list[tuple[str, str]]] = defaultdict(list)
            for member_id, public_id, name in _rows_for(_GROUPS_OF_ONE, _GROUPS_OF, ids):
                by_member[member_id].append((public_id, name))
            parts.groups = dict(by_member)
    manager_ids = {m.manager_id for m in members if m.manager_id is not None}
    if manager_ids and projection.wants("manager"):
        rows = cast(_Triples, core_rows(_MANAGERS_OF, {"ids": sorted(manager_ids)}))
        parts.managers = {row_id: (public_id, name) for row_id, public_id, name in rows}
    return parts


# The Membership columns a User document is made of (a list page selects only these).
USER_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((  # USER_STRINGS holds external_id too
    "id", "public_id", "external_id", "user_name", "active", "extra_attributes", "manager_id",
    "created_at", "updated_at", "version", *NAME_PARTS.values(), *USER_STRINGS.values(),
    *ENTERPRISE_STRINGS.values(),
)))
# Where each column sits in a User's values (USER_COLUMNS order).
_AT = {column: i for i, column in enumerate(USER_COLUMNS)}
_NAME_AT = tuple((key, _AT[col]) for key, col in NAME_PARTS.items())
_STRING_AT = tuple((key, _AT[col]) for key, col in USER_STRINGS.items() if key != "externalId")
_ENTERPRISE_AT = tuple((key, _AT[col]) for key, col in ENTERPRISE_STRINGS.items())
_ID, _PUBLIC_ID, _EXTERNAL_ID, _USER_NAME, _ACTIVE, _EXTRA, _MANAGER_ID = (
    _AT["id"], _AT["public_id"], _AT["external_id"], _AT["user_name"], _AT["active"],
    _AT["extra_attributes"], _AT["manager_id"])
_CREATED, _UPDATED, _VERSION = _AT["created_at"], _AT["updated_at"], _AT["version"]
# Row classes of prepared statements (portal.prepared) that start with USER_COLUMNS.
_POSITIONAL: dict[type, bool] = {}


def _values(member: Any) -> Sequence[Any]:
    """Return a User's column values in USER_COLUMNS order.

    A page's own rows already are (its statement selects USER_COLUMNS first) and are used
    as they come: building a mapping by name per row was a fifth of a page's time. Loaded
    Memberships and other rows are read column by column.
    """
    kind = type(member)
    positional = _POSITIONAL.get(kind)
    if positional is None:
        fields = getattr(kind, "_fields", None)  # a prepared row class names its columns
        positional = isinstance(fields, tuple) and fields[:len(USER_COLUMNS)] == USER_COLUMNS
        if isinstance(member, Row):
            _POSITIONAL[kind] = positional
    if positional:
        return member
    return tuple(getattr(member, column) for column in USER_COLUMNS)


def user_document(member: Any, parts: UserParts, base: str) -> dict[str, Any]:
    """Return the full SCIM representation of one User (password never included)."""
    row = _values(member)
    public_id = row[_PUBLIC_ID]
    doc: dict[str, Any] = {"schemas": [CORE_USER], "id": public_id}
    if row[_EXTERNAL_ID] is not None:
        doc["externalId"] = row[_EXTERNAL_ID]
    doc["userName"] = row[_USER_NAME]
    name = {key: row[i] for key, i in _NAME_AT if row[i] is not None}
    if name:
        doc["name"] = name
    for key, i in _STRING_AT:
        if row[i] is not None:
            doc[key] = row[i]
    doc["active"] = bool(row[_ACTIVE])
    member_id = row[_ID]
    emails = parts.emails.get(member_id)
    if emails:
        doc["emails"] = [_email(e) for e in emails]
    extra = row[_EXTRA]
    if extra:
        for key in EXTRA_MULTI:
            if extra.get(key):
                doc[key] = [dict(item) for item in extra[key]]
    groups = parts.groups.get(member_id)
    if groups:
        doc["groups"] = [{"value": group_id, "$ref": f"{base}/Groups/{group_id}",
                          "display": display, "type": "direct"}
                         for group_id, display in groups]
    enterprise: dict[str, Any] = {key: row[i] for key, i in _ENTERPRISE_AT
                                  if row[i] is not None}
    manager = parts.managers.get(row[_MANAGER_ID]) if row[_MANAGER_ID] else None
    if manager is not None:
        manager_id, manager_name = manager
        enterprise["manager"] = {"value": manager_id, "$ref": f"{base}/Users/{manager_id}"}
        if manager_name:
            enterprise["manager"]["displayName"] = manager_name
    if enterprise:
        doc["schemas"].append(ENTERPRISE_USER)
        doc[ENTERPRISE_USER] = enterprise
    doc["meta"] = _meta("User", row[_CREATED], row[_UPDATED],
                        f"{base}/Users/{public_id}", row[_VERSION])
    return doc


def _email(email: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"value": email.value}
    if email.type is not None:
        item["type"] = email.type
    item["primary"] = bool(email.primary)
    if email.display is not None:
        item["display"] = email.display
    return item


def _meta(kind: str, created: datetime | str, modified: datetime | str, location: str,
          version: int) -> dict[str, Any]:
    return {"resourceType": kind, "created": timestamp(created),
            "lastModified": timestamp(modified), "location": location,
            "version": etag_of(version)}


def load_members(groups: Sequence[Any], projection: Projection) -> dict[int, list[Any]]:
    """Load the members of these Groups in one query (nothing when members are excluded)."""
    if not groups or not projection.wants("members"):
        return {}
    rows = cast(_Triples, core_rows(_MEMBERS_OF, {"ids": [g.id for g in groups]}))
    members: dict[int, list[Any]] = defaultdict(list)
    for group_id, public_id, name in rows:
        members[group_id].append((public_id, name))
    return dict(members)


def group_document(group: Any, members: list[Any] | None, base: str) -> dict[str, Any]:
    """Return the SCIM representation of one Group."""
    doc: dict[str, Any] = {"schemas": [CORE_GROUP], "id": group.public_id}
    if group.external_id is not None:
        doc["externalId"] = group.external_id
    doc["displayName"] = group.display_name
    if members:
        doc["members"] = []
        for public_id, name in members:
            item = {"value": public_id, "$ref": f"{base}/Users/{public_id}", "type": "User"}
            if name:
                item["display"] = name
            doc["members"].append(item)
    doc["meta"] = _meta("Group", group.created_at, group.updated_at,
                        f"{base}/Groups/{group.public_id}", group.version)
    return doc
