"""Signing in through an organisation's SAML identity provider (public endpoints)."""

from __future__ import annotations

from functools import partial

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import login_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal import ratelimit
from portal.auth import safe_next
from portal.extensions import csrf, db
from portal.models import Organisation, SsoConfig
from portal.security import ORG_SESSION_KEY, SSO_ORG_SESSION_KEY, record_regardless
from portal.services import saml, sso_signin
from portal.services.saml import PendingRequest

bp = Blueprint("sso", __name__, url_prefix="/sso")

PENDING_COOKIE = "dpms_saml_pending"
LOOKUPS_PER_ADDRESS = ratelimit.FailureLimit(
    "sso-lookup-ip", "RATELIMIT_SSO_LOOKUP_PER_ADDRESS", "30 per 5 minutes")
NOT_FOUND = "We found no single sign-on for that email address or organisation key. Check it, " \
    "or sign in with your password."
# code -> (HTTP status, what the person is told)
REFUSALS = {
    "invalid": (400, "We could not verify the response from your identity provider, so you "
                     "have not been signed in. If this keeps happening, ask your administrator "
                     "to check the SSO configuration."),
    "unsolicited": (400, "This sign-in was started in another browser or took longer than "
                         "10 minutes. Please start again."),
    "replayed": (400, "This sign-in response has already been used. Please start again."),
    "unknown": (403, "You do not have an account in {org}. Accounts are created by your "
                     "organisation's identity provider (through SCIM), not at sign-in. Ask "
                     "your administrator for access."),
    "deactivated": (403, "Your access to {org} has been deactivated. Ask your administrator "
                         "if you think this is wrong."),
    "misconfigured": (503, "Single sign-on for {org} is not set up correctly. Ask your "
                           "administrator to check the SSO configuration."),
}


def _org_and_config(org_key: str) -> tuple[Organisation, SsoConfig]:
    """Return the organisation and its SSO configuration, or 404."""
    row = db.session.execute(
        select(Organisation, SsoConfig)
        .join(SsoConfig, SsoConfig.organisation_id == Organisation.id)
        .where(Organisation.key == org_key)).first()
    if row is None:
        abort(404)
    return row[0], row[1]


def remember_pending(response: Response, pending: list[PendingRequest]) -> Response:
    """Keep the started sign-in requests in a short-lived signed cookie for the ACS."""
    if not pending:
        response.delete_cookie(PENDING_COOKIE, path=url_for("sso.start"))
        return response
    # Secure in production, and whenever this request came over HTTPS (after ProxyFix).
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure
    # The IdP POSTs to the ACS cross-site: only a SameSite=None (hence Secure) cookie is sent
    # with it. Over plain http (development) browsers refuse that, so fall back to Lax.
    response.set_cookie(PENDING_COOKIE, saml.dump_pending(pending), max_age=saml.PENDING_MAX_AGE,
                        path=url_for("sso.start"), secure=secure, httponly=True,
                        samesite="None" if secure else "Lax")
    return response


def start_sign_in(config: SsoConfig, org: Organisation, **kwargs: object) -> Response:
    """Redirect to the IdP with a new AuthnRequest and remember its id."""
    url, pending = saml.start_login(config, org, **kwargs)  # type: ignore[arg-type]
    earlier = saml.load_pending(request.cookies.get(PENDING_COOKIE))
    return remember_pending(redirect(url), [*earlier, pending])


@bp.route("/", methods=["GET", "POST"])
def start() -> str | Response | tuple[str, int]:
    """Ask for a work email or organisation key and send the person to their IdP."""
    value = (request.form.get("identifier") or "").strip()
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/sso_start.html", value="", next_path=next_path)
    if not value:
        return render_template("auth/sso_start.html", value=value, next_path=next_path,
                               error="Enter your work email or your organisation key."), 400
    # Every lookup counts, found or not: either answer says something about an email.
    budget = (LOOKUPS_PER_ADDRESS, ratelimit.client_address())
    wait = ratelimit.retry_after(budget)
    if wait is not None:
        response = make_response(render_template(
            "auth/sso_start.html", value=value, next_path=next_path,
            error="Too many attempts. Please wait a few minutes and try again."), 429)
        response.headers["Retry-After"] = str(wait)
        return response
    ratelimit.record_failure(budget)
    organisations = sso_signin.organisations_for(value)
    if len(organisations) == 1:
        # Not a redirect: CSP form-action 'self' forbids a form submission's redirect chain
        # from reaching the IdP, so the page follows a plain link instead (app.js, or a click).
        return render_template("auth/sso_start.html", value=value, next_path=next_path,
                               continue_to=organisations[0])
    if not organisations:
        return render_template("auth/sso_start.html", value=value, next_path=next_path,
                               error=NOT_FOUND), 404
    return render_template("auth/sso_start.html", value=value, next_path=next_path,
                           choices=organisations)


@bp.route("/<org_key>")
def login(org_key: str) -> Response:
    """Start an SP-initiated sign-in (this URL is also the organisation's SP Entity ID)."""
    org, config = _org_and_config(org_key)
    try:
        return start_sign_in(config, org, next_path=safe_next(request.args.get("next")))
    except saml.SamlRejected as exc:
        return _refused(org, exc.code)


@bp.route("/<org_key>/acs", methods=["POST"])
@csrf.exempt  # the IdP posts here; the signed SAML response is the proof, not a CSRF token
def acs(org_key: str) -> Response:
    """Receive the IdP's SAML response and sign the member in (or report a test)."""
    org, config = _org_and_config(org_key)
    saml_response = request.form.get("SAMLResponse", "")
    if not saml_response:
        return _refused(org, "invalid")
    pending = saml.load_pending(request.cookies.get(PENDING_COOKIE))
    outcome = sso_signin.process_response(org, config, saml_response, pending)
    response: Response
    if outcome.is_test:
        response = make_response(render_template("auth/sso_test_result.html", org=org,
                                                 config=config, outcome=outcome))
    elif outcome.refusal is not None or outcome.member is None:
        record_regardless(partial(_record_refusal, org.id, outcome))
        response = _refused(org, outcome.refusal.code if outcome.refusal else "invalid")
    else:
        session.clear()
        login_user(outcome.member.account)
        session[ORG_SESSION_KEY] = org.id
        session[SSO_ORG_SESSION_KEY] = org.id
        target = outcome.next_path or (None if outcome.request else
                                       safe_next(request.form.get("RelayState")))
        response = redirect(target or url_for("home.index"))
    if outcome.request is not None:
        remember_pending(response, [p for p in pending if p != outcome.request])
    return response


def _record_refusal(org_id: int, outcome: sso_signin.AcsOutcome, response: Response) -> None:
    sso_signin.record_refusal(org_id, outcome)


def _refused(org: Organisation, code: str) -> Response:
    status, message = REFUSALS.get(code, REFUSALS["invalid"])
    return make_response(render_template("auth/sso_refused.html", org=org, code=code,
                                          message=message.format(org=org.name)), status)
