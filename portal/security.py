"""Who is asking and what they may do; the request's one transaction; security headers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.wrappers import Request
from flask_login import current_user, logout_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from portal import write_queue
from portal.extensions import db, login_manager
from portal.flask_app import current_request, request_globals
from portal.models import Account, Membership
from portal.navigation import IT_SETTINGS_NAV
from portal.permissions import IT_SETTINGS_PERMISSIONS
from portal.prepared import remembered_connection, session_connection
from portal.services import accounts, roles

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
ORG_SESSION_KEY = "org_id"
# Set when the session was signed in through an organisation's SSO (that organisation's id).
SSO_ORG_SESSION_KEY = "sso_org_id"


@login_manager.user_loader
def load_account(session_id: str) -> Account | None:
    """Load the signed-in account; a changed session token ends old sessions."""
    account_id, _, token = session_id.partition(":")
    if not account_id.isdigit():
        return None
    account = db.session.get(Account, int(account_id))
    if account is None or account.session_token != token:
        return None
    return account


login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


def _load_membership() -> Response | None:
    """Put the current organisation membership and permissions on `g` for portal requests."""
    ctx_g = request_globals()
    ctx_g.membership = None
    ctx_g.permissions = frozenset()
    ctx_g.memberships = []
    req = current_request()
    # SCIM requests skip this hook (`portal_only_hooks`); an unknown /scim/ URL has no
    # blueprint and gets here, while an unknown portal URL loads the shell for its 404 page.
    if req.endpoint == "static" or (req.endpoint is None and req.path.startswith("/scim/")):
        return None
    if not current_user.is_authenticated:
        return None
    usable = accounts.usable_memberships(current_user,
                                         sso_org_id=session.get(SSO_ORG_SESSION_KEY))
    g.memberships = usable
    wanted = session.get(ORG_SESSION_KEY)
    current = next((m for m in usable if m.organisation_id == wanted), None)
    if current is None and wanted is not None:
        # The membership this session was using has been deactivated or removed (or its
        # organisation now enforces SSO): the session stops working there on this request.
        session.pop(ORG_SESSION_KEY, None)
        if any(o.id == wanted for o in accounts.sso_required_organisations(current_user)):
            flash("This organisation now requires single sign-on. Sign in with SSO to "
                  "continue.", "error")
        else:
            flash("Your access to this organisation has been deactivated.", "error")
        if not usable and not current_user.is_support_staff:
            logout_user()
            return redirect(url_for("auth.login"))  # type: ignore[return-value]
    if current is None and usable:
        current = usable[0]
        session[ORG_SESSION_KEY] = current.organisation_id
    g.membership = current
    if current is not None:
        g.permissions = roles.effective_permissions(current)
    return None


def current_membership() -> Membership:
    """Return the signed-in person's membership in the current organisation (or 403)."""
    membership: Membership | None = g.get("membership")
    if membership is None:
        abort(403)
    return membership


def require_permission(*permissions: str) -> Callable[[F], F]:
    """Refuse with a full 403 unless the current member holds the permission (one of them)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not g.get("permissions", frozenset()).intersection(permissions):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def require_support_staff(view: F) -> F:
    """Refuse with a 403 unless the signed-in account is vendor support staff."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_support_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def record_regardless(write: Callable[[Response], None], *, last: bool = False) -> None:
    """Run `write(response)` at the end of the request and commit it even if the request failed.

    A failed request's own changes are rolled back first, so a record written
    this way (e.g. the provisioning activity log) never carries a half-done change.
    Writes run in the order registered; `last=True` ones after all the others.
    """
    key = "regardless_writes_last" if last else "regardless_writes"
    request_globals().setdefault(key, []).append(write)


def _finish_transaction(response: Response) -> Response:
    """Commit the request's one transaction if it succeeded, roll it back otherwise."""
    ctx_g = request_globals()
    writes: list[Callable[[Response], None]] = [*ctx_g.get("regardless_writes", ()),
                                                *ctx_g.get("regardless_writes_last", ())]
    try:
        if response.status_code >= 400:
            db.session.rollback()
        for write in writes:
            write(response)
        if (response.status_code < 400 or writes) and not _nothing_to_commit():
            db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        from portal.errors import render_error

        # A constraint that only the commit checks is a conflict with another change; any
        # other failure here (a dropped connection, a closed file, a full disk) is ours and
        # worth retrying: 503 with Retry-After, never a 409 that blames the request.
        response = render_error(409 if isinstance(exc, IntegrityError | StaleDataError) else 503)
        _write_after_failed_commit(writes, response)
    finally:
        write_queue.end_turn()  # the transaction is over: the next writer may start
    return response


def _nothing_to_commit() -> bool:
    """Return whether the transaction has nothing to commit: no pending change, and no write
    begun on SQLite (a read's activity record is committed on its own, write_queue).

    Then the request's Session is just closed at teardown, as it would be after a commit:
    the commit itself (flush, events, expiring what was loaded) costs ~15 µs of a ~450 µs
    lookup.
    """
    session = db.session()
    if session.new or session.dirty or session.deleted:
        return False
    if session.get_transaction() is None:
        return True
    connection = remembered_connection(session)  # a SCIM request's, without asking again
    if connection is None:
        if session.get_bind().dialect.name != "sqlite":
            return False  # never check a connection out just to learn it needs a commit
        connection = session_connection(session)
    return write_queue.sqlite_idle(connection)


def _write_after_failed_commit(writes: list[Callable[[Response], None]],
                               response: Response) -> None:
    """Write the must-keep records once more, describing the error the caller now gets."""
    if not writes:
        return
    try:
        for write in writes:
            write(response)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not write a record after a failed commit on %s", request.path)


def serialise_writes() -> None:
    """Make the request's transaction a writer from its first statement, so writers queue.

    Python's sqlite3 begins a transaction only at the first INSERT/UPDATE/DELETE, so what a
    request reads before it may be changed by another writer in between (two PUTs of one
    User would each keep the e-mail rows the other wrote). BEGIN IMMEDIATE takes SQLite's
    write lock first (waiting up to busy_timeout), so the request's reads and writes form
    one serial transaction. PostgreSQL needs no such thing: writers lock the rows they
    change (SELECT ... FOR UPDATE).
    """
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        # Queue fairly behind the other writers first (portal.write_queue), then lock.
        write_queue.wait_for_turn(connection.engine.url.database,
                                  current_app.config["SQLITE_BUSY_TIMEOUT_SECONDS"])
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _security_headers(response: Response) -> Response:
    """Add the headers every response should carry."""
    # Set, not setdefault: no view sets these, and werkzeug's membership test raises and
    # catches a KeyError per absent header (this runs on every SCIM request).
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    req = current_request()
    if req.blueprint == "scim":
        return response  # JSON for IdPs: no frames, scripts or HTMX fragments
    headers["Content-Security-Policy"] = CSP
    headers["X-Frame-Options"] = "DENY"
    if req.environ.get("HTTP_HX_REQUEST") is not None or response.vary:
        response.vary.add("HX-Request")
    return response


def query_has_nul() -> bool:
    """Return whether the query string carries a NUL character (%00).

    Read from the raw bytes: a decoded name or value holds NUL only where the query has
    `%00` or a NUL byte, and decoding every parameter to look costs more than the check.
    """
    raw = request.query_string
    return b"%00" in raw or b"\x00" in raw


def portal_only_hooks(app: Flask) -> list[Callable[..., Any]]:
    """Return the app-wide hooks that concern only the portal: CSRF, the remember-me cookie,
    the membership loader and the form NUL check (SCIM requests skip them)."""
    csrf_checks = [hook for hook in app.before_request_funcs.get(None, [])
                   if getattr(hook, "__module__", "") == "flask_wtf.csrf"]
    return [*csrf_checks, login_manager._update_remember_cookie, _refuse_nul_characters,
            _load_membership]


def _refuse_nul_characters() -> None:
    """Refuse a NUL character in a portal URL or form with 400: PostgreSQL cannot take one.

    Not run for the SCIM blueprint (`portal_only_hooks`), which refuses it in its own format.
    """
    form = (text for pair in request.form.items(multi=True) for text in pair)
    if "\x00" in request.path or query_has_nul() or any("\x00" in text for text in form):
        abort(400)


class PortalSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions for the portal; none for the SCIM API, which uses bearer tokens.

    Opening a session costs a signing serializer per request; SCIM requests never
    carry a session cookie, and writing to their (null) session raises.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/scim/"):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """Mark the cookie Secure in production and whenever the request came over HTTPS."""
        return bool(super().get_cookie_secure(app)) or (has_request_context() and request.is_secure)


def register(app: Flask) -> None:
    """Install the request hooks."""
    app.session_interface = PortalSessionInterface()
    app.before_request(_refuse_nul_characters)
    app.before_request(_load_membership)
    # after_request hooks run in reverse order: commit first, then add headers.
    app.after_request(_security_headers)
    app.after_request(_finish_transaction)

    @app.teardown_request
    def _rollback_on_exception(exc: BaseException | None) -> None:
        if exc is not None:
            db.session.rollback()
        write_queue.end_turn()

    @app.context_processor
    def _shell_context() -> dict[str, Any]:
        permissions = g.get("permissions", frozenset())
        return {
            "current_membership": g.get("membership"),
            "memberships": g.get("memberships", []),
            "permissions": permissions,
            "it_settings_nav": IT_SETTINGS_NAV,
            "opens_it_settings": bool(IT_SETTINGS_PERMISSIONS & permissions),
        }


def fetch_membership(public_id: str) -> Membership:
    """Return a member of the current organisation by public id, or 404."""
    member = db.session.scalar(
        select(Membership).where(
            Membership.public_id == public_id,
            Membership.organisation_id == current_membership().organisation_id,
        )
    )
    if member is None:
        abort(404)
    return member
