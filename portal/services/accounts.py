"""Accounts, memberships and signing in."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from portal.extensions import db
from portal.models import (
    SOURCE_MANUAL,
    Account,
    MemberEmail,
    Membership,
    Organisation,
    Role,
    SsoConfig,
)
from portal.services import audit
from portal.services.errors import ServiceError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256  # well beyond any passphrase; bounds the work of one hash
MIN_PASSWORD_SCORE = 2  # zxcvbn's 0-4: 2 is "somewhat guessable" (~10^8 guesses) and above
ESTIMATED_LENGTH = 72  # zxcvbn's own limit; a longer password is judged by its beginning


class WrongPassword(ServiceError):
    """The current password given to change a password is not the account's."""


# A hash of a random password, checked when the email is unknown so that a wrong
# email and a wrong password take the same time (no account enumeration by timing).
_DUMMY_HASH = generate_password_hash("not-a-real-password-4a7c")


def normalise_email(email: str) -> str:
    """Return the email trimmed and lower-cased, or raise if it is not plausible."""
    email = (email or "").strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 320:
        raise ServiceError("Enter a valid email address.")
    return email


def find_account(email: str) -> Account | None:
    """Return the account with this email, if any."""
    return db.session.scalar(select(Account).where(Account.email == email.strip().lower()))


def get_or_create_account(email: str, *, display_name: str = "") -> Account:
    """Return the account for an email, creating one without a password if needed."""
    email = normalise_email(email)
    account = find_account(email)
    if account is None:
        account = Account(email=email, display_name=display_name)
        db.session.add(account)
        db.session.flush()
    return account


def password_problem(password: str, about: Sequence[str] = ()) -> str | None:
    """Return why a new password is not acceptable, or None if it is.

    Besides the length, a password must not be easy to guess (NIST SP 800-63B asks to
    refuse commonly used and compromised ones): zxcvbn, a well-kept estimator with lists of
    common passwords, names and words, must rate it at least MIN_PASSWORD_SCORE of 4.
    `about` holds what an attacker knows of the person (their email), which must not help.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"A password can have at most {MAX_PASSWORD_LENGTH} characters."
    if not password.strip():
        return "A password cannot be only spaces."
    words = [part for text in about
             for part in (text, text.partition("@")[0], *text.replace("@", ".").split("."))
             if len(part) > 2]
    verdict = zxcvbn(password[:ESTIMATED_LENGTH], user_inputs=words)
    if verdict["score"] < MIN_PASSWORD_SCORE:
        why = (verdict["feedback"].get("warning") or "It is too easy to guess.").rstrip(".")
        return (f"Choose a password that is harder to guess: {why}. A few unrelated words "
                "make a strong password that is easy to remember.")
    return None


def set_password(account: Account, password: str) -> None:
    """Set the account's password (scrypt hash)."""
    problem = password_problem(password, about=[account.email])
    if problem:
        raise ServiceError(problem)
    account.password_hash = generate_password_hash(password)


def change_own_password(account: Account, new: str, current: str | None = None) -> bool:
    """Set (if none) or change the account's password, end its other sessions, audit it.

    Changing needs the current password. Returns whether the account had a password
    before. Checks everything before writing anything.
    """
    had_password = bool(account.password_hash)
    if had_password:
        if not check_password_hash(account.password_hash or "", current or ""):
            raise WrongPassword("The current password is not correct.")
        if check_password_hash(account.password_hash or "", new):
            raise ServiceError("The new password must differ from the current one.")
    set_password(account, new)
    account.session_token = secrets.token_hex(16)  # every session signed in before ends
    action = "account.password_changed" if had_password else "account.password_set"
    actor = audit.Actor.of(account)
    # Each organisation the person belongs to sees it in its log and in their history.
    for member in account.memberships:
        audit.record(actor, action, member.org_scope, target_type="member",
                     target_id=member.public_id, target_label=account.email,
                     details={"other_sessions_ended": True})
    if not account.memberships:
        audit.record(actor, action, None, target_type="account", target_id=str(account.id),
                     target_label=account.email, details={"other_sessions_ended": True})
    db.session.flush()
    return had_password


def add_member(
    org: Organisation,
    email: str,
    actor: audit.Actor,
    *,
    role: Role | None = None,
    password: str | None = None,
    display_name: str = "",
) -> Membership:
    """Create the account if needed and make it a member of the organisation (idempotent)."""
    account = get_or_create_account(email, display_name=display_name)
    if password:
        set_password(account, password)
    if display_name and not account.display_name:
        account.display_name = display_name
    membership = db.session.scalar(
        select(Membership).where(
            Membership.organisation_id == org.id, Membership.account_id == account.id
        )
    )
    if membership is None:
        membership = Membership(
            organisation_id=org.id,
            account_id=account.id,
            source=SOURCE_MANUAL,
            user_name=account.email,
            user_name_lower=account.email,
            display_name=display_name or None,
            emails=[MemberEmail(value=account.email, value_lower=account.email, type="work",
                                primary=True)],
        )
        db.session.add(membership)
        db.session.flush()
        audit.record(actor, "member.added", org, target_type="member",
                     target_id=membership.public_id, target_label=account.email)
    if role is not None and role not in membership.roles:
        membership.roles.append(role)
        audit.record(actor, "member.role_granted", org, target_type="member",
                     target_id=membership.public_id, target_label=account.email,
                     details={"role": role.name})
    db.session.flush()
    return membership


@dataclass(frozen=True)
class SignInResult:
    """The outcome of a password check: an account, and the organisations it may enter."""

    account: Account | None
    usable_memberships: list[Membership]
    # Organisations the account belongs to but must enter through SSO (enforced there).
    sso_required: list[Organisation] = field(default_factory=list)

    @property
    def deactivated_everywhere(self) -> bool:
        return self.account is not None and not self.usable_memberships and not self.sso_required


def authenticate(email: str, password: str) -> SignInResult:
    """Check email and password; only after a correct password say which memberships work."""
    account = find_account(email or "")
    if account is None or not account.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")
        return SignInResult(None, [])
    if not check_password_hash(account.password_hash, password or ""):
        return SignInResult(None, [])
    return SignInResult(account, usable_memberships(account), sso_required_organisations(account))


def usable_memberships(account: Account, *, sso_org_id: int | None = None) -> list[Membership]:
    """Return the memberships through which the account may use the portal now.

    A session signed in through an organisation's SSO reaches that organisation only (its
    IdP vouches for nobody else's data). A password session reaches every organisation
    except those enforcing SSO, where only break-glass administrators may use a password.
    """
    query = (
        select(Membership)
        .join(Organisation)
        .outerjoin(SsoConfig, SsoConfig.organisation_id == Membership.organisation_id)
        .where(Membership.account_id == account.id, Membership.active.is_(True),
               Membership.scim_deleted_at.is_(None))
        .order_by(func.lower(Organisation.name))
    )
    if sso_org_id is not None:
        query = query.where(Membership.organisation_id == sso_org_id)
    else:
        query = query.where(or_(SsoConfig.id.is_(None), SsoConfig.enforced.is_(False),
                                Membership.is_break_glass.is_(True)))
    return list(db.session.scalars(query))


def sso_required_organisations(account: Account) -> list[Organisation]:
    """Return the organisations where this account is active but must sign in through SSO."""
    return list(db.session.scalars(
        select(Organisation)
        .join(Membership, Membership.organisation_id == Organisation.id)
        .join(SsoConfig, SsoConfig.organisation_id == Organisation.id)
        .where(Membership.account_id == account.id, Membership.active.is_(True),
               Membership.scim_deleted_at.is_(None), Membership.is_break_glass.is_(False),
               SsoConfig.enforced.is_(True))
        .order_by(func.lower(Organisation.name))))
