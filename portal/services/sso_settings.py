"""Reading and validating an identity provider's SAML settings (metadata XML or by hand)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from flask import current_app
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import validate_url
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from portal.models import utcnow
from portal.services.errors import ServiceError

MAX_METADATA_BYTES = 512 * 1024
MAX_CERTIFICATES = 5
T = TypeVar("T")


class SsoValidationError(ServiceError):
    """The IdP settings are not acceptable; `errors` maps each form field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class CertificateInfo:
    """One parsed X.509 signing certificate of the IdP."""

    pem: str
    subject: str
    not_after: datetime
    fingerprint: str  # SHA-256, colon-separated hex


@dataclass
class IdpSettings:
    """Validated identity provider settings, ready to save."""

    entity_id: str
    sso_url: str
    certificates: list[CertificateInfo] = field(default_factory=list)
    user_id_attribute: str | None = None

    @property
    def current_certificate(self) -> CertificateInfo:
        """Return the certificate that stays valid longest (the new one during a rollover)."""
        return max(self.certificates, key=lambda c: c.not_after)


def parse_certificates(text: str, *, allow_expired: bool = False) -> list[CertificateInfo]:
    """Parse one or more PEM (or bare base64 DER) certificates, or raise ServiceError."""
    text = (text or "").strip()
    if not text:
        raise ServiceError("Paste the IdP's signing certificate.")
    try:
        if "-----BEGIN" in text:
            certs = x509.load_pem_x509_certificates(text.encode())
        else:
            certs = [x509.load_der_x509_certificate(base64.b64decode("".join(text.split()),
                                                                     validate=True))]
    except (ValueError, binascii.Error):
        raise ServiceError("This is not a readable X.509 certificate. Paste it in PEM format "
                           "(-----BEGIN CERTIFICATE----- …) or as base64.") from None
    if len(certs) > MAX_CERTIFICATES:
        raise ServiceError(f"At most {MAX_CERTIFICATES} certificates are accepted.")
    now = utcnow()
    infos = []
    for cert in certs:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
            raise ServiceError(f"The certificate's RSA key has {key.key_size} bits; "
                               "at least 2048 are needed.")
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise ServiceError("The certificate must carry an RSA or EC signing key.")
        subject = cert.subject.rfc4514_string() or "(empty subject)"
        if cert.not_valid_after_utc <= now and not allow_expired:
            raise ServiceError(f"The certificate for {subject} expired on "
                               f"{cert.not_valid_after_utc:%Y-%m-%d}.")
        digest = cert.fingerprint(hashes.SHA256()).hex().upper()
        infos.append(CertificateInfo(
            pem=cert.public_bytes(Encoding.PEM).decode(), subject=subject[:1000],
            not_after=cert.not_valid_after_utc,
            fingerprint=":".join(digest[i:i + 2] for i in range(0, len(digest), 2))))
    return infos


def _check_entity_id(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ServiceError("Enter the IdP Entity ID (also called Issuer).")
    if len(value) > 1024 or any(ch.isspace() for ch in value):
        raise ServiceError("The Entity ID must be a single URI of at most 1024 characters.")
    return value


def _check_sso_url(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ServiceError("Enter the IdP's single sign-on URL.")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2048 \
            or not validate_url(value, allow_single_label_domain=True):
        raise ServiceError("Enter a full URL, for example https://idp.example.com/sso/saml.")
    if parts.scheme != "https" and current_app.config.get("APP_ENV") == "production":
        raise ServiceError("The SSO URL must use https.")
    return value


def _check_attribute(value: str | None) -> str | None:
    value = (value or "").strip()
    if len(value) > 300:
        raise ServiceError("The attribute name may have at most 300 characters.")
    return value or None


def settings_from_fields(entity_id: str, sso_url: str, certificate: str,
                         user_id_attribute: str | None = None) -> IdpSettings:
    """Validate hand-entered IdP settings; every field's error is reported at once."""
    errors: dict[str, str] = {}

    def attempt(name: str, check: Callable[[Any], T], raw: Any) -> T | None:
        try:
            return check(raw)
        except ServiceError as exc:
            errors[name] = str(exc)
            return None

    entity = attempt("entity_id", _check_entity_id, entity_id)
    url = attempt("sso_url", _check_sso_url, sso_url)
    certs = attempt("certificate", parse_certificates, certificate)
    attribute = attempt("user_id_attribute", _check_attribute, user_id_attribute)
    if errors or entity is None or url is None or certs is None:
        raise SsoValidationError(errors)
    return IdpSettings(entity_id=entity, sso_url=url, certificates=certs,
                       user_id_attribute=attribute)


def settings_from_metadata(xml: str | bytes, user_id_attribute: str | None = None) -> IdpSettings:
    """Read the IdP settings out of its SAML metadata XML, or raise SsoValidationError."""
    raw = xml.encode() if isinstance(xml, str) else (xml or b"")
    if not raw.strip():
        raise SsoValidationError({"metadata": "Paste the IdP metadata XML or choose its file."})
    if len(raw) > MAX_METADATA_BYTES:
        raise SsoValidationError({"metadata": "The metadata file is larger than 512 KB."})
    try:
        OneLogin_Saml2_XML.to_etree(raw.strip())
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(raw.strip())
    except Exception as exc:  # lxml syntax errors and the parser's DTD/entity refusals
        reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise SsoValidationError({"metadata": f"The metadata is not well-formed XML: {reason}"}) \
            from None
    idp = parsed.get("idp")
    if not idp:
        raise SsoValidationError({"metadata": "This XML has no IDPSSODescriptor. Paste the "
                                  "identity provider's metadata, not a service provider's."})
    if "singleSignOnService" not in idp:
        raise SsoValidationError({"metadata": "The metadata lists no SingleSignOnService with "
                                  "the HTTP-Redirect binding."})
    certs = idp.get("x509certMulti", {}).get("signing") or [idp.get("x509cert") or ""]
    certs = [c for c in certs if c]
    if not certs:
        raise SsoValidationError({"metadata": "The metadata contains no signing certificate."})
    try:
        return settings_from_fields(idp.get("entityId", ""), idp["singleSignOnService"]["url"],
                                    "\n".join(_pem(c) for c in certs), user_id_attribute)
    except SsoValidationError as exc:
        # Report metadata problems on the metadata field, keeping the attribute's own error.
        errors = {"metadata": "In the metadata: " + " ".join(
            v for k, v in exc.errors.items() if k != "user_id_attribute")} \
            if set(exc.errors) - {"user_id_attribute"} else {}
        if "user_id_attribute" in exc.errors:
            errors["user_id_attribute"] = exc.errors["user_id_attribute"]
        raise SsoValidationError(errors) from None


def _pem(b64: str) -> str:
    body = "".join(b64.split())
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----"
