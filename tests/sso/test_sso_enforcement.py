"""Enforced SSO: passwords refused except for break-glass administrators; finding one's IdP."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Membership
from portal.permissions import IT_ADMINISTRATOR
from portal.services import roles, sso
from tests.conftest import PASSWORD, Factory, csrf_from, login
from tests.sso.conftest import SsoOrg, post_acs, scim_member


def _post(client: FlaskClient, path: str, **form: str) -> str:
    page = client.get("/settings/iam/sso")
    response = client.post(path, data={"csrf_token": csrf_from(page.data), **form},
                           follow_redirects=True)
    return response.get_data(as_text=True)


def _enforced(app: Flask, org_id: int) -> bool:
    with app.app_context():
        config = sso.get_config(org_id)
        return bool(config and config.enforced)


def _break_glass(app: Flask, email: str, on: bool = True) -> None:
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.user_name_lower == email))
        assert member is not None
        member.is_break_glass = on
        db.session.commit()


def test_enforcing_is_refused_while_no_break_glass_admin_exists(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    login(client, sso_org.admin_email)
    html = _post(client, "/settings/iam/sso/enforce", enforced="on")
    assert "SSO cannot be enforced while the organisation has no break-glass administrator" in html
    assert _enforced(app, sso_org.org.id) is False
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sso.enforced")) \
            is None
    assert 'data-testid="no-break-glass"' in html and "disabled" in html


def test_enforcing_is_refused_before_an_idp_is_configured(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    org = factory.org()
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    html = _post(client, "/settings/iam/sso/enforce", enforced="on")
    assert "Configure the identity provider before enforcing SSO." in html
    assert _enforced(app, org.id) is False


def test_enforced_sso_refuses_password_sign_in_but_admits_the_break_glass_admin(
    app: Flask, client: FlaskClient, factory: Factory, sso_org: SsoOrg
) -> None:
    factory.member(sso_org.org, "max@acme.example")
    login(client, sso_org.admin_email)
    html = _post(client, "/settings/iam/sso/break-glass", email=sso_org.admin_email,
                 break_glass="on")
    assert f"{sso_org.admin_email} is now a break-glass administrator" in html
    html = _post(client, "/settings/iam/sso/enforce", enforced="on")
    assert "SSO is now enforced" in html and 'data-testid="status-badge">Enforced' in html
    assert _enforced(app, sso_org.org.id) is True

    refused = login(app.test_client(), "max@acme.example")
    assert refused.status_code == 403
    assert "Acme Corp requires single sign-on" in refused.get_data(as_text=True)

    admin = app.test_client()
    assert login(admin, sso_org.admin_email).status_code == 302
    assert b"Acme Corp" in admin.get("/").data


def test_enforced_members_still_sign_in_through_sso(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    _break_glass(app, sso_org.admin_email)
    with app.app_context():
        config = sso.get_config(sso_org.org.id)
        assert config is not None
        config.enforced = True
        db.session.commit()
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    assert post_acs(client, sso_org, sso_org.response("jane.doe@acme.example")).status_code == 302
    assert b"Welcome, Jane Doe" in client.get("/").data


def test_enforcement_ends_existing_password_sessions_of_ordinary_members(
    app: Flask, factory: Factory, sso_org: SsoOrg
) -> None:
    factory.member(sso_org.org, "max@acme.example")
    member = app.test_client()
    login(member, "max@acme.example")
    assert member.get("/").status_code == 200
    _break_glass(app, sso_org.admin_email)
    with app.app_context():
        assert sso.set_enforced(db.session.merge(sso_org.org), True, sso.audit.CLI_ACTOR)
        db.session.commit()
    response = member.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = member.get("/login").get_data(as_text=True)
    assert "This organisation now requires single sign-on" in page


def test_password_sign_in_to_other_organisations_is_unaffected(
    app: Flask, factory: Factory, sso_org: SsoOrg
) -> None:
    globex = factory.org("Globex")
    factory.member(globex, "max@acme.example")
    factory.member(sso_org.org, "max@acme.example")
    _break_glass(app, sso_org.admin_email)
    with app.app_context():
        sso.set_enforced(db.session.merge(sso_org.org), True, sso.audit.CLI_ACTOR)
        db.session.commit()
    client = app.test_client()
    assert login(client, "max@acme.example").status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "Globex" in home and "Acme Corp" not in home


def test_last_break_glass_admin_cannot_be_removed_while_enforced(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    _break_glass(app, sso_org.admin_email)
    login(client, sso_org.admin_email)
    _post(client, "/settings/iam/sso/enforce", enforced="on")
    html = _post(client, "/settings/iam/sso/break-glass", email=sso_org.admin_email,
                 break_glass="off")
    assert "This is the last break-glass administrator while SSO is enforced" in html
    with app.app_context():
        assert [m.account.email for m in sso.break_glass_admins(db.session.merge(sso_org.org))] \
            == [sso_org.admin_email]


def test_break_glass_needs_a_password_and_the_iam_permission(
    app: Flask, client: FlaskClient, factory: Factory, sso_org: SsoOrg
) -> None:
    factory.member(sso_org.org, "max@acme.example")
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    login(client, sso_org.admin_email)
    no_permission = _post(client, "/settings/iam/sso/break-glass", email="max@acme.example",
                          break_glass="on")
    assert "does not hold the Identity &amp; Access Management permission" in no_permission
    no_password = _post(client, "/settings/iam/sso/break-glass",
                        email="jane.doe@acme.example", break_glass="on")
    assert "jane.doe@acme.example has no password" in no_password
    assert "under Your account → Password (/account/password)" in no_password
    stranger = _post(client, "/settings/iam/sso/break-glass", email="nobody@else.example",
                     break_glass="on")
    assert "No member of this organisation has that email address." in stranger
    with app.app_context():
        assert sso.break_glass_admins(db.session.merge(sso_org.org)) == []


def test_a_member_without_a_password_sets_one_after_sso_and_can_then_be_break_glass(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    with app.app_context():
        member = db.session.scalar(select(Membership).where(
            Membership.user_name_lower == "jane.doe@acme.example"))
        assert member is not None
        member.roles.append(roles.get_role(IT_ADMINISTRATOR))
        db.session.commit()
    login(client, sso_org.admin_email)
    refused = _post(client, "/settings/iam/sso/break-glass", email="jane.doe@acme.example",
                    break_glass="on")
    assert "They can set one themselves, once signed in (through SSO), under Your account → " \
        "Password (/account/password)." in refused
    jane = app.test_client()
    assert post_acs(jane, sso_org, sso_org.response("jane.doe@acme.example")).status_code == 302
    page = jane.get("/account/password")
    assert 'data-testid="no-password"' in page.get_data(as_text=True)
    assert jane.post("/account/password", data={
        "csrf_token": csrf_from(page.data), "new_password": "a long break-glass phrase",
        "confirm_password": "a long break-glass phrase"}).status_code == 302
    assert jane.get("/").status_code == 200  # the SSO session goes on
    marked = _post(client, "/settings/iam/sso/break-glass", email="jane.doe@acme.example",
                   break_glass="on")
    assert "jane.doe@acme.example is now a break-glass administrator" in marked
    assert login(app.test_client(), "jane.doe@acme.example",
                 "a long break-glass phrase").status_code == 302


def test_marking_oneself_without_a_password_points_to_ones_own_account_page(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    with app.app_context():
        member = db.session.scalar(select(Membership).where(
            Membership.user_name_lower == "jane.doe@acme.example"))
        assert member is not None
        member.roles.append(roles.get_role(IT_ADMINISTRATOR))
        db.session.commit()
    assert post_acs(client, sso_org, sso_org.response("jane.doe@acme.example")).status_code == 302
    html = _post(client, "/settings/iam/sso/break-glass", email="jane.doe@acme.example",
                 break_glass="on")
    assert "You have no password, so could not sign in if the IdP fails. Set one under Your " \
        "account → Password (/account/password) first." in html


def test_cli_marks_and_unmarks_a_break_glass_admin(app: Flask, runner: object,
                                                   sso_org: SsoOrg) -> None:
    args = ["user", "break-glass", "--org", sso_org.org.key, "--email", sso_org.admin_email]
    result = runner.invoke(args=args)  # type: ignore[attr-defined]
    assert result.exit_code == 0 and "is now a break-glass administrator of Acme Corp" in \
        result.output
    with app.app_context():
        events = db.session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.action.like("member.break_glass%"))).all()
        assert events == ["member.break_glass_set"]
    result = runner.invoke(args=[*args, "--off"])  # type: ignore[attr-defined]
    assert result.exit_code == 0 and "no longer" in result.output
    unknown = runner.invoke(args=["user", "break-glass", "--org", sso_org.org.key,  # type: ignore[attr-defined]
                                  "--email", "nobody@acme.example"])
    assert unknown.exit_code == 1 and "is not a member of Acme Corp" in unknown.output
    with app.app_context():
        assert sso.break_glass_admins(db.session.merge(sso_org.org)) == []


def test_login_page_offers_sign_in_with_sso(client: FlaskClient) -> None:
    html = client.get("/login?next=/settings/").get_data(as_text=True)
    assert 'href="/sso/?next=/settings/"' in html and "Sign in with SSO" in html


def test_sign_in_with_sso_finds_the_organisation_by_email_or_key(
    app: Flask, client: FlaskClient, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jdoe", email="jane.doe@acme.example")
    token = csrf_from(client.get("/sso/").data)
    by_email = client.post("/sso/?next=/settings/",
                           data={"identifier": " Jane.Doe@ACME.example ", "csrf_token": token})
    assert by_email.status_code == 200
    assert f'href="/sso/{sso_org.org.key}?next=/settings/" data-auto-follow' in \
        by_email.get_data(as_text=True)
    by_key = client.post("/sso/", data={"identifier": sso_org.org.key, "csrf_token": token})
    assert f'href="/sso/{sso_org.org.key}" data-auto-follow' in by_key.get_data(as_text=True)


def test_sign_in_with_sso_lets_a_person_in_several_organisations_choose(
    app: Flask, client: FlaskClient, factory: Factory, sso_org: SsoOrg
) -> None:
    from tests.sso.conftest import configure_sso
    from tests.sso.idp import TestIdP

    globex = factory.org("Globex")
    configure_sso(app, globex, TestIdP(entity_id="https://globex-idp.example"))
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    scim_member(app, globex, "jane.doe@acme.example")
    token = csrf_from(client.get("/sso/").data)
    html = client.post("/sso/", data={"identifier": "jane.doe@acme.example",
                                      "csrf_token": token}).get_data(as_text=True)
    assert f'href="/sso/{sso_org.org.key}">Acme Corp</a>' in html
    assert f'href="/sso/{globex.key}">Globex</a>' in html


def test_sign_in_with_sso_says_clearly_when_nothing_is_found(
    client: FlaskClient, factory: Factory
) -> None:
    org = factory.org("No SSO Ltd")
    factory.member(org, "max@nosso.example")
    token = csrf_from(client.get("/sso/").data)
    for value in ("max@nosso.example", org.key, "nobody@nowhere.example"):
        response = client.post("/sso/", data={"identifier": value, "csrf_token": token})
        assert response.status_code == 404
        assert b"We found no single sign-on for that email address" in response.data
    empty = client.post("/sso/", data={"identifier": " ", "csrf_token": token})
    assert empty.status_code == 400 and b"Enter your work email" in empty.data


def test_wrong_password_for_an_enforced_member_still_gets_the_generic_message(
    app: Flask, factory: Factory, sso_org: SsoOrg
) -> None:
    factory.member(sso_org.org, "max@acme.example")
    _break_glass(app, sso_org.admin_email)
    with app.app_context():
        sso.set_enforced(db.session.merge(sso_org.org), True, sso.audit.CLI_ACTOR)
        db.session.commit()
    response = login(app.test_client(), "max@acme.example", PASSWORD + "-wrong")
    assert response.status_code == 401
    assert b"requires single sign-on" not in response.data  # no hint without the password


def test_sign_in_with_sso_lookups_are_rate_limited_per_address(
    app: Flask, sso_org: SsoOrg
) -> None:
    from portal import create_app

    limited = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                          "SECRET_KEY": "test-secret", "TESTING": True,
                          "RATELIMIT_SSO_LOOKUP_PER_ADDRESS": "3 per hour"})
    client = limited.test_client()
    token = csrf_from(client.get("/sso/").data)
    for i in range(3):
        client.post("/sso/", data={"identifier": f"guess{i}@acme.example", "csrf_token": token})
    blocked = client.post("/sso/", data={"identifier": sso_org.org.key, "csrf_token": token})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert b"data-auto-follow" not in blocked.data


def test_cli_names_the_account_page_for_a_member_without_a_password(
    app: Flask, runner: object, sso_org: SsoOrg
) -> None:
    scim_member(app, sso_org.org, "jane.doe@acme.example")
    result = runner.invoke(args=["user", "break-glass", "--org", sso_org.org.key,  # type: ignore[attr-defined]
                                 "--email", "jane.doe@acme.example"])
    assert result.exit_code == 1 and "has no password" in result.output
    assert "Your account → Password (/account/password)" in result.output
