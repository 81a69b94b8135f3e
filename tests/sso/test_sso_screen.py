"""The SSO / SAML Configuration screen: SP details, IdP settings, validation, tests, access."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Notification, SsoConfig, utcnow
from portal.services import sso
from tests.conftest import Factory, csrf_from, login
from tests.sso.conftest import SsoOrg, post_acs, scim_member
from tests.sso.idp import TestIdP, authn_request_from_redirect

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


def _admin_client(client: FlaskClient, factory: Factory) -> tuple[FlaskClient, int]:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    return client, org.id


def _config(app: Flask, org_id: int) -> SsoConfig | None:
    with app.app_context():
        config = sso.get_config(org_id)
        if config is not None:
            db.session.expunge(config)
        return config


def _save(client: FlaskClient, **form: object) -> tuple[int, str]:
    page = client.get("/settings/iam/sso")
    response = client.post("/settings/iam/sso/idp", data={"csrf_token": csrf_from(page.data),
                                                          **form},
                           content_type="multipart/form-data", follow_redirects=True)
    return response.status_code, response.get_data(as_text=True)


def test_screen_shows_stable_sp_details_with_copy_buttons_and_no_breadcrumb(
    client: FlaskClient, factory: Factory
) -> None:
    client, org_id = _admin_client(client, factory)
    html = client.get("/settings/iam/sso").get_data(as_text=True)
    key = re.search(r'/sso/([\w-]+)/acs', html).group(1)  # type: ignore[union-attr]
    assert re.search(rf'id="sp-entity-id" type="text" value="https://dpms.test/sso/{key}"', html)
    assert re.search(rf'id="acs-url" type="text" value="https://dpms.test/sso/{key}/acs"', html)
    assert html.count("data-copy-target=") == 2
    assert "Download SP metadata XML" in html and 'class="breadcrumbs"' not in html
    assert 'data-testid="status-badge">Not configured' in html
    assert 'aria-current="page">SSO</a>' in html
    assert "SCIM</a> decides <strong>who</strong> has an account" in html
    # Stable, apart from the CSRF token: its signature carries the second it was made.
    again = client.get("/settings/iam/sso").get_data(as_text=True)
    assert _without_csrf(again) == _without_csrf(html)


def _without_csrf(html: str) -> str:
    return re.sub(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]+', r"\1…", html)


def test_scim_and_sso_screens_link_to_each_other(client: FlaskClient, factory: Factory) -> None:
    client, _ = _admin_client(client, factory)
    scim = client.get("/settings/iam/scim").get_data(as_text=True)
    sso_page = client.get("/settings/iam/sso").get_data(as_text=True)
    assert "SCIM decides who has an account; SSO decides how they sign in." in scim
    assert 'href="/settings/iam/sso">Open the SSO configuration' in scim
    assert 'href="/settings/iam/scim">SCIM</a> decides <strong>who</strong>' in sso_page


def test_pasting_idp_metadata_saves_settings_and_shows_certificate_subject_and_expiry(
    app: Flask, client: FlaskClient, factory: Factory, idp: TestIdP
) -> None:
    client, org_id = _admin_client(client, factory)
    status, html = _save(client, source="metadata", metadata_xml=idp.metadata())
    assert status == 200 and "The identity provider settings were saved." in html
    config = _config(app, org_id)
    assert config is not None
    assert config.idp_entity_id == idp.entity_id and config.idp_sso_url == idp.sso_url
    assert "CN=idp.example.test" in config.cert_subject
    assert config.cert_not_after > utcnow() + timedelta(days=360)
    assert 'data-testid="status-badge">Configured' in html
    assert "CN=idp.example.test" in html and config.cert_not_after.strftime("%Y-%m-%d") in html
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action ==
                                                              "sso.configured")).all()
    assert event.actor_label == "it-admin@acme.example" and event.details["source"] == "metadata"


def test_uploaded_metadata_file_is_read(app: Flask, client: FlaskClient, factory: Factory,
                                        idp: TestIdP) -> None:
    client, org_id = _admin_client(client, factory)
    status, _ = _save(client, source="metadata",
                      metadata_file=(io.BytesIO(idp.metadata().encode()), "idp.xml"))
    assert status == 200
    config = _config(app, org_id)
    assert config is not None and config.idp_entity_id == idp.entity_id


def test_manual_settings_are_saved_and_a_change_is_audited(
    app: Flask, client: FlaskClient, factory: Factory, idp: TestIdP
) -> None:
    client, org_id = _admin_client(client, factory)
    _save(client, source="manual", entity_id=idp.entity_id, sso_url=idp.sso_url,
          certificate=idp.cert_pem)
    status, _ = _save(client, source="manual", entity_id=idp.entity_id,
                      sso_url="https://idp.example.test/new-sso", certificate=idp.cert_pem)
    assert status == 200
    config = _config(app, org_id)
    assert config is not None and config.idp_sso_url == "https://idp.example.test/new-sso"
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action)
                                          .where(AuditEvent.action.like("sso.%"))))
        update = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sso.updated"))
    assert actions == ["sso.configured", "sso.updated"]
    assert update is not None and update.details["changed"] == ["idp_sso_url"]


SP_METADATA = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
 entityID="https://sp.example"><md:SPSSODescriptor
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>"""
XXE = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>"""


@pytest.mark.parametrize("metadata,message", [
    ("", "Paste the IdP metadata XML or choose its file."),
    ("<md:EntityDescriptor", "The metadata is not well-formed XML"),
    (XXE, "The metadata is not well-formed XML"),
    (SP_METADATA, "This XML has no IDPSSODescriptor"),
    ("NO_CERT", "The metadata contains no signing certificate."),
    ("BAD_CERT", "In the metadata: This is not a readable X.509 certificate"),
])
def test_invalid_metadata_shows_the_error_next_to_the_field_and_saves_nothing(
    app: Flask, client: FlaskClient, factory: Factory, idp: TestIdP, metadata: str, message: str
) -> None:
    client, org_id = _admin_client(client, factory)
    if metadata == "NO_CERT":
        metadata = re.sub(r"<md:KeyDescriptor.*?</md:KeyDescriptor>", "", idp.metadata(),
                          flags=re.S)
    elif metadata == "BAD_CERT":
        metadata = idp.metadata().replace(idp.cert_b64, "bm90IGEgY2VydGlmaWNhdGU=")
    status, html = _save(client, source="metadata", metadata_xml=metadata)
    assert status == 400
    error = re.search(r'data-testid="error-metadata">([^<]*)<', html)
    assert error and message in error.group(1).replace("&#39;", "'")
    assert "Nothing was saved." in html
    assert _config(app, org_id) is None
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action.like("sso.%"))) \
            is None


def test_manual_fields_report_every_error_at_once_and_keep_the_old_settings(
    app: Flask, client: FlaskClient, factory: Factory, idp: TestIdP
) -> None:
    client, org_id = _admin_client(client, factory)
    _save(client, source="metadata", metadata_xml=idp.metadata())
    status, html = _save(client, source="manual", entity_id="", sso_url="ftp://idp/sso",
                         certificate="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
    assert status == 400
    assert 'data-testid="error-entity_id">Enter the IdP Entity ID' in html
    assert 'data-testid="error-sso_url">Enter a full URL' in html
    assert 'data-testid="error-certificate">This is not a readable X.509 certificate' in html
    assert 'value="ftp://idp/sso"' in html  # the person's input is kept for correction
    config = _config(app, org_id)
    assert config is not None and config.idp_sso_url == idp.sso_url


def test_plain_http_sso_url_is_refused_in_production(
    app: Flask, client: FlaskClient, factory: Factory, idp: TestIdP
) -> None:
    client, org_id = _admin_client(client, factory)
    app.config["APP_ENV"] = "production"
    status, html = _save(client, source="manual", entity_id=idp.entity_id,
                         sso_url="http://idp.example.test/sso", certificate=idp.cert_pem)
    assert status == 400 and "The SSO URL must use https." in html
    assert _config(app, org_id) is None


@pytest.mark.parametrize("days,message", [
    (-1, "expired on"), (None, "at least 2048 are needed")])
def test_expired_or_weak_certificates_are_refused(
    app: Flask, client: FlaskClient, factory: Factory, days: int | None, message: str
) -> None:
    from tests.sso.idp import make_certificate

    client, org_id = _admin_client(client, factory)
    if days is None:
        _, cert = make_certificate("weak", key_size=1024)
    else:
        _, cert = make_certificate("old", days_valid=days)
    status, html = _save(client, source="manual", entity_id="https://idp", sso_url="https://idp/sso",
                         certificate=cert)
    assert status == 400 and message in html
    assert _config(app, org_id) is None


def test_sp_metadata_download_is_valid_stable_and_per_organisation(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    login(client, sso_org.admin_email)
    first = client.get("/settings/iam/sso/metadata.xml")
    assert first.status_code == 200
    assert first.headers["Content-Disposition"] == \
        f'attachment; filename="dpms-sp-metadata-{sso_org.org.key}.xml"'
    assert client.get("/settings/iam/sso/metadata.xml").data == first.data
    root = etree.fromstring(first.data)
    assert root.get("entityID") == sso_org.entity_id and root.get("validUntil") is None
    acs = root.find(f"{MD}SPSSODescriptor/{MD}AssertionConsumerService")
    assert acs is not None and acs.get("Location") == sso_org.acs_url
    checker = OneLogin_Saml2_Settings({"sp": {"entityId": "x", "assertionConsumerService": {
        "url": "https://x.example"}}}, sp_validation_only=True)
    assert checker.validate_metadata(first.data) == []


def test_certificate_expiring_within_30_days_shows_a_warning_and_notifies_iam_admins(
    app: Flask, client: FlaskClient, factory: Factory, runner: object
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    factory.member(org, "member@acme.example")
    login(client, "it-admin@acme.example")
    short = TestIdP(days_valid=10)
    _save(client, source="metadata", metadata_xml=short.metadata())
    html = client.get("/settings/iam/sso").get_data(as_text=True)
    assert re.search(r'data-testid="cert-warning">Expires in (9|10) days<', html)
    assert 'class="badge badge-warn"' in html
    with app.app_context():
        notes = list(db.session.scalars(select(Notification)))
    assert len(notes) == 1 and "expires on" in notes[0].message
    assert notes[0].link == "/settings/iam/sso"
    result = runner.invoke(args=["sso", "check-certs"])  # type: ignore[attr-defined]
    assert result.exit_code == 0 and "0 notification(s) sent." in result.output  # deduplicated


def test_daily_certificate_check_notifies_once_per_certificate(
    app: Flask, factory: Factory, runner: object
) -> None:
    org = factory.org("Acme Corp")
    admin = factory.it_admin(org)
    with app.test_request_context():
        from portal.services.audit import CLI_ACTOR
        from portal.services.sso_settings import settings_from_metadata

        fresh = db.session.get(type(org), org.id)
        sso.save_config(fresh, settings_from_metadata(TestIdP(days_valid=60).metadata()),
                        CLI_ACTOR, source="metadata")
        db.session.commit()
    assert runner.invoke(args=["sso", "check-certs"]).output.strip() == "0 notification(s) sent."  # type: ignore[attr-defined]
    with app.app_context():
        config = sso.get_config(org.id)
        assert config is not None
        config.cert_not_after = utcnow() + timedelta(days=20)  # time passes
        db.session.commit()
    assert runner.invoke(args=["sso", "check-certs"]).output.strip() == "1 notification(s) sent."  # type: ignore[attr-defined]
    with app.app_context():
        [note] = db.session.scalars(select(Notification)).all()
    assert note.account_id == admin.account_id


def test_test_sign_in_reports_the_attributes_and_signs_nobody_in(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    login(client, sso_org.admin_email)
    start = client.get("/settings/iam/sso/test")
    assert start.status_code == 302 and start.headers["Location"].startswith(sso_org.idp.sso_url)
    request_id = authn_request_from_redirect(start.headers["Location"]).get("ID")
    answer = sso_org.response("jane.doe@acme.example", in_response_to=request_id,
                              attributes={"department": ["Legal"], "groups": ["a", "b"]})
    result = post_acs(client, sso_org, answer)
    html = result.get_data(as_text=True)
    assert result.status_code == 200 and 'data-ok="true"' in html
    assert "jane.doe@acme.example" in html and "Legal" in html and "a, b" in html
    home = client.get("/").get_data(as_text=True)
    assert "Welcome, it-admin@acme.example" in home  # still the admin, not Jane
    config = _config(app, sso_org.org.id)
    assert config is not None and config.last_test_ok is True
    assert "jane.doe@acme.example" in (config.last_test_summary or "")
    page = client.get("/settings/iam/sso").get_data(as_text=True)
    assert ">Passed</span>" in page
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sso.tested"))
        assert event.actor_label == sso_org.admin_email and event.details["ok"] is True
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sso.signed_in")) \
            is None


def test_failed_test_sign_in_shows_why(app: Flask, client: FlaskClient, sso_org: SsoOrg) -> None:
    login(client, sso_org.admin_email)
    start = client.get("/settings/iam/sso/test")
    request_id = authn_request_from_redirect(start.headers["Location"]).get("ID")
    result = post_acs(client, sso_org, sso_org.response("nobody@acme.example",
                                                        in_response_to=request_id))
    html = result.get_data(as_text=True)
    assert 'data-ok="false"' in html and "No member of Acme Corp" in html
    config = _config(app, sso_org.org.id)
    assert config is not None and config.last_test_ok is False


SSO_ENDPOINTS = [
    ("GET", "/settings/iam/sso"), ("GET", "/settings/iam/sso/metadata.xml"),
    ("GET", "/settings/iam/sso/test"), ("POST", "/settings/iam/sso/idp"),
    ("POST", "/settings/iam/sso/enforce"), ("POST", "/settings/iam/sso/break-glass"),
]


@pytest.mark.parametrize("method,path", SSO_ENDPOINTS)
def test_member_without_iam_permission_gets_403_on_every_sso_endpoint(
    app: Flask, client: FlaskClient, sso_org: SsoOrg, factory: Factory, method: str, path: str
) -> None:
    factory.member(sso_org.org, "member@acme.example")
    login(client, "member@acme.example")
    token = csrf_from(client.get("/").data)
    data = {"csrf_token": token, "enforced": "on", "email": "member@acme.example",
            "break_glass": "on", "source": "manual", "entity_id": "https://evil",
            "sso_url": "https://evil/sso", "certificate": sso_org.idp.cert_pem}
    response = client.get(path) if method == "GET" else client.post(path, data=data)
    assert response.status_code == 403 and b"403 Forbidden" in response.data
    config = _config(app, sso_org.org.id)
    assert config is not None and config.idp_entity_id == sso_org.idp.entity_id
    assert config.enforced is False
    assert "dpms_saml_pending" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("method,path", SSO_ENDPOINTS)
def test_signed_out_visitor_is_sent_to_sign_in(client: FlaskClient, method: str, path: str) -> None:
    response = client.get(path) if method == "GET" else client.post(path)
    assert response.status_code in (302, 400)  # POSTs fail CSRF before anything else
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")
