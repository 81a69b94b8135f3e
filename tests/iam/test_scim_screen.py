"""The SCIM Configuration screen as rendered: its states, its fragment, its layout."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Organisation, ScimToken
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import Factory, login
from tests.iam.helpers import GENERATE, HTMX, ROTATE, SCIM_PAGE, post, shown_token


@pytest.fixture
def org(factory: Factory) -> Organisation:
    return factory.org("Acme Corp")


@pytest.fixture
def admin(client: FlaskClient, factory: Factory, org: Organisation) -> FlaskClient:
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    return client


def _issue(app: Flask, org: Organisation, agent: str | None = None) -> str:
    with app.app_context():
        fresh = db.session.get(Organisation, org.id)
        issued = scim_tokens.issue_token(fresh, CLI_ACTOR)
        if agent:
            scim_tokens.note_use(issued.record, agent)
        db.session.commit()
        return issued.plaintext


def _without_csrf(html: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]+"', "", html)
    return re.sub(r"\s+", " ", html).strip()


def test_page_shows_the_base_url_read_only_with_a_copy_button(
    admin: FlaskClient, org: Organisation
) -> None:
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    base_url = f"https://dpms.test/scim/v2/{org.key}"
    assert re.search(rf'<input id="scim-base-url" type="text" value="{re.escape(base_url)}" '
                     r"readonly", html)
    assert '<label for="scim-base-url"' in html
    assert 'data-copy-target="#scim-base-url" aria-label="Copy SCIM Base URL">Copy</button>' in html
    assert 'data-copy-status role="status" aria-live="polite"' in html


def test_without_a_token_the_panel_explains_and_offers_generate(admin: FlaskClient) -> None:
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert 'data-state="none"' in html
    assert "No token has been issued for Acme Corp yet" in html
    form = re.search(r'<form method="post" action="/settings/iam/scim/token"[^>]*>(.*?)</form>',
                     html, re.S)
    assert form, "no plain Generate form"
    assert 'hx-post="/settings/iam/scim/token"' in form.group(0)
    assert 'hx-target="#scim-token-panel" hx-swap="outerHTML"' in form.group(0)
    assert 'name="csrf_token"' in form.group(1)
    assert '<button type="submit" class="btn btn-primary">Generate Token</button>' in form.group(1)
    assert "Rotate Token" not in html


def test_an_earlier_token_shows_only_its_hint_issuer_and_last_use(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    plaintext = _issue(app, org, agent="Okta SCIM Client 1.0.0")
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert plaintext not in html
    assert 'data-state="issued"' in html
    assert f'<code data-testid="token-hint">dpms_scim_…{plaintext[-4:]}</code>' in html
    assert "by command line" in html  # who issued it
    assert "by Okta SCIM Client 1.0.0" in html  # which client used it last
    assert 'data-dialog-open="#rotate-dialog"' in html and ">Rotate Token</a>" in html
    assert "Generate Token" not in html


def test_an_unused_token_says_so(app: Flask, admin: FlaskClient, org: Organisation) -> None:
    _issue(app, org)
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert "Not used yet" in html
    assert "No requests received yet" in html


def test_rotate_dialog_is_labelled_and_says_the_three_consequences(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    _issue(app, org)
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    dialog = re.search(r'<dialog id="rotate-dialog"[^>]*>(.*?)</dialog>', html, re.S)
    assert dialog
    assert 'aria-labelledby="rotate-title"' in dialog.group(0)
    assert 'aria-describedby="rotate-desc"' in dialog.group(0)
    body = dialog.group(1)
    assert "stops working the moment you confirm" in body
    assert "Your identity provider cannot sync until you give it the new token." in body
    assert "No user accounts are touched" in body
    # The guide's two warnings: irreversible, and best done while the IdP is quiet.
    assert "This cannot be undone." in body and "quiet period" in body
    assert '<button type="button" class="btn" data-dialog-close autofocus>Cancel</button>' in body
    assert f'action="{ROTATE}"' in body and 'name="csrf_token"' in body


def test_rotate_confirmation_page_works_without_javascript(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    _issue(app, org)
    html = admin.get(ROTATE).get_data(as_text=True)
    assert "stops working the moment you confirm" in html
    assert "This cannot be undone." in html
    assert '<h1 id="rotate-title">Rotate the SCIM token?</h1>' in html  # the page's own heading
    assert "hx-post" not in html.split('id="rotate-title"')[1]  # a plain form on its own page
    assert f'<a class="btn" href="{SCIM_PAGE}">Cancel</a>' in html


def test_rotate_confirmation_page_without_a_token_goes_back_to_the_screen(
    admin: FlaskClient,
) -> None:
    response = admin.get(ROTATE)
    assert response.status_code == 302 and response.headers["Location"] == SCIM_PAGE


def test_status_for_auditors_states_endpoint_token_and_last_request(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    status = re.search(r'<section id="scim-status".*?</section>', html, re.S).group(0)
    assert "Endpoint configured" in status and f"/scim/v2/{org.key}" in status
    assert ('<span class="badge badge-neutral">No</span> '
            '<span class="muted">— none has been issued yet') in status
    # Said once (the self-refreshing health badge), not once per row.
    assert status.count("No requests received yet") == 1
    assert html.count("No requests received yet") == 1
    assert 'id="scim-health"' in status and "No requests</span>" not in status
    _issue(app, org, agent="Okta SCIM Client 1.0.0")
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    status = re.search(r'<section id="scim-status".*?</section>', html, re.S).group(0)
    assert '<span class="badge badge-ok">Yes</span> on <time' in status
    assert "Token accepted" in status and "Okta SCIM Client 1.0.0" in status


def test_identity_provider_panel_names_the_fields_of_each_idp(admin: FlaskClient) -> None:
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    for idp, url_field, token_field in [
        ("entra", "Tenant URL", "Secret Token"),
        ("okta", "SCIM connector base URL", "API token"),
        ("onelogin", "SCIM Base URL", "SCIM Bearer Token"),
        ("jumpcloud", "Base URL", "Token Key"),
        ("authentik", "URL", "Token"),
    ]:
        block = re.search(rf'<details class="idp" data-idp="{idp}">(.*?)</details>', html, re.S)
        assert block, idp
        assert f"<strong>{url_field}</strong>" in block.group(1)
        assert f"<strong>{token_field}" in block.group(1)
    assert "userName" in html  # Okta's unique identifier field
    onelogin = re.search(r'data-idp="onelogin">(.*?)</details>', html, re.S).group(1)
    assert "SCIM 2.0 core + enterprise" in onelogin
    google = re.search(r'data-idp="google">(.*?)</details>', html, re.S).group(1)
    assert "only to apps in Google's own catalogue" in google


def test_issued_token_panel_advises_rotating_when_switching_identity_provider(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    assert 'data-testid="idp-switch-hint"' not in admin.get(SCIM_PAGE).get_data(as_text=True)
    _issue(app, org)
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    hint = re.search(r'data-testid="idp-switch-hint">(.*?)</p>', html, re.S)
    assert hint, "the IdP-migration advice is missing next to Rotate Token"
    assert "SCIM Base URL stays the same" in hint.group(1)
    assert "stops the old one from syncing" in hint.group(1)


def test_page_links_to_sso_with_the_who_and_how_sentence(admin: FlaskClient) -> None:
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert "SCIM decides who has an account; SSO decides how they sign in." in html
    assert 'href="/settings/iam/sso"' in html


def test_htmx_get_returns_the_very_panel_the_page_includes(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    _issue(app, org)
    page = admin.get(SCIM_PAGE)
    fragment = admin.get(SCIM_PAGE, headers=HTMX)
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="scim-token-panel"') and "<html" not in text
    assert _without_csrf(text) in _without_csrf(page.get_data(as_text=True))
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]


def test_htmx_generate_swaps_the_panel_and_refreshes_the_auditor_block(
    admin: FlaskClient,
) -> None:
    response = post(admin, GENERATE, htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<section id="scim-token-panel"')
    assert 'data-state="shown"' in html and shown_token(html)
    assert '<section id="scim-status" class="card status-card" aria-labelledby="status-title" ' \
           'hx-swap-oob="true">' in html


def test_plain_generate_renders_the_whole_page_with_the_token(admin: FlaskClient) -> None:
    response = post(admin, GENERATE)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'class="topbar"' in html and "SCIM Base URL" in html
    token = shown_token(html)
    assert re.search(rf'<input id="scim-new-token" type="text" value="{token}" readonly', html)
    assert "shown only this once" in html and "will not be shown again" in html
    assert "hx-swap-oob" not in html


def test_page_has_no_breadcrumb_and_highlights_scim(admin: FlaskClient) -> None:
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert 'aria-label="Breadcrumb"' not in html
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == [SCIM_PAGE]
    assert '<details open data-nav-group="iam">' in html


def test_rollout_pending_shows_one_calm_line_and_no_controls(
    client: FlaskClient, factory: Factory
) -> None:
    globex = factory.org("Globex", released=False)
    factory.it_admin(globex, "ada@globex.example")
    login(client, "ada@globex.example")
    response = client.get(SCIM_PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    main = re.search(r'<div id="scim-main" class="scim">(.*?)</div>\s*</main>', html, re.S).group(1)
    visible = re.sub(r'<h1 class="visually-hidden">.*?</h1>', "", main, flags=re.S)
    assert re.sub(r"<[^>]+>", "", visible).strip() == (
        "The SCIM controls are not yet available for Globex. Ask your Priverion administrator "
        "or support contact for the rollout status of your organisation.")
    for control in ("<form", "<button", "<input", "scim-base-url", "Generate Token"):
        assert control not in main
    assert "403" not in html and 'role="alert"' not in main  # an expected state, not an error


def test_rollout_pending_fragment_is_the_calm_line(client: FlaskClient, factory: Factory) -> None:
    globex = factory.org("Globex", released=False)
    factory.it_admin(globex, "ada@globex.example")
    login(client, "ada@globex.example")
    response = client.get(SCIM_PAGE, headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#scim-main"
    assert b"not yet available for Globex" in response.data and b"<form" not in response.data


def test_page_does_not_show_another_organisations_token_state(
    app: Flask, admin: FlaskClient, factory: Factory
) -> None:
    other = factory.org("Other Corp")
    _issue(app, other, agent="Other Corp's IdP 9.9")
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert 'data-state="none"' in html and "IdP 9.9" not in html
    with app.app_context():
        assert db.session.query(ScimToken).count() == 1
