"""The test IdP served over HTTP on 127.0.0.1, for browser tests: a login form, then a POST back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from urllib.parse import parse_qs, urlsplit

from flask import Flask, request
from werkzeug.serving import make_server

from tests.sso.idp import TestIdP, authn_request_from_redirect

SAML_NS = "{urn:oasis:names:tc:SAML:2.0:assertion}"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;background:#222b3a;color:#fff;display:grid;"
            "place-items:center;min-height:90vh}form{background:#fff;color:#222;padding:2rem;"
            "border-radius:8px;min-width:320px}input{display:block;width:100%;margin:.5rem 0 1rem;"
            "padding:.5rem}</style></head>"
            f"<body>{body}</body></html>")


def idp_app(idp: TestIdP) -> Flask:
    """Return the IdP's web app: GET /sso shows a sign-in form, POST /login answers the SP."""
    app = Flask("test_idp")

    @app.get("/sso")
    def sso() -> str:
        authn = authn_request_from_redirect(request.url)
        return _page("Test IdP", f"""<form method="post" action="/login">
          <h1>Test IdP</h1><p>Signing in to {escape(authn.findtext(SAML_NS + 'Issuer') or '')}</p>
          <label for="email">Email</label><input id="email" name="email" type="email">
          <input type="hidden" name="request_url" value="{escape(request.url)}">
          <button type="submit">Sign in at the IdP</button></form>""")

    @app.post("/login")
    def login() -> str:
        authn = authn_request_from_redirect(request.form["request_url"])
        query = parse_qs(urlsplit(request.form["request_url"]).query)
        relay_state = (query.get("RelayState") or [""])[0]
        acs_url = authn.get("AssertionConsumerServiceURL") or ""
        saml_response = idp.response(
            acs_url=acs_url, audience=authn.findtext(SAML_NS + "Issuer") or "",
            name_id=request.form["email"], in_response_to=authn.get("ID"),
            attributes={"email": [request.form["email"]], "department": ["Legal"]})
        return _page("Redirecting", f"""<form method="post" action="{escape(acs_url)}">
          <input type="hidden" name="SAMLResponse" value="{saml_response}">
          <input type="hidden" name="RelayState" value="{escape(relay_state)}">
          <p>Returning to the application…</p><button type="submit">Continue</button></form>
          <script>document.forms[0].submit();</script>""")

    return app


@contextmanager
def running_idp() -> Iterator[TestIdP]:
    """Start a TestIdP whose SSO URL is served on 127.0.0.1; stop it afterwards."""
    idp = TestIdP()
    server = make_server("127.0.0.1", 0, idp_app(idp), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    idp.entity_id, idp.sso_url = f"{base}/metadata", f"{base}/sso"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        thread.join(timeout=5)
