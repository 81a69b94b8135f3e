"""SAML sign-in: a provisioned member gets in; bad, replayed or foreign assertions do not."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Account, AuditEvent, Membership, UsedAssertion, utcnow
from portal.security import ORG_SESSION_KEY, SSO_ORG_SESSION_KEY
from tests.conftest import Factory, csrf_from
from tests.sso.conftest import SsoOrg, configure_sso, post_acs, scim_member
from tests.sso.idp import TestIdP, authn_request_from_redirect


def _signed_in_as(client: FlaskClient) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


def _events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_scim_provisioned_member_signs_in_through_idp_initiated_sso(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    member = scim_member(app, sso_org.org, "jane.doe@acme.example")
    response = post_acs(client, sso_org, sso_org.response("jane.doe@acme.example"))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and b"Welcome, Jane Doe" in home.data
    with client.session_transaction() as session:
        assert session[ORG_SESSION_KEY] == sso_org.org.id
        assert session[SSO_ORG_SESSION_KEY] == sso_org.org.id
    [event] = _events(app, "sso.signed_in")
    assert event.target_id == member.public_id and event.details["initiated_by"] == "idp"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UsedAssertion)) == 1


def test_sp_initiated_sign_in_sends_an_authn_request_and_returns_to_next(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    start = client.get(f"/sso/{sso_org.org.key}?next=/settings/")
    assert start.status_code == 302
    location = start.headers["Location"]
    assert location.startswith(sso_org.idp.sso_url + "?")
    request = authn_request_from_redirect(location)
    assert request.get("AssertionConsumerServiceURL") == sso_org.acs_url
    assert request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") == sso_org.entity_id
    assert parse_qs(urlsplit(location).query)["RelayState"] == ["/settings/"]

    answer = sso_org.response("jane.doe@acme.example", in_response_to=request.get("ID"))
    response = post_acs(client, sso_org, answer)
    assert response.status_code == 302 and response.headers["Location"] == "/settings/"
    assert _signed_in_as(client) is not None
    assert "dpms_saml_pending=;" in response.headers.get("Set-Cookie", "")  # request consumed
    [event] = _events(app, "sso.signed_in")
    assert event.details["initiated_by"] == "sp"


def test_response_to_a_request_this_browser_did_not_start_is_refused(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    client.get(f"/sso/{sso_org.org.key}")  # a real pending request, but a different id
    answer = sso_org.response("jane.doe@acme.example", in_response_to="_someone-elses-request")
    response = post_acs(client, sso_org, answer)
    assert response.status_code == 400
    assert b"started in another browser" in response.data
    assert _signed_in_as(client) is None


@pytest.mark.parametrize("case,reason", [
    ("unsigned", "No Signature found"),
    ("other key", "Signature validation failed"),
    ("tampered", "Signature validation failed"),
    ("expired", "expired"),
    ("not yet valid", "not yet valid"),
    ("wrong audience", "is not a valid audience"),
    ("wrong destination", "instead of https://evil.example/acs"),
    ("wrong issuer", "Invalid issuer"),
])
def test_unverifiable_assertion_is_refused_and_nobody_is_signed_in(
    app: Flask, client: FlaskClient, sso_org: SsoOrg, caplog: pytest.LogCaptureFixture,
    case: str, reason: str,
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    name = "jane.doe@acme.example"
    now = datetime.now(UTC)
    if case == "tampered":  # signed for someone else, then the NameID edited
        xml = base64.b64decode(sso_org.response("someone@acme.example")).decode()
        answer = base64.b64encode(xml.replace("someone@acme.example", name).encode()).decode()
    else:
        answer = sso_org.response(name, **{
            "unsigned": {"sign": "none"},
            "other key": {"signer": TestIdP(entity_id=sso_org.idp.entity_id)},
            "expired": {"now": now - timedelta(hours=1)},
            "not yet valid": {"now": now + timedelta(hours=1)},
            "wrong audience": {"audience": "https://other-sp.example/metadata"},
            "wrong destination": {"destination": "https://evil.example/acs"},
            "wrong issuer": {"issuer": "https://evil-idp.example"},
        }[case])
    caplog.set_level(logging.INFO, logger="portal.services.sso_signin")
    response = post_acs(client, sso_org, answer)
    assert response.status_code == 400
    assert b"could not verify the response from your identity provider" in response.data
    assert reason in caplog.text
    assert _signed_in_as(client) is None
    assert client.get("/").status_code == 302
    assert _events(app, "sso.signed_in") == []


@pytest.mark.parametrize("sign", ["response", "both"])
def test_a_signed_response_or_a_doubly_signed_one_is_accepted_too(
    app: Flask, client: FlaskClient, sso_org: SsoOrg, sign: str
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    response = post_acs(client, sso_org, sso_org.response("jane.doe@acme.example", sign=sign))
    assert response.status_code == 302 and _signed_in_as(client) is not None


def test_replayed_assertion_is_refused(app: Flask, client: FlaskClient, sso_org: SsoOrg,
                                       ) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    answer = sso_org.response("jane.doe@acme.example")
    assert post_acs(client, sso_org, answer).status_code == 302
    attacker = app.test_client()
    replay = post_acs(attacker, sso_org, answer)
    assert replay.status_code == 400 and b"already been used" in replay.data
    assert _signed_in_as(attacker) is None
    [refusal] = _events(app, "sso.sign_in_refused")
    assert refusal.details == {"reason": "replayed"}


def test_expired_used_assertions_are_forgotten_but_fresh_ones_kept(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    with app.app_context():
        db.session.add(UsedAssertion(organisation_id=sso_org.org.id, assertion_id="_old",
                                     expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    post_acs(client, sso_org, sso_org.response("jane.doe@acme.example", assertion_id="_new"))
    with app.app_context():
        ids = set(db.session.scalars(select(UsedAssertion.assertion_id)))
    assert ids == {"_new"}


@pytest.mark.parametrize("how", ["deactivated", "removed by the IdP"])
def test_deactivated_member_is_refused_with_a_clear_page(
    app: Flask, client: FlaskClient, sso_org: SsoOrg, how: str
) -> None:
    member = scim_member(app, sso_org.org, "jane.doe@acme.example")
    with app.app_context():
        row = db.session.get(Membership, member.id)
        assert row is not None
        if how == "deactivated":
            row.active = False
        else:
            row.scim_deleted_at = utcnow()
        db.session.commit()
    response = post_acs(client, sso_org, sso_org.response("jane.doe@acme.example"))
    assert response.status_code == 403
    assert b"Your access to Acme Corp has been deactivated" in response.data
    assert _signed_in_as(client) is None
    [refusal] = _events(app, "sso.sign_in_refused")
    assert refusal.details == {"reason": "deactivated"}


def test_unknown_person_is_refused_and_no_account_is_created(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    with app.app_context():
        accounts_before = db.session.scalar(select(func.count()).select_from(Account))
    response = post_acs(client, sso_org, sso_org.response("stranger@acme.example"))
    assert response.status_code == 403
    assert b"You do not have an account in Acme Corp" in response.data
    assert b"SCIM" in response.data
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Account)) == accounts_before
    assert _signed_in_as(client) is None


def test_member_of_another_organisation_cannot_sign_in_through_this_one(
    app: Flask, client: FlaskClient, factory: Factory, sso_org: SsoOrg
) -> None:
    globex = factory.org("Globex")
    scim_member(app, globex, "jane.doe@acme.example")  # Jane exists, but only in Globex
    response = post_acs(client, sso_org, sso_org.response("jane.doe@acme.example"))
    assert response.status_code == 403
    assert b"You do not have an account in Acme Corp" in response.data
    # Acme's IdP's assertion is not accepted at Globex's ACS either (its own IdP and audience).
    globex_idp = TestIdP(entity_id="https://globex-idp.example")
    configure_sso(app, globex, globex_idp)
    moved = client.post(f"/sso/{globex.key}/acs",
                        data={"SAMLResponse": sso_org.response("jane.doe@acme.example")})
    assert moved.status_code == 400
    assert _signed_in_as(client) is None


def test_sso_session_reaches_only_the_organisation_that_signed_it_in(
    app: Flask, client: FlaskClient, factory: Factory, sso_org: SsoOrg
) -> None:
    globex = factory.org("Globex")
    factory.member(globex, "jane.doe@acme.example")  # also a (password) member of Globex
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    post_acs(client, sso_org, sso_org.response("jane.doe@acme.example"))
    home = client.get("/")
    assert b"Acme Corp" in home.data and b"Globex" not in home.data
    switch = client.post("/switch-organisation", data={
        "organisation_id": str(globex.id), "csrf_token": csrf_from(home.data)})
    assert switch.status_code == 404
    with client.session_transaction() as session:
        assert session[ORG_SESSION_KEY] == sso_org.org.id


def test_member_is_matched_by_a_secondary_email_or_a_configured_attribute(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jdoe", email="jane.doe@acme.example")
    assert post_acs(client, sso_org, sso_org.response("jane.doe@acme.example")).status_code == 302
    with app.app_context():
        from portal.services import sso

        config = sso.get_config(sso_org.org.id)
        assert config is not None
        config.user_id_attribute = "uid"
        db.session.commit()
    other = app.test_client()
    answer = sso_org.response("opaque-id-123", attributes={"uid": ["JDOE"]})
    assert post_acs(other, sso_org, answer).status_code == 302
    assert _signed_in_as(other) is not None


@pytest.mark.parametrize("relay_state,expected", [
    ("/settings/", "/settings/"), ("https://evil.example/", "/"), ("//evil.example", "/")])
def test_idp_initiated_relay_state_is_followed_only_for_same_site_paths(
    app: Flask, client: FlaskClient, sso_org: SsoOrg, relay_state: str, expected: str
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    response = post_acs(client, sso_org, sso_org.response("jane.doe@acme.example"),
                        RelayState=relay_state)
    assert response.headers["Location"] == expected


def test_acs_needs_no_csrf_token_but_portal_forms_still_do(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    assert post_acs(client, sso_org, sso_org.response("jane.doe@acme.example")).status_code == 302
    assert client.post("/logout").status_code == 400  # still CSRF-protected
    assert client.post("/sso/", data={"identifier": sso_org.org.key}).status_code == 400


@pytest.mark.parametrize("body", [{}, {"SAMLResponse": "not base64 at all!"},
                                  {"SAMLResponse": base64.b64encode(b"<oops").decode()}])
def test_garbage_posted_to_the_acs_gets_a_clear_page_not_a_500(
    app: Flask, client: FlaskClient, sso_org: SsoOrg, body: dict[str, str]
) -> None:
    response = client.post(sso_org.acs_path, data=body)
    assert response.status_code == 400
    assert b"You have not been signed in" in response.data
    assert _events(app, "sso.sign_in_refused") == []  # unverifiable junk is not audited


def test_acs_and_login_of_an_organisation_without_sso_are_not_found(
    client: FlaskClient, factory: Factory
) -> None:
    org = factory.org("No SSO Ltd")
    assert client.get(f"/sso/{org.key}").status_code == 404
    assert client.post(f"/sso/{org.key}/acs", data={"SAMLResponse": "x"}).status_code == 404


def test_an_email_shared_by_two_members_matches_nobody(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jdoe", email="team@acme.example")
    scim_member(app, sso_org.org, "msmith", email="msmith@acme.example")
    with app.app_context():
        from portal.models import MemberEmail

        msmith = db.session.scalar(select(Membership).where(Membership.user_name == "msmith"))
        assert msmith is not None
        shared = "team@acme.example"
        msmith.emails.append(MemberEmail(value=shared, value_lower=shared))
        db.session.commit()
    response = post_acs(client, sso_org, sso_org.response("team@acme.example"))
    assert response.status_code == 403 and _signed_in_as(client) is None


def test_a_refused_assertion_stays_used_up_once_scim_creates_the_person(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    answer = sso_org.response("late.joiner@acme.example")
    assert post_acs(client, sso_org, answer).status_code == 403  # not provisioned yet
    scim_member(app, sso_org.org, "late.joiner@acme.example")
    replay = post_acs(app.test_client(), sso_org, answer)
    assert replay.status_code == 400 and b"already been used" in replay.data
    reasons = [e.details["reason"] for e in _events(app, "sso.sign_in_refused")]
    assert reasons == ["unknown", "replayed"]


def test_pending_request_cookie_is_cross_site_and_secure_whenever_the_request_is_https(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    # The IdP POSTs to the ACS from another site: only a SameSite=None; Secure cookie travels.
    over_https = client.get(f"/sso/{sso_org.org.key}", base_url="https://portal.example")
    cookie = over_https.headers["Set-Cookie"]
    assert cookie.startswith("dpms_saml_pending=")
    assert "Secure" in cookie and "SameSite=None" in cookie and "HttpOnly" in cookie
    # Plain http (development): browsers refuse SameSite=None without Secure, so Lax.
    over_http = client.get(f"/sso/{sso_org.org.key}")
    cookie = over_http.headers["Set-Cookie"]
    assert "Secure" not in cookie and "SameSite=Lax" in cookie
