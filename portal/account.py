"""The signed-in person's own account: setting or changing their password."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from portal import ratelimit
from portal.forms import PasswordForm
from portal.models import Account
from portal.services import accounts
from portal.services.errors import ServiceError

bp = Blueprint("account", __name__, url_prefix="/account")

TOO_MANY = "Too many wrong passwords. Please wait a few minutes and try again."


def _render(form: PasswordForm, status: int = 200) -> Response:
    """Render the password page with the form's messages."""
    return make_response(render_template(
        "account/password.html", form=form, has_password=bool(current_user.password_hash),
        min_length=accounts.MIN_PASSWORD_LENGTH), status)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password() -> Response:
    """Show the password form; set a first password or change it (with the current one)."""
    form = PasswordForm()
    if not form.validate_on_submit():
        return _render(form, 400 if request.method == "POST" else 200)
    account: Account = current_user._get_current_object()
    # The sign-in's budgets: a wrong current password is one more failed sign-in for this
    # account and address, so the form gives no extra guesses.
    budgets = ((ratelimit.LOGIN_PER_ADDRESS, ratelimit.client_address()),
               (ratelimit.LOGIN_PER_ACCOUNT, account.email))
    if account.password_hash:
        wait = ratelimit.retry_after(*budgets)
        if wait is not None:
            form.current_password.errors = [TOO_MANY]
            response = _render(form, 429)
            response.headers["Retry-After"] = str(wait)
            return response
    try:
        had_password = accounts.change_own_password(account, form.new_password.data or "",
                                                    form.current_password.data)
    except accounts.WrongPassword as exc:
        ratelimit.record_failure(*budgets)
        form.current_password.errors = [str(exc)]
        return _render(form, 400)
    except ServiceError as exc:
        form.new_password.errors = [str(exc)]
        return _render(form, 400)
    login_user(account)  # this session carries the new session token; all others have ended
    done = "Your password was changed." if had_password else "Your password is set."
    flash(f"{done} Every other session of yours has been signed out.", "success")
    return redirect(url_for("account.change_password"))
