"""Turning memberships and groups into SCIM JSON, a page at a time.

Related rows (emails, groups, managers, members) are loaded for a whole page in one
query each, so a page of 100 Users costs the same handful of statements as a page of 1;
what `attributes`/`excludedAttributes` leaves out is not loaded at all.
Resources are built as plain dicts rather than scim2-models objects: stored IdP data is
returned as sent (a photo `value` that is not a URL, an email without a type) and must
never fail output validation, and a page of 1,000 must stay cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import SOURCE_SCIM, Group, GroupMember, MemberEmail, Membership
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


def timestamp(moment: datetime) -> str:
    """Return an RFC 3339 UTC timestamp."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class UserParts:
    """Related rows of a page of Users, keyed by membership id."""

    emails: dict[int, list[Any]] = field(default_factory=dict)  # member_email rows
    groups: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    managers: dict[int, tuple[str, str | None]] = field(default_factory=dict)


def load_user_parts(members: Sequence[Membership], projection: Projection) -> UserParts:
    """Load emails, groups and managers of these Users, one query each."""
    parts = UserParts()
    ids = [m.id for m in members]
    if not ids:
        return parts
    if projection.wants("emails"):
        # Plain rows, not ORM objects: a page reads them once and never changes them.
        emails = MemberEmail.__table__
        grouped: dict[int, list[Any]] = defaultdict(list)
        for email in db.session.execute(select(emails).where(
                emails.c.membership_id.in_(ids)).order_by(emails.c.id)):
            grouped[email.membership_id].append(email)
        parts.emails = dict(grouped)
    if projection.wants("groups"):
        rows = db.session.execute(
            select(GroupMember.membership_id, Group.public_id, Group.display_name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.membership_id.in_(ids), Group.source == SOURCE_SCIM)
            .order_by(Group.id))
        by_member: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for member_id, public_id, name in rows:
            by_member[member_id].append((public_id, name))
        parts.groups = dict(by_member)
    manager_ids = {m.manager_id for m in members if m.manager_id is not None}
    if manager_ids and projection.wants("manager"):
        rows = db.session.execute(
            select(Membership.id, Membership.public_id, Membership.display_name).where(
                Membership.id.in_(manager_ids), Membership.scim_deleted_at.is_(None)))
        parts.managers = {row_id: (public_id, name) for row_id, public_id, name in rows}
    return parts


def _present(value: Any) -> bool:
    return value is not None


def user_document(member: Membership, parts: UserParts, base: str) -> dict[str, Any]:
    """Return the full SCIM representation of one User (password never included)."""
    doc: dict[str, Any] = {"schemas": [CORE_USER], "id": member.public_id}
    if member.external_id is not None:
        doc["externalId"] = member.external_id
    doc["userName"] = member.user_name
    name = {key: getattr(member, col) for key, col in NAME_PARTS.items()
            if _present(getattr(member, col))}
    if name:
        doc["name"] = name
    for key, col in USER_STRINGS.items():
        value = getattr(member, col)
        if key != "externalId" and _present(value):
            doc[key] = value
    doc["active"] = bool(member.active)
    emails = parts.emails.get(member.id)
    if emails:
        doc["emails"] = [_email(e) for e in emails]
    extra = member.extra_attributes or {}
    for key in EXTRA_MULTI:
        if extra.get(key):
            doc[key] = [dict(item) for item in extra[key]]
    groups = parts.groups.get(member.id)
    if groups:
        doc["groups"] = [{"value": public_id, "$ref": f"{base}/Groups/{public_id}",
                          "display": display, "type": "direct"}
                         for public_id, display in groups]
    enterprise: dict[str, Any] = {key: getattr(member, col)
                                  for key, col in ENTERPRISE_STRINGS.items()
                                  if _present(getattr(member, col))}
    manager = parts.managers.get(member.manager_id) if member.manager_id else None
    if manager is not None:
        manager_id, manager_name = manager
        enterprise["manager"] = {"value": manager_id, "$ref": f"{base}/Users/{manager_id}"}
        if manager_name:
            enterprise["manager"]["displayName"] = manager_name
    if enterprise:
        doc["schemas"].append(ENTERPRISE_USER)
        doc[ENTERPRISE_USER] = enterprise
    doc["meta"] = _meta("User", member.created_at, member.updated_at,
                        f"{base}/Users/{member.public_id}", member.version)
    return doc


def _email(email: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"value": email.value}
    if email.type is not None:
        item["type"] = email.type
    item["primary"] = bool(email.primary)
    if email.display is not None:
        item["display"] = email.display
    return item


def _meta(kind: str, created: datetime, modified: datetime, location: str,
          version: int) -> dict[str, Any]:
    return {"resourceType": kind, "created": timestamp(created),
            "lastModified": timestamp(modified), "location": location,
            "version": etag_of(version)}


def load_members(groups: Sequence[Group], projection: Projection) -> dict[int, list[Any]]:
    """Load the members of these Groups in one query (nothing when members are excluded)."""
    if not groups or not projection.wants("members"):
        return {}
    rows = db.session.execute(
        select(GroupMember.group_id, Membership.public_id, Membership.display_name)
        .join(Membership, Membership.id == GroupMember.membership_id)
        .where(GroupMember.group_id.in_([g.id for g in groups]),
               Membership.scim_managed.is_(True), Membership.scim_deleted_at.is_(None))
        .order_by(GroupMember.group_id, Membership.id))
    members: dict[int, list[Any]] = defaultdict(list)
    for group_id, public_id, name in rows:
        members[group_id].append((public_id, name))
    return dict(members)


def group_document(group: Group, members: list[Any] | None, base: str) -> dict[str, Any]:
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
