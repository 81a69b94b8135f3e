"""A SAML identity provider for the tests: its own key pair, metadata and signed responses.

Responses are signed with python3-saml's `add_sign` (xmlsec), the same library the app
verifies them with, so a passing test means a real XML-DSig signature was checked.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

SAML_TIME = "%Y-%m-%dT%H:%M:%SZ"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


def make_certificate(common_name: str, *, days_valid: int = 365,
                     key_size: int = 2048) -> tuple[str, str]:
    """Return (private key PEM, self-signed certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DPMS Test IdP")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days_valid))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _t(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(SAML_TIME)


class TestIdP:
    """An identity provider that signs whatever assertion a test asks for."""

    __test__ = False  # not a pytest test class

    def __init__(self, entity_id: str = "https://idp.example.test/saml/metadata",
                 sso_url: str = "https://idp.example.test/saml/sso", *, days_valid: int = 365,
                 common_name: str = "idp.example.test") -> None:
        self.entity_id = entity_id
        self.sso_url = sso_url
        self.key_pem, self.cert_pem = make_certificate(common_name, days_valid=days_valid)

    @property
    def cert_b64(self) -> str:
        return "".join(line for line in self.cert_pem.splitlines() if "-----" not in line)

    def metadata(self) -> str:
        """Return this IdP's SAML metadata XML."""
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(self.entity_id)}>
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{self.cert_b64}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location={quoteattr(self.sso_url)}/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location={quoteattr(self.sso_url)}/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""

    def response(self, *, acs_url: str, audience: str, name_id: str,
                 in_response_to: str | None = None, issuer: str | None = None,
                 attributes: dict[str, list[str]] | None = None, sign: str = "assertion",
                 signer: TestIdP | None = None, now: datetime | None = None,
                 lifetime: timedelta = timedelta(minutes=5), destination: str | None = None,
                 assertion_id: str | None = None) -> str:
        """Return a base64 SAMLResponse; sign is 'assertion', 'response', 'both' or 'none'."""
        now = now or datetime.now(UTC)
        issuer = issuer or self.entity_id
        signer = signer or self
        irt = f" InResponseTo={quoteattr(in_response_to)}" if in_response_to else ""
        attrs = "".join(
            f'<saml:Attribute Name={quoteattr(name)}>' + "".join(
                f'<saml:AttributeValue xsi:type="xs:string">{escape(v)}</saml:AttributeValue>'
                for v in values) + "</saml:Attribute>"
            for name, values in (attributes or {}).items())
        assertion = f"""<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 ID="{assertion_id or '_a' + uuid.uuid4().hex}" Version="2.0" IssueInstant="{_t(now)}">
<saml:Issuer>{escape(issuer)}</saml:Issuer>
<saml:Subject><saml:NameID Format="{EMAIL_FORMAT}">{escape(name_id)}</saml:NameID>
<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
<saml:SubjectConfirmationData NotOnOrAfter="{_t(now + lifetime)}"
 Recipient={quoteattr(acs_url)}{irt}/>
</saml:SubjectConfirmation></saml:Subject>
<saml:Conditions NotBefore="{_t(now - timedelta(seconds=30))}" NotOnOrAfter="{_t(now + lifetime)}">
<saml:AudienceRestriction><saml:Audience>{escape(audience)}</saml:Audience></saml:AudienceRestriction>
</saml:Conditions>
<saml:AuthnStatement AuthnInstant="{_t(now)}" SessionIndex="_s{uuid.uuid4().hex}">
<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>
</saml:AuthnStatement>
{f'<saml:AttributeStatement>{attrs}</saml:AttributeStatement>' if attrs else ''}
</saml:Assertion>"""
        if sign in ("assertion", "both"):
            assertion = signer._sign(assertion)
        response = f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
 xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{uuid.uuid4().hex}" Version="2.0"
 IssueInstant="{_t(now)}" Destination={quoteattr(destination or acs_url)}{irt}>
<saml:Issuer>{escape(issuer)}</saml:Issuer>
<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
{assertion}
</samlp:Response>"""
        if sign in ("response", "both"):
            response = signer._sign(response)
        return base64.b64encode(response.encode()).decode()

    def _sign(self, xml: str) -> str:
        signed = OneLogin_Saml2_Utils.add_sign(xml, self.key_pem, self.cert_pem)
        return signed.decode() if isinstance(signed, bytes) else signed


def authn_request_from_redirect(location: str) -> etree._Element:
    """Decode the AuthnRequest an SP put into an HTTP-Redirect URL."""
    query = parse_qs(urlsplit(location).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(xml)
