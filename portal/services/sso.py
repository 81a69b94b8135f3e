"""An organisation's SSO configuration: saving IdP settings, enforcement, break-glass, expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, has_request_context, url_for
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import (
    Account,
    GroupMember,
    GroupRoleMapping,
    Membership,
    MembershipRole,
    Organisation,
    Role,
    SsoConfig,
    utcnow,
)
from portal.permissions import IAM_MANAGE
from portal.services import audit, notifications, roles
from portal.services.errors import ServiceError
from portal.services.sso_settings import CertificateInfo, IdpSettings, parse_certificates

STATUS_NOT_CONFIGURED = "not_configured"
STATUS_CONFIGURED = "configured"
STATUS_ENFORCED = "enforced"
EXPIRY_WARNING = timedelta(days=30)


def get_config(org: Organisation | int) -> SsoConfig | None:
    """Return the organisation's SSO configuration, if any."""
    org_id = org if isinstance(org, int) else org.id
    return db.session.scalar(select(SsoConfig).where(SsoConfig.organisation_id == org_id))


def status(config: SsoConfig | None) -> str:
    """Return not_configured, configured or enforced."""
    if config is None:
        return STATUS_NOT_CONFIGURED
    return STATUS_ENFORCED if config.enforced else STATUS_CONFIGURED


def certificate_details(config: SsoConfig) -> list[CertificateInfo]:
    """Return the stored certificates parsed for display (expired ones included)."""
    return parse_certificates(config.idp_certificate, allow_expired=True)


def expires_soon(config: SsoConfig | None, *, now: datetime | None = None) -> bool:
    """Return whether the IdP's signing certificate expires within 30 days."""
    return config is not None and config.cert_not_after - (now or utcnow()) <= EXPIRY_WARNING


def save_config(org: Organisation, settings: IdpSettings, actor: audit.Actor,
                *, source: str) -> SsoConfig:
    """Create or replace the organisation's IdP settings and audit what changed."""
    config = get_config(org)
    created = config is None
    current = settings.current_certificate
    new_values = {
        "idp_entity_id": settings.entity_id, "idp_sso_url": settings.sso_url,
        "idp_certificate": "".join(c.pem for c in settings.certificates),
        "cert_subject": current.subject, "cert_not_after": current.not_after,
        "user_id_attribute": settings.user_id_attribute,
    }
    if config is None:
        config = SsoConfig(organisation_id=org.id, enforced=False)
        db.session.add(config)
    changed = [key for key, value in new_values.items() if getattr(config, key, None) != value]
    if not changed:
        return config
    for key, value in new_values.items():
        setattr(config, key, value)
    _touch(config, actor)
    db.session.flush()
    audit.record(actor, "sso.configured" if created else "sso.updated", org,
                 target_type="sso", target_id=org.key, target_label=settings.entity_id,
                 details={"source": source, "changed": changed, "sso_url": settings.sso_url,
                          "certificate_subject": current.subject,
                          "certificate_expires": current.not_after.isoformat(),
                          "fingerprints": [c.fingerprint for c in settings.certificates]})
    notify_expiring_certificate(config)
    return config


def _touch(config: SsoConfig, actor: audit.Actor) -> None:
    config.updated_at = utcnow()
    config.updated_by_id = actor.account_id
    config.updated_by_label = actor.label[:320]


def break_glass_admins(org: Organisation) -> list[Membership]:
    """Return the members who may still sign in with a password while SSO is enforced."""
    return list(db.session.scalars(
        select(Membership).join(Account)
        .where(Membership.organisation_id == org.id, Membership.is_break_glass.is_(True),
               Membership.active.is_(True), Membership.scim_deleted_at.is_(None),
               Account.password_hash.is_not(None))
        .order_by(Account.email)))


def set_enforced(org: Organisation, enforced: bool, actor: audit.Actor) -> bool:
    """Turn SSO enforcement on or off; return whether anything changed."""
    config = get_config(org)
    if config is None:
        raise ServiceError("Configure the identity provider before enforcing SSO.")
    if config.enforced == enforced:
        return False
    if enforced and not break_glass_admins(org):
        raise ServiceError("SSO cannot be enforced while the organisation has no break-glass "
                           "administrator. Mark an administrator who has a password as "
                           "break-glass first, so someone can still sign in if the IdP fails.")
    config.enforced = enforced
    _touch(config, actor)
    audit.record(actor, "sso.enforced" if enforced else "sso.enforcement_lifted", org,
                 target_type="sso", target_id=org.key, target_label=config.idp_entity_id)
    return True


def _no_password_message(member: Membership, actor: audit.Actor) -> str:
    """Say who has no password and where a password is set (the person's own account page)."""
    path = url_for("account.change_password") if has_request_context() else \
        current_app.url_map.bind("localhost").build("account.change_password")  # command line
    page = f"Your account → Password ({path})"
    if member.account_id == actor.account_id:
        return f"You have no password, so could not sign in if the IdP fails. Set one under {page} first."
    return (f"{member.account.email} has no password, so could not sign in if the IdP fails. "
            f"They can set one themselves, once signed in (through SSO), under {page}.")


def set_break_glass(member: Membership, on: bool, actor: audit.Actor) -> bool:
    """Mark or unmark a member as a break-glass administrator; return whether it changed."""
    if member.is_break_glass == on:
        return False
    org = member.organisation
    if on:
        if not member.active or member.scim_deleted_at is not None:
            raise ServiceError(f"{member.account.email} is deactivated and cannot be a "
                               "break-glass administrator.")
        if not member.account.password_hash:
            raise ServiceError(_no_password_message(member, actor))
        if IAM_MANAGE not in roles.effective_permissions(member):
            raise ServiceError(f"{member.account.email} does not hold the Identity & Access "
                               "Management permission, so could not turn SSO off in an "
                               "emergency.")
    else:
        config = get_config(org)
        others = [m for m in break_glass_admins(org) if m.id != member.id]
        if config is not None and config.enforced and not others:
            raise ServiceError("This is the last break-glass administrator while SSO is "
                               "enforced. Turn enforcement off or mark someone else first.")
    member.is_break_glass = on
    audit.record(actor, "member.break_glass_set" if on else "member.break_glass_cleared", org,
                 target_type="member", target_id=member.public_id,
                 target_label=member.account.email)
    return True


def find_member_by_email(org: Organisation, email: str) -> Membership | None:
    """Return the organisation's member whose account email is this one."""
    return db.session.scalar(
        select(Membership).join(Account)
        .where(Membership.organisation_id == org.id, Account.email == email.strip().lower()))


def iam_administrators(org_id: int) -> list[Membership]:
    """Return the active members holding the IAM permission (by role or by group)."""
    role_ids = [r.id for r in db.session.scalars(select(Role)) if IAM_MANAGE in r.permissions]
    if not role_ids:
        return []
    direct = select(MembershipRole.membership_id).where(MembershipRole.role_id.in_(role_ids))
    mapped = (select(GroupMember.membership_id)
              .join(GroupRoleMapping, GroupRoleMapping.group_id == GroupMember.group_id)
              .where(GroupRoleMapping.role_id.in_(role_ids)))
    return list(db.session.scalars(
        select(Membership).where(
            Membership.organisation_id == org_id, Membership.active.is_(True),
            Membership.scim_deleted_at.is_(None),
            or_(Membership.id.in_(direct), Membership.id.in_(mapped)))))


def notify_expiring_certificate(config: SsoConfig, *, now: datetime | None = None) -> int:
    """Tell the organisation's IAM administrators that the IdP certificate expires soon."""
    if not expires_soon(config, now=now):
        return 0
    org = db.session.get(Organisation, config.organisation_id)
    days = max(0, (config.cert_not_after - (now or utcnow())).days)
    message = (f"The SSO signing certificate of {org.name if org else 'your organisation'} "
               f"expires on {config.cert_not_after:%Y-%m-%d} (in {days} days). Upload the "
               "identity provider's new certificate or metadata before then.")
    sent = 0
    for member in iam_administrators(config.organisation_id):
        note = notifications.notify(
            member.account, message, organisation=org, link=url_for("iam.sso"),
            dedupe_key=f"sso-cert-expiry:{config.organisation_id}:{config.cert_not_after:%Y%m%d}",
            permission=IAM_MANAGE)
        sent += note is not None
    return sent


def notify_expiring_certificates(*, now: datetime | None = None) -> int:
    """Check every organisation's IdP certificate (for a daily cron); return notices sent."""
    soon = (now or utcnow()) + EXPIRY_WARNING
    configs = db.session.scalars(select(SsoConfig).where(SsoConfig.cert_not_after <= soon))
    return sum(notify_expiring_certificate(config, now=now) for config in configs)
