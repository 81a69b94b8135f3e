"""The data model shared by the portal and the SCIM API.

An Account is a person who can sign in; a Membership is that person inside one
Organisation and is also the SCIM User resource of that organisation, so every
SCIM-facing attribute lives on Membership and nothing one organisation's IdP
sends can change another organisation's data.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from portal import clock, scim_tally
from portal.extensions import db


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (from portal.clock, freezable in tests)."""
    return clock.now()


def new_public_id() -> str:
    """Return a new opaque id for a resource exposed outside the database."""
    return str(uuid.uuid4())


def new_org_key() -> str:
    """Return a new random, URL-safe organisation key (22 chars, 128 bits)."""
    return secrets.token_urlsafe(16)


class UTCDateTime(db.TypeDecorator):  # type: ignore[name-defined]
    """A timezone-aware datetime that comes back aware on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        # SQLite keeps the wall time and drops the offset: store every instant in UTC so
        # values compare correctly as text there.
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


# Organisation.scim_rollout values
ROLLOUT_RELEASED = "released"
ROLLOUT_PENDING = "pending"


class OrgScope(Protocol):
    """Anything naming an organisation by id: what scoped queries and audit events need."""

    @property
    def id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class OrganisationId:
    """An organisation named by its id alone (an OrgScope that loads nothing)."""

    id: int


class _InOrganisation:
    """Rows that belong to one organisation: their scope without loading the organisation.

    `row.organisation` would load it (one more statement on every SCIM write); scoped
    queries and audit events need only the id.
    """

    @property
    def org_scope(self) -> OrganisationId:
        return OrganisationId(self.organisation_id)  # type: ignore[attr-defined]


class Organisation(db.Model):  # type: ignore[name-defined]
    """A customer organisation; its key goes into the SCIM Base URL and never changes."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, default=new_org_key)
    name: Mapped[str] = mapped_column(String(200))
    scim_rollout: Mapped[str] = mapped_column(String(20), default=ROLLOUT_RELEASED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def scim_released(self) -> bool:
        return self.scim_rollout == ROLLOUT_RELEASED


class Account(db.Model):  # type: ignore[name-defined]
    """A person who can sign in; may belong to several organisations."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_support_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # Changing this ends every session the account holds (Flask-Login alternative id).
    session_token: Mapped[str] = mapped_column(
        String(64), default=lambda: secrets.token_hex(16)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="account")

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return True

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def name(self) -> str:
        return self.display_name or self.email


class Role(db.Model):  # type: ignore[name-defined]
    """A named set of permissions (platform-defined; see portal.permissions)."""

    __tablename__ = "role"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)


class MembershipRole(db.Model):  # type: ignore[name-defined]
    """A role given to a member by hand (not through a group mapping)."""

    __tablename__ = "membership_role"

    membership_id: Mapped[int] = mapped_column(
        ForeignKey("membership.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)


# RoleGrant.end_reason values
GRANT_EXPIRED = "expired"
GRANT_ENDED_EARLY = "ended early"


class RoleGrant(db.Model):  # type: ignore[name-defined]
    """A role given to a member for a purpose until an instant; it stops counting at `until`.

    Effective roles only count a grant while `until` is in the future and `ended_at` is
    empty, so an expiry needs no job; `ended_at`/`end_reason` record how it ended.
    """

    __tablename__ = "role_grant"
    __table_args__ = (
        Index("ix_role_grant_membership", "membership_id", "until"),
        # The tidy-up looks for open grants that have run out.
        Index("ix_role_grant_open_until", "until",
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    membership_id: Mapped[int] = mapped_column(ForeignKey("membership.id", ondelete="CASCADE"))
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(300))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    granted_by_label: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    ended_by_label: Mapped[str | None] = mapped_column(String(320))
    end_reason: Mapped[str | None] = mapped_column(String(20))

    organisation: Mapped[Organisation] = relationship()
    membership: Mapped[Membership] = relationship()
    role: Mapped[Role] = relationship()

    def is_active(self, at: datetime) -> bool:
        """Return whether the grant counts at this instant."""
        return self.ended_at is None and self.until > at


# Membership.source values
SOURCE_MANUAL = "manual"
SOURCE_SCIM = "scim"


class Membership(_InOrganisation, db.Model):  # type: ignore[name-defined]
    """A person inside one organisation; also that organisation's SCIM User resource."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("organisation_id", "account_id"),
        # userName is unique per organisation, case-insensitively (RFC 7643 caseExact=false).
        UniqueConstraint("organisation_id", "user_name_lower", name="uq_membership_org_username"),
        Index("ix_membership_org_external_id", "organisation_id", "external_id"),
        Index("ix_membership_org_id", "organisation_id", "id"),
        # Covers SCIM lists: COUNT and the id-ordered page of an organisation's live SCIM
        # users read this index alone (a page of 100 at 100,000 users: COUNT 33 -> 10 ms).
        Index("ix_membership_org_scim_live", "organisation_id", "scim_managed",
              "scim_deleted_at", "id"),
        # The People list's order: what it shows (the label), case-folded, ties by id.
        Index("ix_membership_org_sort", "organisation_id", "sort_name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(20), default=SOURCE_MANUAL)
    scim_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_break_glass: Mapped[bool] = mapped_column(Boolean, default=False)

    # SCIM core User attributes (RFC 7643 §4.1)
    user_name: Mapped[str] = mapped_column(String(320))
    user_name_lower: Mapped[str] = mapped_column(String(320))
    # `label` case-folded, kept by _keep_sort_names below; the People list sorts on it.
    sort_name: Mapped[str] = mapped_column(String(320), default="")
    external_id: Mapped[str | None] = mapped_column(String(320))
    name_formatted: Mapped[str | None] = mapped_column(String(300))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    middle_name: Mapped[str | None] = mapped_column(String(200))
    honorific_prefix: Mapped[str | None] = mapped_column(String(50))
    honorific_suffix: Mapped[str | None] = mapped_column(String(50))
    display_name: Mapped[str | None] = mapped_column(String(300))
    nick_name: Mapped[str | None] = mapped_column(String(200))
    profile_url: Mapped[str | None] = mapped_column(String(1000))
    title: Mapped[str | None] = mapped_column(String(200))
    user_type: Mapped[str | None] = mapped_column(String(100))
    preferred_language: Mapped[str | None] = mapped_column(String(50))
    locale: Mapped[str | None] = mapped_column(String(50))
    timezone: Mapped[str | None] = mapped_column(String(100))
    # Multi-valued complex attributes that are returned but never filtered on
    # (phoneNumbers, addresses, ims, photos, entitlements, roles, x509Certificates).
    extra_attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Enterprise User extension (RFC 7643 §4.3)
    employee_number: Mapped[str | None] = mapped_column(String(100))
    cost_center: Mapped[str | None] = mapped_column(String(100))
    organization: Mapped[str | None] = mapped_column(String(200))
    division: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("membership.id", ondelete="SET NULL")
    )

    # Lifecycle
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the IdP DELETEs the user: gone for SCIM, kept for audit, re-linked on re-create.
    scim_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation] = relationship()
    emails: Mapped[list[MemberEmail]] = relationship(
        back_populates="membership", cascade="all, delete-orphan", order_by="MemberEmail.id"
    )
    roles: Mapped[list[Role]] = relationship(secondary="membership_role")
    manager: Mapped[Membership | None] = relationship(remote_side=[id])

    @property
    def label(self) -> str:
        """Return the name to show for this member."""
        return self.display_name or self.account.display_name or self.user_name


def sort_name_for(label: str) -> str:
    """Return the People list's sort key of a label: spaces collapsed, case-folded."""
    return " ".join(label.split()).casefold()[:320]


_LABEL_PARTS = ("display_name", "user_name", "account_id")


@event.listens_for(Session, "before_flush")
def _keep_sort_names(session: Session, _context: Any, _instances: Any) -> None:
    """Recompute Membership.sort_name when a name its label comes from changes."""
    members: set[Membership] = set()
    for obj in session.new:
        if isinstance(obj, Membership):
            members.add(obj)
    for obj in session.dirty:
        state = inspect(obj)
        if isinstance(obj, Membership) and any(
                state.attrs[name].history.has_changes() for name in _LABEL_PARTS):
            members.add(obj)
        elif isinstance(obj, Account) and state.attrs.display_name.history.has_changes():
            members.update(obj.memberships)
    for member in members:
        account = member.account
        if account is None and member.account_id is not None:  # pending: not loaded yet
            account = session.get(Account, member.account_id)
        name = member.display_name or (account.display_name if account else "") \
            or member.user_name or ""
        member.sort_name = sort_name_for(name)


class ScimUserTally(db.Model):  # type: ignore[name-defined]
    """Live SCIM Users of an organisation, in slots kept by triggers (portal.scim_tally)."""

    __tablename__ = "scim_user_tally"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    live: Mapped[int] = mapped_column(Integer, default=0)


scim_tally.install(db.metadata)


class MemberEmail(db.Model):  # type: ignore[name-defined]
    """One entry of a SCIM User's `emails`."""

    __tablename__ = "member_email"
    __table_args__ = (Index("ix_member_email_value_lower", "value_lower"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(
        ForeignKey("membership.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[str] = mapped_column(String(320))
    value_lower: Mapped[str] = mapped_column(String(320))
    type: Mapped[str | None] = mapped_column(String(50))
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    display: Mapped[str | None] = mapped_column(String(320))

    membership: Mapped[Membership] = relationship(back_populates="emails")


# Group.source values reuse SOURCE_MANUAL / SOURCE_SCIM


class Group(_InOrganisation, db.Model):  # type: ignore[name-defined]
    """An organisation's group; SCIM Group resource when synced by the IdP."""

    __tablename__ = "group"
    __table_args__ = (
        UniqueConstraint("organisation_id", "display_name_lower", name="uq_group_org_name"),
        Index("ix_group_org_external_id", "organisation_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(300))
    display_name_lower: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(20), default=SOURCE_MANUAL)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class GroupMember(db.Model):  # type: ignore[name-defined]
    """A member of a group; one row each, so large groups change one row at a time."""

    __tablename__ = "group_member"
    # A User's groups in group order straight from the index (no table read, no sort).
    __table_args__ = (Index("ix_group_member_membership", "membership_id", "group_id"),)

    group_id: Mapped[int] = mapped_column(
        ForeignKey("group.id", ondelete="CASCADE"), primary_key=True
    )
    membership_id: Mapped[int] = mapped_column(
        ForeignKey("membership.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupRoleMapping(db.Model):  # type: ignore[name-defined]
    """Members of the group hold the role while they are in it."""

    __tablename__ = "group_role_mapping"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("group.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)


class ScimToken(db.Model):  # type: ignore[name-defined]
    """An organisation's SCIM bearer token, stored only as a SHA-256 digest.

    Rotated tokens stay as revoked rows for the record; a partial unique index
    allows one unrevoked token per organisation, so concurrent rotations cannot
    both win.
    """

    __tablename__ = "scim_token"
    __table_args__ = (
        Index(
            "uq_scim_token_one_active",
            "organisation_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(40))  # e.g. "dpms_scim_…a1b2"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    created_by_label: Mapped[str] = mapped_column(String(320), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_agent: Mapped[str | None] = mapped_column(String(300))

    organisation: Mapped[Organisation] = relationship()


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """An append-only record of an administrative or lifecycle event."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_org_created", "organisation_id", "created_at"),
        # A person's or group's history on the People and Groups screens.
        Index("ix_audit_event_org_target", "organisation_id", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    actor_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL")
    )
    actor_label: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(64))
    target_label: Mapped[str | None] = mapped_column(String(320))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(db.Model):  # type: ignore[name-defined]
    """A message in a person's notification bell."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_account_unread", "account_id", "read_at"),
        UniqueConstraint("account_id", "dedupe_key", name="uq_notification_dedupe"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    # Shown only while the reader can use the organisation and holds this permission there.
    permission: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation | None] = relationship()


class ScimIncident(db.Model):  # type: ignore[name-defined]
    """A period in which an organisation's SCIM provisioning was broken (see scim_notices)."""

    __tablename__ = "scim_incident"
    __table_args__ = (
        Index("uq_scim_incident_open", "organisation_id", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The provisioning_activity id of the latest failure (no foreign key: the log is pruned).
    last_failure_id: Mapped[int] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SsoConfig(db.Model):  # type: ignore[name-defined]
    """An organisation's SAML identity provider and whether SSO is enforced (one per org)."""

    __tablename__ = "sso_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), unique=True
    )
    idp_entity_id: Mapped[str] = mapped_column(String(1024))
    idp_sso_url: Mapped[str] = mapped_column(String(2048))
    # One or more PEM certificates (several while the IdP rolls its signing key over).
    idp_certificate: Mapped[str] = mapped_column(Text)
    cert_subject: Mapped[str] = mapped_column(String(1000))
    cert_not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    # SAML attribute holding the person's userName/email; None means the NameID.
    user_id_attribute: Mapped[str | None] = mapped_column(String(300))
    enforced: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    updated_by_label: Mapped[str] = mapped_column(String(320), default="")
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_summary: Mapped[str | None] = mapped_column(String(500))

    organisation: Mapped[Organisation] = relationship()


class UsedAssertion(db.Model):  # type: ignore[name-defined]
    """A SAML assertion already consumed, kept until it expires so it cannot be replayed."""

    __tablename__ = "used_assertion"
    __table_args__ = (
        UniqueConstraint("organisation_id", "assertion_id", name="uq_used_assertion_org_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    assertion_id: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ProvisioningActivity(db.Model):  # type: ignore[name-defined]
    """One request to the SCIM API, as the IdP sent it and as we answered (secrets removed)."""

    __tablename__ = "provisioning_activity"
    __table_args__ = (
        Index("ix_provisioning_activity_org_time", "organisation_id", "time"),
        Index(
            "ix_provisioning_activity_org_errors",
            "organisation_id",
            "time",
            sqlite_where=text("status >= 400"),
            postgresql_where=text("status >= 400"),
        ),
        # No index on `time` alone: every SCIM request writes a record, and each index is
        # one more page written; the daily prune goes organisation by organisation.
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null when the URL names no organisation we know.
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))
    resource_type: Mapped[str | None] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    scim_type: Mapped[str | None] = mapped_column(String(50))
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    client: Mapped[str | None] = mapped_column(String(300))
    effect: Mapped[str | None] = mapped_column(Text)
    request_body: Mapped[Any | None] = mapped_column(JSON)
    token_valid: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def failed(self) -> bool:
        return self.status >= 400
