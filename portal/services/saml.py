"""SAML 2.0 Web SSO with python3-saml: requests, verifying responses, replay, member matching."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.errors import OneLogin_Saml2_Error
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import MemberEmail, Membership, Organisation, SsoConfig, UsedAssertion
from portal.models import utcnow as _utcnow
from portal.services.errors import ServiceError
from portal.services.organisations import public_base_url
from portal.services.sso_settings import parse_certificates

log = logging.getLogger(__name__)

# How long a started sign-in may take at the IdP before its request id is forgotten.
PENDING_MAX_AGE = 600
MAX_PENDING = 3
# python3-saml allows this much clock drift on Conditions (OneLogin_Saml2_Constants).
CLOCK_SKEW = timedelta(seconds=C.ALLOWED_CLOCK_DRIFT)


class SamlRejected(Exception):
    """A SAML response was refused; `code` says why, `detail` is for admins and logs only."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PendingRequest:
    """An AuthnRequest this browser started; kept in a signed cookie until the IdP answers."""

    request_id: str
    org_id: int
    test: bool = False
    account_id: int | None = None
    next_path: str | None = None


@dataclass(frozen=True)
class VerifiedAssertion:
    """What a response that passed every check says about the person."""

    assertion_id: str
    name_id: str | None
    name_id_format: str | None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    expires_at: datetime = datetime.min.replace(tzinfo=UTC)
    identifier: str | None = None


def external_url(endpoint: str, **values: Any) -> str:
    """Return an absolute URL on EXTERNAL_URL (else this request's host) for an endpoint."""
    return f"{public_base_url()}{url_for(endpoint, **values)}"


def sp_entity_id(org: Organisation) -> str:
    """Return the organisation's stable SP Entity ID (it also starts a sign-in when opened)."""
    return external_url("sso.login", org_key=org.key)


def acs_url(org: Organisation) -> str:
    """Return the organisation's Assertion Consumer Service URL."""
    return external_url("sso.acs", org_key=org.key)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="saml-pending-request")


def dump_pending(requests: list[PendingRequest]) -> str:
    """Sign the pending requests for the cookie (newest last, at most three)."""
    return _serializer().dumps([asdict(r) for r in requests[-MAX_PENDING:]])


def load_pending(cookie: str | None) -> list[PendingRequest]:
    """Return the pending requests from the cookie; tampered or stale cookies count as none."""
    if not cookie:
        return []
    try:
        raw = _serializer().loads(cookie, max_age=PENDING_MAX_AGE)
        return [PendingRequest(**item) for item in raw]
    except (BadSignature, TypeError, ValueError):
        return []


def saml_settings(config: SsoConfig, org: Organisation) -> OneLogin_Saml2_Settings:
    """Return python3-saml settings for the organisation: strict, signatures required."""
    try:
        certs = [c.pem for c in parse_certificates(config.idp_certificate, allow_expired=True)]
        return _settings(config, org, certs)
    except (OneLogin_Saml2_Error, ServiceError) as exc:
        raise SamlRejected("misconfigured", f"The stored SSO settings are unusable: {exc}") \
            from None


def _settings(config: SsoConfig, org: Organisation, certs: list[str]) -> OneLogin_Saml2_Settings:
    return OneLogin_Saml2_Settings({
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": sp_entity_id(org),
            "assertionConsumerService": {"url": acs_url(org), "binding": C.BINDING_HTTP_POST},
            "NameIDFormat": C.NAMEID_UNSPECIFIED,
        },
        "idp": {
            "entityId": config.idp_entity_id,
            "singleSignOnService": {"url": config.idp_sso_url, "binding": C.BINDING_HTTP_REDIRECT},
            "x509certMulti": {"signing": certs},
        },
        "security": {
            "authnRequestsSigned": False,
            "wantAssertionsSigned": False,  # the Response or the Assertion must be signed
            "wantMessagesSigned": False,
            "wantNameId": True,
            "wantAttributeStatement": False,
            "requestedAuthnContext": False,  # Entra refuses password contexts after MFA
            "rejectDeprecatedAlgorithm": True,  # no SHA-1 signatures
            "allowSingleLabelDomains": True,  # intranet hosts such as https://adfs/...
        },
    })


def _request_data(org: Organisation, post: dict[str, str] | None = None) -> dict[str, Any]:
    """Describe the ACS URL to python3-saml, so Destination/Recipient are checked against it."""
    url = urlsplit(acs_url(org))
    return {"https": "on" if url.scheme == "https" else "off", "http_host": url.netloc,
            "script_name": url.path, "get_data": {}, "post_data": post or {}}


def sp_metadata(org: Organisation) -> str:
    """Return the organisation's SP metadata XML (stable: no validUntil/cacheDuration)."""
    root = etree.fromstring(_sp_only_settings(org).get_sp_metadata())
    for attribute in ("validUntil", "cacheDuration"):
        root.attrib.pop(attribute, None)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def _sp_only_settings(org: Organisation) -> OneLogin_Saml2_Settings:
    return OneLogin_Saml2_Settings({
        "strict": True, "sp": {
            "entityId": sp_entity_id(org), "NameIDFormat": C.NAMEID_UNSPECIFIED,
            "assertionConsumerService": {"url": acs_url(org), "binding": C.BINDING_HTTP_POST}},
        "security": {"wantAssertionsSigned": False, "allowSingleLabelDomains": True}},
        sp_validation_only=True)


def start_login(config: SsoConfig, org: Organisation, *, test: bool = False,
                account_id: int | None = None,
                next_path: str | None = None) -> tuple[str, PendingRequest]:
    """Build an SP-initiated AuthnRequest; return the IdP redirect URL and what to remember."""
    auth = OneLogin_Saml2_Auth(_request_data(org), saml_settings(config, org))
    url = auth.login(return_to=next_path or "")
    return url, PendingRequest(request_id=auth.get_last_request_id(), org_id=org.id, test=test,
                               account_id=account_id, next_path=next_path)


def match_pending(saml_response: str, config: SsoConfig, org: Organisation,
                  pending: list[PendingRequest]) -> PendingRequest | None:
    """Return the pending request the response claims to answer (None if IdP-initiated)."""
    try:
        in_response_to = OneLogin_Saml2_Response(saml_settings(config, org),
                                                 saml_response).get_in_response_to()
    except Exception:  # unreadable: verify_response reports it
        return None
    if in_response_to is None:
        return None
    found = next((p for p in pending if p.request_id == in_response_to and p.org_id == org.id),
                 None)
    if found is None:
        raise SamlRejected("unsolicited", "The response answers a sign-in request that this "
                           "browser did not start, or that took longer than 10 minutes.")
    return found


def verify_response(saml_response: str, config: SsoConfig, org: Organisation,
                    request: PendingRequest | None) -> VerifiedAssertion:
    """Check signature, issuer, audience, destination, times and InResponseTo, or raise."""
    try:
        response = OneLogin_Saml2_Response(saml_settings(config, org), saml_response)
    except Exception as exc:
        raise SamlRejected("invalid", "The SAMLResponse could not be read "
                           f"({type(exc).__name__}).") from None
    request_id = request.request_id if request else None
    if not response.is_valid(_request_data(org, {"SAMLResponse": saml_response}), request_id):
        raise SamlRejected("invalid", response.get_error() or "The response is not valid.")
    if request is None and response.get_in_response_to() is not None:
        raise SamlRejected("unsolicited", "The response answers a sign-in request that this "
                           "browser did not start, or that took longer than 10 minutes.")
    if not response.document.get("Destination"):
        raise SamlRejected("invalid", "The response has no Destination.")
    not_on_or_after = response.get_assertion_not_on_or_after()
    if not not_on_or_after:
        raise SamlRejected("invalid", "The assertion's SubjectConfirmationData has no "
                           "NotOnOrAfter, so it could be replayed forever.")
    try:
        assertion_id = response.get_assertion_id()
        name_id = response.get_nameid()
        name_id_format = response.get_nameid_format()
    except Exception as exc:
        raise SamlRejected("invalid", str(exc)) from None
    if not assertion_id:
        raise SamlRejected("invalid", "The assertion has no ID.")
    attributes = {str(k): [str(v) for v in values if v is not None]
                  for k, values in response.get_attributes().items()}
    if config.user_id_attribute:
        identifier = next(iter(attributes.get(config.user_id_attribute) or []), None)
    else:
        identifier = name_id
    return VerifiedAssertion(
        assertion_id=assertion_id, name_id=name_id, name_id_format=name_id_format,
        attributes=attributes, identifier=(identifier or "").strip() or None,
        expires_at=datetime.fromtimestamp(not_on_or_after, UTC) + CLOCK_SKEW)


def remember_assertion(org: Organisation, assertion: VerifiedAssertion,
                       *, now: datetime | None = None) -> None:
    """Record the assertion as used (in the database, so every worker sees it) or raise."""
    db.session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < (now or _utcnow())))
    try:
        with db.session.begin_nested():
            db.session.add(UsedAssertion(organisation_id=org.id,
                                         assertion_id=assertion.assertion_id[:256],
                                         expires_at=assertion.expires_at))
    except IntegrityError:
        raise SamlRejected("replayed", "This assertion has already been used.") from None


def find_member(org: Organisation, identifier: str | None) -> Membership | None:
    """Return the member of THIS organisation whose userName or email is the identifier."""
    if not identifier:
        return None
    value = identifier.strip().lower()
    member = db.session.scalar(select(Membership).where(
        Membership.organisation_id == org.id, Membership.user_name_lower == value))
    if member is not None:
        return member
    ids = list(db.session.scalars(
        select(MemberEmail.membership_id).join(Membership)
        .where(Membership.organisation_id == org.id, MemberEmail.value_lower == value)
        .distinct()))
    # Two members sharing an email cannot be told apart: refuse rather than guess.
    return db.session.get(Membership, ids[0]) if len(ids) == 1 else None


def admit(org: Organisation, assertion: VerifiedAssertion) -> Membership:
    """Return the member the assertion signs in, or raise why they may not."""
    member = find_member(org, assertion.identifier)
    if member is None:
        raise SamlRejected("unknown", f"No member of {org.name} has the userName or email "
                           f"{assertion.identifier or '(none sent)'}.")
    if not member.active or member.scim_deleted_at is not None:
        raise SamlRejected("deactivated", f"{member.user_name} is deactivated in {org.name}.")
    return member
