"""SCIM bearer tokens: generated once, shown once, stored as a SHA-256 digest.

Tokens are long random secrets, so a fast digest is enough (a slow password hash
would throttle every IdP request) and lets us look the token up by index.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, bindparam, select, update

from portal.extensions import db
from portal.models import ROLLOUT_RELEASED, Organisation, ScimToken, utcnow
from portal.prepared import Prepared
from portal.services import audit

# A fixed, recognisable prefix lets secret scanners spot a leaked token.
TOKEN_PREFIX = "dpms_scim_"
# Write "last used" at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: the plaintext exists only in this object."""

    plaintext: str
    record: ScimToken


def digest(plaintext: str) -> str:
    """Return the hex SHA-256 digest of a presented token."""
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def active_token(org: Organisation) -> ScimToken | None:
    """Return the organisation's current (unrevoked) token, if any."""
    return db.session.scalar(
        select(ScimToken).where(ScimToken.organisation_id == org.id, ScimToken.revoked_at.is_(None))
    )


def issue_token(org: Organisation, actor: audit.Actor) -> IssuedToken:
    """Revoke any current token and issue a new one; the old one stops working at commit.

    The organisation row is locked first, so two administrators rotating at the
    same moment are serialised and exactly one token remains valid.
    """
    db.session.execute(
        select(Organisation.id).where(Organisation.id == org.id).with_for_update()
    )
    now = utcnow()
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(ScimToken)
        .where(ScimToken.organisation_id == org.id, ScimToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    revoked = result.rowcount
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ScimToken(
        organisation_id=org.id,
        digest=digest(plaintext),
        hint=f"{TOKEN_PREFIX}…{plaintext[-4:]}",
        created_at=now,
        created_by_id=actor.account_id,
        created_by_label=actor.label,
    )
    db.session.add(record)
    db.session.flush()
    audit.record(actor, "scim.token_rotated" if revoked else "scim.token_generated", org,
                 target_type="scim_token", target_id=str(record.id), target_label=record.hint)
    return IssuedToken(plaintext, record)


@dataclass(frozen=True, slots=True)
class TokenOrganisation:
    """The organisation a valid token acts for, as plain values (not a loaded object).

    Every SCIM request needs only these; loading the ORM object cost ~100 µs a request
    (an entity, its identity-map state, and its expiry at commit). Services read `id`
    (and `name` for messages) and never assign it to a relationship.
    """

    id: int
    key: str
    name: str
    scim_rollout: str

    @property
    def scim_released(self) -> bool:
        return self.scim_rollout == ROLLOUT_RELEASED


@dataclass(frozen=True)
class VerifiedToken:
    """A presented token that matched: which row, when it was last used, for which organisation."""

    id: int
    organisation: TokenOrganisation
    last_used_at: datetime | None
    last_used_agent: str | None


# Built once: every SCIM request runs it, and a prebuilt statement skips rebuilding the
# expression and its cache key. Plain columns only, no entity (see TokenOrganisation).
_TOKEN_AND_ORG = Prepared(
    select(ScimToken.id, ScimToken.digest, ScimToken.last_used_at, ScimToken.last_used_agent,
           Organisation.id, Organisation.key, Organisation.name, Organisation.scim_rollout)
    .join(ScimToken, ScimToken.organisation_id == Organisation.id)
    .where(ScimToken.digest == bindparam("digest"), ScimToken.revoked_at.is_(None))
)
_NOTE_USE = (
    update(ScimToken.__table__)
    .where(ScimToken.__table__.c.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now"), last_used_agent=bindparam("agent"))
)


def _presentable(org_key: str, presented: str) -> bool:
    """Return whether a presented value could be a token of an organisation key at all."""
    # Keys are ASCII (and compare_digest refuses other text).
    return bool(presented) and len(presented) <= 512 and org_key.isascii()


def verify_token(org_key: str, presented: str) -> VerifiedToken | None:
    """Return the active token matching the presented value under this organisation key."""
    if not _presentable(org_key, presented):
        return None
    wanted = digest(presented)
    # One round trip per SCIM request: the organisation comes with the token.
    row = _TOKEN_AND_ORG.first({"digest": wanted})
    if row is None:
        return None
    token_id, stored, last_used_at, last_used_agent, *org_values = row
    org = TokenOrganisation(*org_values)
    if not (hmac.compare_digest(stored, wanted) and hmac.compare_digest(org.key, org_key)):
        return None
    return VerifiedToken(token_id, org, last_used_at, last_used_agent)


# How the SCIM API's refusal of a replaced token begins (its activity record's detail).
REPLACED_DETAIL = (
    "Authentication failed: this SCIM token was replaced on {when} and no longer works. "
    "Enter the organisation's current SCIM token in your identity provider's provisioning "
    "settings (an administrator can generate a new one on the SCIM page)."
)
REPLACED_PREFIX = REPLACED_DETAIL.partition("{")[0]


def refused_as_replaced(status: int, detail: str | None) -> bool:
    """Return whether an activity record is the refusal of a replaced token."""
    return status == 401 and (detail or "").startswith(REPLACED_PREFIX)


@dataclass(frozen=True)
class ReplacedToken:
    """A presented token that matched one this organisation replaced (rotated out)."""

    id: int
    organisation_id: int
    hint: str
    revoked_at: datetime

    @property
    def replaced_on(self) -> str:
        """When it was replaced, as the refusal and the admins' notice say it."""
        return f"{self.revoked_at:%Y-%m-%d %H:%M} UTC"


def replaced_token(org_key: str, presented: str) -> ReplacedToken | None:
    """Return the revoked token of this organisation the presented value matches, if any.

    Asked only after a token failed (so never on a successful request): an IdP still
    sending the old token after a rotation is told so, and its admins are warned.
    """
    if not _presentable(org_key, presented):
        return None
    wanted = digest(presented)
    row = db.session.execute(
        select(ScimToken.id, ScimToken.organisation_id, ScimToken.hint, ScimToken.revoked_at,
               ScimToken.digest, Organisation.key)
        .join(Organisation, Organisation.id == ScimToken.organisation_id)
        .where(ScimToken.digest == wanted, ScimToken.revoked_at.is_not(None))
    ).first()
    if row is None or not (hmac.compare_digest(row.digest, wanted)
                           and hmac.compare_digest(row.key, org_key)):
        return None
    return ReplacedToken(row.id, row.organisation_id, row.hint, row.revoked_at)


def note_use(token: VerifiedToken | ScimToken, user_agent: str | None) -> None:
    """Record when and by which client a token was last used (at most once a minute)."""
    now = utcnow()
    agent = (user_agent or "")[:300] or None
    if (
        token.last_used_at is None
        or now - token.last_used_at >= LAST_USED_RESOLUTION
        or token.last_used_agent != agent
    ):
        # A plain UPDATE: the row is not loaded as an object on the hot path.
        db.session.execute(_NOTE_USE, {"token_id": token.id, "now": now, "agent": agent})
        if isinstance(token, ScimToken):  # a loaded row reads the new values next time
            db.session.expire(token, ["last_used_at", "last_used_agent"])
