"""Helpers shared by the SCIM screen tests: signing in, posting with CSRF, reading state."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation, ScimToken
from tests.conftest import csrf_from

SCIM_PAGE = "/settings/iam/scim"
GENERATE = "/settings/iam/scim/token"
ROTATE = "/settings/iam/scim/token/rotate"
HTMX = {"HX-Request": "true"}
TOKEN_RE = re.compile(r"dpms_scim_[A-Za-z0-9_-]{40,}")


def csrf(client: FlaskClient) -> str:
    """Return a CSRF token for the signed-in session."""
    return csrf_from(client.get("/").data)


def post(client: FlaskClient, url: str, *, htmx: bool = False, with_csrf: bool = True,
         **form: Any) -> Any:
    """POST a form the way the page does (CSRF in the form, or in the header for HTMX)."""
    headers = dict(HTMX) if htmx else {}
    token = csrf(client) if with_csrf else None
    if token and htmx:
        headers["X-CSRFToken"] = token
    elif token:
        form["csrf_token"] = token
    return client.post(url, data=form, headers=headers)


def shown_token(html: str) -> str:
    """Return the one plaintext token a response shows."""
    found = set(TOKEN_RE.findall(html))
    assert len(found) == 1, f"expected exactly one token in the response, found {len(found)}"
    return found.pop()


def tokens(app: Flask, org: Organisation) -> list[ScimToken]:
    """Return every token row of the organisation, oldest first."""
    with app.app_context():
        rows = list(db.session.scalars(
            select(ScimToken).where(ScimToken.organisation_id == org.id).order_by(ScimToken.id)))
        db.session.expunge_all()
        return rows


def active_tokens(app: Flask, org: Organisation) -> list[ScimToken]:
    """Return the organisation's unrevoked tokens (there must never be more than one)."""
    return [t for t in tokens(app, org) if t.revoked_at is None]


def rotate_form_token_id(html: str) -> str:
    """Return the token id the rotate form carries."""
    match = re.search(r'name="token_id" value="(\d+)"', html)
    assert match, "no rotate form on the page"
    return match.group(1)


def support_account(app: Flask, email: str) -> None:
    """Create a vendor support account that belongs to no organisation."""
    from portal.services import accounts
    from tests.conftest import PASSWORD

    with app.app_context():
        account = accounts.get_or_create_account(email, display_name="Sam Support")
        accounts.set_password(account, PASSWORD)
        account.is_support_staff = True
        db.session.commit()
