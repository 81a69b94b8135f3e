"""Deciding a SAML sign-in: who the IdP vouches for, and whether they may come in."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import Account, MemberEmail, Membership, Organisation, SsoConfig, utcnow
from portal.services import audit, saml
from portal.services.saml import PendingRequest, SamlRejected, VerifiedAssertion

log = logging.getLogger(__name__)

# Refusals that happen after the IdP's signature was verified are worth an audit event;
# unverifiable junk is only logged, so anonymous posts cannot flood the audit log.
AUDITED_REFUSALS = frozenset({"replayed", "unknown", "deactivated"})


@dataclass
class AcsOutcome:
    """The result of one POST to the ACS: a member to sign in, or a refusal, or a test report."""

    request: PendingRequest | None = None
    assertion: VerifiedAssertion | None = None
    member: Membership | None = None
    refusal: SamlRejected | None = None

    @property
    def is_test(self) -> bool:
        return self.request is not None and self.request.test

    @property
    def next_path(self) -> str | None:
        return self.request.next_path if self.request else None


def process_response(org: Organisation, config: SsoConfig, saml_response: str,
                     pending: list[PendingRequest], *, now: datetime | None = None) -> AcsOutcome:
    """Verify the IdP's response, refuse replays, match the member; audit the decision."""
    outcome = AcsOutcome()
    try:
        outcome.request = saml.match_pending(saml_response, config, org, pending)
        outcome.assertion = saml.verify_response(saml_response, config, org, outcome.request)
        saml.remember_assertion(org, outcome.assertion, now=now)
        outcome.member = saml.admit(org, outcome.assertion)
    except SamlRejected as exc:
        outcome.refusal = exc
        log.info("SAML sign-in refused for organisation %s (%s): %s", org.key, exc.code,
                 exc.detail)
    if outcome.is_test:
        _record_test(config, org, outcome, now=now)
    elif outcome.refusal is None and outcome.member is not None:
        audit.record(audit.Actor.of(outcome.member.account), "sso.signed_in", org,
                     target_type="member", target_id=outcome.member.public_id,
                     target_label=outcome.member.user_name,
                     details={"idp": config.idp_entity_id,
                              "initiated_by": "sp" if outcome.request else "idp"})
    return outcome


def record_refusal(org_id: int, outcome: AcsOutcome) -> None:
    """After the refused request's rollback: keep the assertion used up and audit the refusal."""
    refusal, assertion = outcome.refusal, outcome.assertion
    if refusal is None or refusal.code not in AUDITED_REFUSALS or assertion is None:
        return
    org = db.session.get(Organisation, org_id)
    if org is None:
        return
    if refusal.code != "replayed":
        # Used up, so it cannot be replayed once SCIM has created or re-activated the person.
        with suppress(SamlRejected):
            saml.remember_assertion(org, assertion)
    audit.record(audit.Actor(label=f"SAML: {assertion.identifier or 'unknown subject'}"),
                 "sso.sign_in_refused", org, target_type="member",
                 target_id=outcome.member.public_id if outcome.member else None,
                 target_label=assertion.identifier, details={"reason": refusal.code})


def _record_test(config: SsoConfig, org: Organisation, outcome: AcsOutcome,
                 *, now: datetime | None) -> None:
    """Remember the test's result on the configuration and audit it."""
    if outcome.refusal is None and outcome.member is not None:
        summary = f"Signing in {outcome.member.user_name} would succeed."
    elif outcome.refusal is not None:
        summary = f"Refused ({outcome.refusal.code}): {outcome.refusal.detail}"
    else:
        summary = "No result."
    config.last_test_at = now or utcnow()
    config.last_test_ok = outcome.refusal is None
    config.last_test_summary = summary[:500]
    account_id = outcome.request.account_id if outcome.request else None
    account = db.session.get(Account, account_id) if account_id else None
    actor = audit.Actor.of(account) if account else audit.Actor(label="SSO test")
    audit.record(actor, "sso.tested", org, target_type="sso", target_id=org.key,
                 target_label=config.idp_entity_id,
                 details={"ok": config.last_test_ok,
                          "reason": outcome.refusal.code if outcome.refusal else None,
                          "identifier": outcome.assertion.identifier if outcome.assertion
                          else None})


def organisations_for(value: str) -> list[Organisation]:
    """Return the organisations with SSO configured that an email belongs to, or a key names."""
    value = (value or "").strip()
    if not value:
        return []
    query = select(Organisation).join(SsoConfig, SsoConfig.organisation_id == Organisation.id)
    if "@" not in value:
        return list(db.session.scalars(query.where(Organisation.key == value)))
    email = value.lower()
    query = (query.join(Membership, Membership.organisation_id == Organisation.id)
             .join(Account, Account.id == Membership.account_id)
             .outerjoin(MemberEmail, MemberEmail.membership_id == Membership.id)
             .where(or_(Membership.user_name_lower == email, MemberEmail.value_lower == email,
                        Account.email == email))
             .distinct().order_by(Organisation.name))
    return list(db.session.scalars(query))
