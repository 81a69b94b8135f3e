"""Signing in and out: generic failures, deactivated memberships, safe redirects, CSRF."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Membership
from tests.conftest import PASSWORD, Factory, csrf_from, login


def test_sign_in_page_has_labelled_fields_and_button(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert ">Sign in</button>" in html


def test_correct_password_signs_in_and_lands_on_home(client: FlaskClient, factory: Factory) -> None:
    org = factory.org()
    factory.member(org, "max@acme.example")
    response = login(client, "max@acme.example")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert b"Acme Corp" in home.data and b"Member" in home.data


@pytest.mark.parametrize("email,password", [
    ("max@acme.example", "wrong-password"),
    ("nobody@acme.example", PASSWORD),
])
def test_wrong_email_or_password_gets_the_same_generic_message(
    client: FlaskClient, factory: Factory, email: str, password: str
) -> None:
    factory.member(factory.org(), "max@acme.example")
    response = login(client, email, password)
    html = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "The email or password is not correct." in html
    assert client.get("/").status_code == 302  # still signed out


def test_email_is_case_insensitive(client: FlaskClient, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    assert login(client, "  MAX@Acme.Example ").status_code == 302


def test_disabled_membership_cannot_sign_in_and_is_told_after_correct_password(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    member = factory.member(factory.org(), "max@acme.example")
    with app.app_context():
        db.session.get(Membership, member.id).active = False
        db.session.commit()
    wrong = login(client, "max@acme.example", "wrong-password")
    assert b"deactivated" not in wrong.data
    right = login(client, "max@acme.example")
    assert right.status_code == 403
    assert b"Your access to this organisation has been deactivated" in right.data
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target,expected", [
    ("/settings/iam/scim", "/settings/iam/scim"),
    ("https://evil.example/phish", "/"),
    ("//evil.example/phish", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("/%09/evil.example", "/"),  # a browser drops the tab: //evil.example
    ("/%0A/evil.example", "/"),
    ("https:evil.example", "/"),
    ("%20//evil.example", "/"),
])
def test_next_is_followed_only_for_same_site_paths(
    client: FlaskClient, factory: Factory, target: str, expected: str
) -> None:
    factory.member(factory.org(), "max@acme.example")
    page = client.get("/login")
    response = client.post(f"/login?next={target}", data={
        "email": "max@acme.example", "password": PASSWORD, "csrf_token": csrf_from(page.data)})
    assert response.headers["Location"] == expected


def test_not_signed_in_is_redirected_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/settings/iam/scim")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_sign_in_without_csrf_token_is_refused(client: FlaskClient, factory: Factory) -> None:
    factory.member(factory.org(), "max@acme.example")
    response = client.post("/login", data={"email": "max@acme.example", "password": PASSWORD})
    assert response.status_code == 400
    assert b"Nothing was changed" in response.data
    assert client.get("/").status_code == 302


def test_sign_out_needs_post_with_csrf_and_ends_the_session(
    client: FlaskClient, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    login(client, "max@acme.example")
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/").status_code == 200
    home = client.get("/")
    client.post("/logout", data={"csrf_token": csrf_from(home.data)})
    assert client.get("/").status_code == 302


def test_password_is_stored_as_a_scrypt_hash(app: Flask, factory: Factory) -> None:
    member = factory.member(factory.org(), "max@acme.example")
    with app.app_context():
        stored = db.session.get(Membership, member.id).account.password_hash
    assert stored.startswith("scrypt:") and PASSWORD not in stored
