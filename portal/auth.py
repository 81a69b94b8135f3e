"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from portal import ratelimit
from portal.forms import LoginForm
from portal.security import ORG_SESSION_KEY
from portal.services import accounts

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = "The email or password is not correct."


def safe_next(target: str | None) -> str | None:
    """Return the target if it is a same-site path, else None (no open redirects)."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in form and sign the person in."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("home.index"))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        budgets = ((ratelimit.LOGIN_PER_ADDRESS, ratelimit.client_address()),
                   (ratelimit.LOGIN_PER_ACCOUNT, email))
        wait = ratelimit.retry_after(*budgets)
        if wait is not None:
            response = make_response(render_template(
                "auth/login.html", form=form,
                error="Too many failed sign-in attempts. Please wait a few minutes and try "
                      "again."), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        result = accounts.authenticate(email, form.password.data or "")
        if result.account is None:
            ratelimit.record_failure(*budgets)
            error, status = GENERIC_FAILURE, 401
        elif result.sso_required and not result.usable_memberships \
                and not result.account.is_support_staff:
            names = ", ".join(org.name for org in result.sso_required)
            error, status = f"{names} requires single sign-on. Use “Sign in with SSO” " \
                "below.", 403
        elif result.deactivated_everywhere and not result.account.is_support_staff:
            error, status = "Your access to this organisation has been deactivated. " \
                "Ask your administrator if you think this is wrong.", 403
        else:
            session.clear()
            login_user(result.account)
            if result.usable_memberships:
                session[ORG_SESSION_KEY] = result.usable_memberships[0].organisation_id
            return redirect(safe_next(request.args.get("next")) or url_for("home.index"))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out and forget the session."""
    logout_user()
    session.clear()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))
