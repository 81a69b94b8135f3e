"""People provisioned by the organisation's identity provider (the SCIM User resource).

The portal and the SCIM API both call these functions, so a deactivation means the same
from either side. They flush and write audit events; the request boundary commits.
Audit actions: member.provisioned, member.adopted, member.relinked, member.updated,
member.deactivated, member.reactivated, member.deprovisioned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    SOURCE_SCIM,
    Account,
    Group,
    GroupMember,
    MemberEmail,
    Membership,
    OrgScope,
    utcnow,
)
from portal.services import audit
from portal.services.accounts import find_account
from portal.services.errors import Conflict, NotFound, ServiceError

# The simple string attributes the IdP owns (core, name.*, enterprise), by column.
PROFILE_COLUMNS: tuple[str, ...] = (
    "display_name", "nick_name", "profile_url", "title", "user_type", "preferred_language",
    "locale", "timezone", "name_formatted", "given_name", "family_name", "middle_name",
    "honorific_prefix", "honorific_suffix", "employee_number", "cost_center", "organization",
    "division", "department",
)
PLACEHOLDER_DOMAIN = "users.scim.invalid"


@dataclass
class EmailData:
    """One email address of a provisioned person."""

    value: str
    type: str | None = None
    primary: bool = False
    display: str | None = None


@dataclass
class UserData:
    """Everything the IdP says about a person, already checked for type and length."""

    user_name: str
    active: bool | None = None  # None: leave as it is (a PUT without `active`)
    external_id: str | None = None
    profile: dict[str, str | None] = field(default_factory=dict)
    emails: list[EmailData] = field(default_factory=list)
    extra: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    manager_id: str | None = None  # the manager's public id


# What SCIM sees of an organisation: its IdP-managed members that were not deleted.
_SCIM_VISIBLE = (Membership.scim_managed.is_(True), Membership.scim_deleted_at.is_(None))
# The same as plain rows, built once for the list endpoints (pass `org_id`): a page of 100
# read as rows, not objects, and a statement not rebuilt per request.
SCIM_USER_ROWS = select(*Membership.__table__.c).where(
    Membership.organisation_id == bindparam("org_id"), *_SCIM_VISIBLE)


def scim_users(org: OrgScope) -> Select[Membership]:
    """Return the query for the organisation's members that SCIM sees and manages."""
    return select(Membership).where(Membership.organisation_id == org.id, *_SCIM_VISIBLE)


def get_user(org: OrgScope, public_id: str, *, for_update: bool = False) -> Membership:
    """Return a SCIM-managed member by id, or raise NotFound; lock its row to change it."""
    query = scim_users(org).where(Membership.public_id == public_id)
    # Concurrent changes to one User queue here (PostgreSQL), so each reads what the one
    # before it wrote; SQLite serialises whole write requests (portal.security).
    # No id holds NUL, and PostgreSQL refuses it in a query parameter.
    member = None if "\x00" in public_id else db.session.scalar(
        query.with_for_update() if for_update else query)
    if member is None:
        raise NotFound(f"There is no User with id {public_id[:80]!r}.")
    return member


def _label(data: UserData) -> str:
    return data.user_name


def _looks_like_email(value: str | None) -> bool:
    if not value:
        return False
    local, at, domain = value.strip().rpartition("@")
    return bool(at and local and "." in domain and " " not in value.strip())


def _account_email(data: UserData) -> str | None:
    """Return the email that identifies the person's account: userName, else primary email."""
    if _looks_like_email(data.user_name):
        return data.user_name.strip().lower()
    emails = sorted(data.emails, key=lambda e: not e.primary)
    for email in emails:
        if _looks_like_email(email.value):
            return email.value.strip().lower()
    return None


def _new_account(email: str | None, data: UserData) -> Account:
    """Create an account without a password (SCIM people sign in through SSO)."""
    email = email or f"scim-{uuid.uuid4().hex}@{PLACEHOLDER_DOMAIN}"
    account = Account(email=email, display_name=data.profile.get("display_name") or "")
    db.session.add(account)
    return account


def _flush_unique(detail: str) -> None:
    """Flush; a unique constraint losing a race becomes a Conflict (the request rolls back)."""
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict(detail) from None


def _conflict(data: UserData) -> Conflict:
    return Conflict(f"A User with userName {data.user_name!r} already exists.")


def create_user(org: OrgScope, data: UserData, actor: audit.Actor) -> Membership:
    """Provision a person: adopt a manual member, re-link a deleted one, or create one."""
    lower = data.user_name.lower()
    existing = db.session.scalar(select(Membership).where(
        Membership.organisation_id == org.id, Membership.user_name_lower == lower))
    if existing is not None:
        return _take_over(existing, data, actor, org)
    email = _account_email(data)
    account = find_account(email) if email else None
    if account is not None:
        other = db.session.scalar(select(Membership).where(
            Membership.organisation_id == org.id, Membership.account_id == account.id))
        if other is not None:
            if other.scim_deleted_at is not None or (
                    not other.scim_managed and not other.is_break_glass):
                return _take_over(other, data, actor, org)
            # That account already is someone else in this organisation: keep them apart.
            account = _new_account(None, data)
    if account is None:
        account = _new_account(email, data)
    # One flush writes the account (when new), the membership and its emails.
    member = Membership(organisation_id=org.id, account=account, source=SOURCE_SCIM,
                        scim_managed=True, active=True, extra_attributes={})
    db.session.add(member)
    _apply(member, data, org)
    if data.active is False:
        member.active = False
        member.deactivated_at = utcnow()
    _flush_unique(str(_conflict(data)))
    audit.record(actor, "member.provisioned", org, target_type="member",
                 target_id=member.public_id, target_label=_label(data),
                 details={"active": member.active})
    return member


def _take_over(member: Membership, data: UserData, actor: audit.Actor,
               org: OrgScope) -> Membership:
    """Re-link a member the IdP deleted earlier, or adopt a manually created one."""
    if member.scim_deleted_at is not None:
        action = "member.relinked"
        member.scim_deleted_at = None
    elif member.scim_managed or member.is_break_glass:
        # SCIM never touches what it does not manage (break-glass admins stay in control).
        raise _conflict(data)
    else:
        action = "member.adopted"
    member.scim_managed = True
    _apply(member, data, org)
    _flush_unique(str(_conflict(data)))
    _touch(member)
    audit.record(actor, action, org, target_type="member", target_id=member.public_id,
                 target_label=_label(data))
    set_active(member, True if data.active is None else data.active, actor)
    return member


def _snapshot(member: Membership) -> dict[str, Any]:
    values: dict[str, Any] = {col: getattr(member, col) for col in PROFILE_COLUMNS}
    values.update(user_name=member.user_name, external_id=member.external_id,
                  manager_id=member.manager_id, extra_attributes=member.extra_attributes,
                  emails=[(e.value, e.type, e.primary, e.display) for e in member.emails])
    return values


def _apply(member: Membership, data: UserData, org: OrgScope) -> None:
    """Copy the IdP's attributes onto the membership (never onto the shared account)."""
    # No autoflush while half-applied: a taken userName must fail in _flush_unique (409),
    # not in the manager lookup's autoflush (an unhandled IntegrityError, a 500).
    with db.session.no_autoflush:
        _copy(member, data, org)


def _copy(member: Membership, data: UserData, org: OrgScope) -> None:
    member.user_name = data.user_name
    member.user_name_lower = data.user_name.lower()
    member.external_id = data.external_id
    for column in PROFILE_COLUMNS:
        setattr(member, column, data.profile.get(column))
    member.extra_attributes = {k: v for k, v in data.extra.items() if v}
    wanted = [(e.value, e.type, e.primary, e.display) for e in data.emails]
    if [(e.value, e.type, e.primary, e.display) for e in member.emails] != wanted:
        member.emails = [MemberEmail(value=e.value, value_lower=e.value.lower(), type=e.type,
                                     primary=e.primary, display=e.display) for e in data.emails]
    if data.manager_id and data.manager_id == member.public_id \
            and member.manager_id != member.id:  # one stored before this rule may stay
        raise ServiceError("manager: a User cannot be their own manager.")
    member.manager_id = _manager_id(org, data.manager_id)


def _manager_id(org: OrgScope, public_id: str | None) -> int | None:
    if not public_id:
        return None
    manager_id = db.session.scalar(
        scim_users(org).with_only_columns(Membership.id).where(Membership.public_id == public_id))
    if manager_id is None:
        raise ServiceError(f"The manager {public_id[:80]!r} is not a User of this organisation.")
    return manager_id


def _touch(member: Membership, now: datetime | None = None) -> None:
    member.version = (member.version or 0) + 1
    member.updated_at = now or utcnow()


def replace_user(member: Membership, data: UserData, actor: audit.Actor) -> None:
    """Replace the IdP-owned attributes of a provisioned person (PUT, and PATCH results)."""
    org = member.org_scope
    before = _snapshot(member)
    _apply(member, data, org)
    after = _snapshot(member)
    changed = sorted(key for key in after if after[key] != before[key])
    if changed:
        _flush_unique(str(_conflict(data)))
        _touch(member)
        audit.record(actor, "member.updated", org, target_type="member",
                     target_id=member.public_id, target_label=member.user_name,
                     details={"changed": changed})
    if data.active is not None:
        set_active(member, data.active, actor)


def set_active(member: Membership, active: bool, actor: audit.Actor) -> bool:
    """Deactivate or reactivate a member; access ends on their very next request."""
    if member.active == active:
        return False
    now = utcnow()
    member.active = active
    member.deactivated_at = None if active else now
    _touch(member, now)
    details = {} if active else {"received_at": now.isoformat(), "access_ended_at": now.isoformat()}
    audit.record(actor, "member.reactivated" if active else "member.deactivated",
                 member.org_scope, target_type="member",
                 target_id=member.public_id, target_label=member.user_name, details=details)
    return True


def delete_user(member: Membership, actor: audit.Actor) -> None:
    """Deprovision: access ends now, SCIM forgets the User, the record stays for audit."""
    now = utcnow()
    was_active = member.active
    member.active = False
    member.deactivated_at = member.deactivated_at if not was_active else now
    member.scim_deleted_at = now
    # The person's groups are locked before their member rows, in id order, as a group
    # change does (it locks its group, then its rows): the other order deadlocks with a
    # PATCH or PUT of one of these groups on PostgreSQL (found under concurrent IdP traffic).
    group_ids = list(db.session.scalars(
        select(Group.id).join(GroupMember, GroupMember.group_id == Group.id).where(
            GroupMember.membership_id == member.id, Group.source == SOURCE_SCIM)
        .order_by(Group.id).with_for_update(of=Group, key_share=True)))
    if group_ids:
        db.session.execute(delete(GroupMember).where(
            GroupMember.membership_id == member.id, GroupMember.group_id.in_(group_ids)))
        db.session.execute(update(Group).where(Group.id.in_(group_ids)).values(
            version=Group.version + 1, updated_at=now))
    _touch(member, now)
    audit.record(actor, "member.deprovisioned", member.org_scope,
                 target_type="member", target_id=member.public_id, target_label=member.user_name,
                 details={"received_at": now.isoformat(), "access_ended_at": now.isoformat(),
                          "was_active": was_active, "groups_left": len(group_ids)})
