"""A signed-in person sets or changes their own password; a change ends their other sessions."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash

from portal import create_app
from portal.extensions import db
from portal.models import Account, AuditEvent, Membership
from tests.conftest import PASSWORD, Factory, csrf_from, login

PAGE = "/account/password"
NEW = "correct horse battery staple"


def _account(app: Flask, email: str = "ada@acme.example") -> Account:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == email))
        assert account is not None
        db.session.expunge(account)
        return account


def _events(app: Flask) -> list[tuple[str, int | None, str | None, int | None]]:
    """Return (action, organisation, target member, actor) of every password event."""
    with app.app_context():
        return [(e.action, e.organisation_id, e.target_id, e.actor_account_id)
                for e in db.session.scalars(select(AuditEvent)
                                            .where(AuditEvent.action.like("account.password%"))
                                            .order_by(AuditEvent.id))]


def _change(client: FlaskClient, **form: str) -> tuple[int, str]:
    token = csrf_from(client.get(PAGE).data)
    answer = client.post(PAGE, data={"csrf_token": token, **form})
    return answer.status_code, answer.get_data(as_text=True)


def _field_error(html: str, field: str) -> str | None:
    found = re.search(rf'id="{field}-error">([^<]+)<', html)
    return found.group(1) if found else None


def test_the_user_menu_links_to_the_password_page(client: FlaskClient, factory: Factory) -> None:
    factory.member(factory.org(), "ada@acme.example")
    login(client, "ada@acme.example")
    home = client.get("/").get_data(as_text=True)
    assert f'href="{PAGE}" data-testid="account-password-link">Your account → Password' in home
    page = client.get(PAGE).get_data(as_text=True)
    assert 'name="current_password"' in page and 'autocomplete="current-password"' in page
    assert "Change password" in page


def test_the_password_page_needs_a_signed_in_person(client: FlaskClient) -> None:
    answer = client.get(PAGE)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def test_changing_the_password_stores_it_audits_it_and_ends_the_other_sessions(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    acme, globex = factory.org("Acme Corp"), factory.org("Globex")
    members = [factory.it_admin(acme, "ada@acme.example"),
               factory.member(globex, "ada@acme.example")]
    login(client, "ada@acme.example")
    laptop = app.test_client()  # the same person, signed in elsewhere
    login(laptop, "ada@acme.example")
    old_cookie = client.get_cookie("session")
    assert old_cookie is not None
    before = _account(app)

    status, _ = _change(client, current_password=PASSWORD, new_password=NEW,
                        confirm_password=NEW)

    assert status == 302
    after = _account(app)
    assert after.password_hash != before.password_hash
    assert after.password_hash and check_password_hash(after.password_hash, NEW)
    assert not check_password_hash(after.password_hash, PASSWORD)
    assert after.session_token != before.session_token
    # One event in each of the person's organisations, naming them as member there.
    assert sorted(_events(app)) == sorted(
        ("account.password_changed", m.organisation_id, m.public_id, before.id) for m in members)
    # This session goes on; the other one and a copy of the old cookie are signed out.
    page = client.get("/")
    assert page.status_code == 200
    assert "Every other session of yours has been signed out." in page.get_data(as_text=True)
    assert "account.password_changed" in client.get("/settings/audit").get_data(as_text=True)
    assert laptop.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", old_cookie.value)
    assert replay.get("/").headers["Location"].startswith("/login")
    # And the sign-in takes the new password only.
    assert login(app.test_client(), "ada@acme.example", PASSWORD).status_code == 401
    assert login(app.test_client(), "ada@acme.example", NEW).status_code == 302


def test_a_wrong_current_password_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    factory.member(factory.org(), "ada@acme.example")
    login(client, "ada@acme.example")
    laptop = app.test_client()
    login(laptop, "ada@acme.example")
    before = _account(app)

    status, html = _change(client, current_password="not-my-password", new_password=NEW,
                           confirm_password=NEW)

    assert status == 400
    assert _field_error(html, "current_password") == "The current password is not correct."
    after = _account(app)
    assert (after.password_hash, after.session_token) == (before.password_hash,
                                                          before.session_token)
    assert _events(app) == []
    assert laptop.get("/").status_code == 200 and client.get("/").status_code == 200


def test_form_mistakes_are_explained_on_their_fields_and_nothing_is_written(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    factory.member(factory.org(), "ada@acme.example")
    login(client, "ada@acme.example")
    before = _account(app)
    cases = [
        ({"new_password": "short", "confirm_password": "short"}, "new_password",
         "A password needs at least 8 characters."),
        ({"new_password": "x" * 257, "confirm_password": "x" * 257}, "new_password",
         "A password can have at most 256 characters."),
        ({"new_password": " " * 9, "confirm_password": " " * 9}, "new_password",
         "A password cannot be only spaces."),
        ({"new_password": NEW, "confirm_password": NEW + "!"}, "confirm_password",
         "The two new passwords are not the same."),
        ({"new_password": "", "confirm_password": ""}, "new_password",
         "Enter the new password."),
        ({"new_password": PASSWORD, "confirm_password": PASSWORD}, "new_password",
         "The new password must differ from the current one."),
        ({"new_password": "password123", "confirm_password": "password123"}, "new_password",
         "Choose a password that is harder to guess: This is a very common password. A few "
         "unrelated words make a strong password that is easy to remember."),
        ({"new_password": "ada@acme.example1", "confirm_password": "ada@acme.example1"},
         "new_password", "Choose a password that is harder to guess: It is too easy to guess. "
         "A few unrelated words make a strong password that is easy to remember."),  # the email
    ]
    for form, field, message in cases:
        status, html = _change(client, current_password=PASSWORD, **form)
        assert (status, _field_error(html, field)) == (400, message), form
        assert f'id="{field}" name="{field}"' in html and 'aria-invalid="true"' in html
    after = _account(app)
    assert (after.password_hash, after.session_token) == (before.password_hash,
                                                          before.session_token)
    assert _events(app) == []


def test_changing_the_password_needs_the_csrf_token(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    factory.member(factory.org(), "ada@acme.example")
    login(client, "ada@acme.example")
    before = _account(app)
    answer = client.post(PAGE, data={"current_password": PASSWORD, "new_password": NEW,
                                     "confirm_password": NEW})
    assert answer.status_code == 400
    assert _account(app).password_hash == before.password_hash and _events(app) == []


def test_wrong_current_passwords_use_up_the_sign_in_budget(
    app: Flask, factory: Factory
) -> None:
    factory.member(factory.org(), "ada@acme.example")
    limited = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
                          "TESTING": True, "RATELIMIT_LOGIN_PER_ACCOUNT": "3 per hour"})
    client = limited.test_client()
    assert login(client, "ada@acme.example").status_code == 302
    assert login(limited.test_client(), "ada@acme.example", "a-wrong-guess").status_code == 401
    before = _account(app)
    for _ in range(2):
        status, _ = _change(client, current_password="another-guess", new_password=NEW,
                            confirm_password=NEW)
        assert status == 400
    token = csrf_from(client.get(PAGE).data)
    blocked = client.post(PAGE, data={"csrf_token": token, "current_password": PASSWORD,
                                      "new_password": NEW, "confirm_password": NEW})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert _field_error(blocked.get_data(as_text=True), "current_password") == \
        "Too many wrong passwords. Please wait a few minutes and try again."
    assert _account(app).password_hash == before.password_hash and _events(app) == []
    # The sign-in form counts the same failures.
    assert login(limited.test_client(), "ada@acme.example").status_code == 429


def test_a_person_without_a_password_sets_one_without_a_current_one(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    org = factory.org()
    factory.member(org, "ada@acme.example")
    login(client, "ada@acme.example")
    with app.app_context():  # as if provisioned by SCIM: the account has no password (yet)
        account = db.session.scalar(select(Account).where(Account.email == "ada@acme.example"))
        assert account is not None
        account.password_hash = None
        db.session.commit()
    page = client.get(PAGE).get_data(as_text=True)
    assert 'name="current_password"' not in page and 'data-testid="no-password"' in page
    status, _ = _change(client, new_password=NEW, confirm_password=NEW)
    assert status == 302
    after = _account(app)
    assert after.password_hash and check_password_hash(after.password_hash, NEW)
    with app.app_context():
        member = db.session.scalar(select(Membership).where(Membership.account_id == after.id))
        assert member is not None
        assert _events(app) == [("account.password_set", org.id, member.public_id, after.id)]
    assert "Your password is set." in client.get("/").get_data(as_text=True)
