"""The portal shell: top bar, IT Settings sidebar, all-or-nothing IAM access, error pages."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from portal.permissions import ADMINISTRATOR
from tests.conftest import Factory, csrf_from, login


@pytest.fixture
def it_admin_client(client: FlaskClient, factory: Factory) -> FlaskClient:
    org = factory.org()
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    return client


IAM_PAGES = ["/settings/iam/", "/settings/iam/scim", "/settings/iam/sso"]


@pytest.mark.parametrize("path", ["/settings/iam/scim", "/settings/iam/sso"])
def test_iam_pages_expand_the_iam_group_and_mark_the_current_item(
    it_admin_client: FlaskClient, path: str
) -> None:
    html = it_admin_client.get(path).get_data(as_text=True)
    assert re.search(r'<details open data-nav-group="iam">', html)
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', html)
    assert current == [path]


def test_settings_sidebar_lists_every_section(it_admin_client: FlaskClient) -> None:
    html = it_admin_client.get("/settings/general").get_data(as_text=True)
    for label in ("General", "Identity &amp; Access Management", "SCIM", "SSO", "Audit Log"):
        assert label in html
    assert '<details  data-nav-group="iam">' in html  # collapsed outside IAM


def test_iam_pages_have_no_breadcrumb_but_other_settings_do(it_admin_client: FlaskClient) -> None:
    assert b'aria-label="Breadcrumb"' not in it_admin_client.get("/settings/iam/scim").data
    assert b'aria-label="Breadcrumb"' in it_admin_client.get("/settings/general").data


@pytest.mark.parametrize("path", IAM_PAGES)
def test_member_without_iam_permission_gets_full_403_page(
    client: FlaskClient, factory: Factory, path: str
) -> None:
    factory.member(factory.org(), "max@acme.example")
    login(client, "max@acme.example")
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "403 Forbidden" in html
    assert "IT Settings — Identity &amp; Access Management" in html
    assert 'class="topbar"' in html  # the shell, not a bare error


def test_htmx_request_without_permission_gets_403_fragment(
    client: FlaskClient, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    login(client, "max@acme.example")
    response = client.get("/settings/iam/scim", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert b"403 Forbidden" in response.data and b"<html" not in response.data
    assert "HX-Request" in response.headers["Vary"]


def test_administrator_role_reaches_iam(client: FlaskClient, factory: Factory) -> None:
    factory.member(factory.org(), "boss@acme.example", ADMINISTRATOR)
    login(client, "boss@acme.example")
    assert client.get("/settings/iam/scim").status_code == 200


def test_unknown_page_is_a_404_in_the_shell(it_admin_client: FlaskClient) -> None:
    response = it_admin_client.get("/no-such-page")
    assert response.status_code == 404
    assert b"Page not found" in response.data and b'class="topbar"' in response.data


def test_unknown_page_shows_the_same_shell_as_every_other_page(
    client: FlaskClient, factory: Factory
) -> None:
    acme, globex = factory.org("Acme Corp"), factory.org("Globex")
    factory.it_admin(acme)
    factory.it_admin(globex)
    login(client, "it-admin@acme.example")
    html = client.get("/no-such-page").get_data(as_text=True)
    main_nav = re.search(r'<nav class="main-nav".*?</nav>', html, re.S).group(0)
    assert ">People</a>" in main_nav and ">Groups</a>" in main_nav  # the member's own menu
    assert 'id="org-switch"' in html and "Globex" in html


@pytest.mark.parametrize(("path", "needs"), [
    ("/settings/general", "IT Settings — General"),
    ("/settings/audit", "IT Settings — Audit Log"),
    ("/settings/iam/sso", "IT Settings — Identity &amp; Access Management"),
    ("/people/", "People — view"),
    ("/groups/", "People — view"),
])
def test_403_page_names_the_permission_that_page_needs(
    client: FlaskClient, factory: Factory, path: str, needs: str
) -> None:
    factory.member(factory.org(), "max@acme.example")
    login(client, "max@acme.example")
    response = client.get(path)
    assert response.status_code == 403
    said = re.search(r'data-testid="needs">(.*?)</p>', response.get_data(as_text=True), re.S)
    assert said and f"<strong>{needs}</strong>" in said.group(1)
    assert said.group(1).count("<strong>") == 1  # no other permission is blamed


def test_it_settings_without_any_section_is_a_403_that_says_so(
    client: FlaskClient, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    login(client, "max@acme.example")
    response = client.get("/settings/")
    assert response.status_code == 403  # not a redirect to a section that then refuses
    html = response.get_data(as_text=True)
    assert "Your role gives you no <strong>IT Settings</strong> permission." in html
    assert 'aria-label="IT Settings"' in html and 'aria-current="page"' not in html.split(
        'aria-label="IT Settings"')[1].split("</nav>")[0]


def test_every_page_links_a_favicon_that_exists(it_admin_client: FlaskClient) -> None:
    for path in ("/", "/settings/iam/scim", "/no-such-page"):
        html = it_admin_client.get(path).get_data(as_text=True)
        icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
        assert icon, path
        assert it_admin_client.get(icon.group(1)).status_code == 200


def test_top_bar_shows_profile_notifications_and_switcher(
    client: FlaskClient, factory: Factory
) -> None:
    acme, globex = factory.org("Acme Corp"), factory.org("Globex")
    factory.it_admin(acme)
    factory.it_admin(globex)
    login(client, "it-admin@acme.example")
    html = client.get("/").get_data(as_text=True)
    assert "Sign out" in html and 'aria-label="Notifications, 0 unread"' in html
    assert 'id="org-switch"' in html and "Globex" in html


def test_switching_organisation_changes_scope(client: FlaskClient, factory: Factory) -> None:
    acme, globex = factory.org("Acme Corp"), factory.org("Globex")
    factory.it_admin(acme)
    factory.member(globex, "it-admin@acme.example")  # only a Member in Globex
    login(client, "it-admin@acme.example")
    assert client.get("/settings/iam/scim").status_code == 200
    home = client.get("/")
    client.post("/switch-organisation", data={"organisation_id": globex.id,
                                              "csrf_token": csrf_from(home.data)})
    assert client.get("/settings/iam/scim").status_code == 403


def test_switching_to_an_organisation_one_is_not_in_is_404(
    client: FlaskClient, factory: Factory
) -> None:
    acme, other = factory.org("Acme Corp"), factory.org("Other")
    factory.it_admin(acme)
    login(client, "it-admin@acme.example")
    home = client.get("/")
    response = client.post("/switch-organisation", data={"organisation_id": other.id,
                                                         "csrf_token": csrf_from(home.data)})
    assert response.status_code == 404


def test_portal_pages_send_security_headers(it_admin_client: FlaskClient) -> None:
    response = it_admin_client.get("/settings/iam/scim")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_pages_carry_no_inline_script(it_admin_client: FlaskClient) -> None:
    html = it_admin_client.get("/settings/iam/scim").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " on" + "click=" not in html


def test_support_staff_outside_any_organisation_are_not_offered_it_settings(
    app, client: FlaskClient
) -> None:
    from tests.iam.helpers import support_account

    support_account(app, "support@vendor.example")
    login(client, "support@vendor.example")
    html = client.get("/").get_data(as_text=True)
    main_nav = re.search(r'<nav class="main-nav".*?</nav>', html, re.S).group(0)
    assert ">Support</a>" in main_nav
    assert ">IT Settings</a>" not in main_nav  # it could only lead to a 403


def test_support_page_is_only_for_support_staff(client: FlaskClient, factory: Factory) -> None:
    org = factory.org()
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    response = client.get("/support/rollout")
    assert response.status_code == 403
    assert b"This page is only for Priverion support staff." in response.data
    assert b"Identity &amp; Access Management</strong> permission" not in response.data
