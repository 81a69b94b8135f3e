"""In a real browser: the user menu leads to the password page; the bell opens a notice by POST."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.security import check_password_hash

from portal.extensions import db
from portal.models import Account, Notification
from portal.services import notifications
from tests.conftest import PASSWORD, Factory, screenshot
from tests.test_shell_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]


def test_a_person_changes_their_password_from_the_user_menu(
    page, live_server: str, app: Flask, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    sign_in(page, live_server, "max@acme.example")
    page.get_by_label("Profile menu").click()
    page.get_by_role("link", name="Your account → Password").click()
    page.wait_for_url("**/account/password")
    page.get_by_label("Current password").fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("a new passphrase here")
    page.get_by_label("Repeat the new password").fill("a new passphrase here")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text(
        "The current password is not correct.")
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "account-password-error")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a new passphrase here")
    page.get_by_label("Repeat the new password").fill("a new passphrase here")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Every other session of yours has been signed out.")).to_be_visible()
    screenshot(page, "account-password-changed")
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == "max@acme.example"))
        assert account is not None and account.password_hash is not None
        assert check_password_hash(account.password_hash, "a new passphrase here")


def test_opening_a_notice_from_the_bell_marks_it_read(
    page, live_server: str, app: Flask, factory: Factory
) -> None:
    org = factory.org()
    factory.it_admin(org)
    with app.app_context():
        admin = db.session.scalar(select(Account).where(Account.email == "it-admin@acme.example"))
        assert admin is not None
        notifications.notify(admin, "SCIM is failing", organisation=org,
                             link="/settings/iam/scim/activity?status=errors")
        db.session.commit()
    sign_in(page, live_server, "it-admin@acme.example")
    expect(page.get_by_test_id("unread-count")).to_have_text("1")
    page.get_by_label("Notifications, 1 unread").click()
    page.get_by_role("button", name="SCIM is failing").click()
    page.wait_for_url("**/settings/iam/scim/activity?status=errors")
    expect(page.get_by_test_id("unread-count")).to_have_count(0)
    with app.app_context():
        assert db.session.scalar(select(Notification.read_at)) is not None
