"""One place decides how an error looks: a SCIM Error body, an HTMX fragment or a page."""

from __future__ import annotations

import logging

from flask import Flask, Response, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from portal.flask_app import current_request

log = logging.getLogger(__name__)

TITLES = {
    400: ("Bad request", "The request could not be understood. Nothing was changed."),
    403: ("403 Forbidden", "You do not have permission to open this page."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    409: ("Conflict", "The change collided with another one. Nothing was changed; please try again."),
    413: ("Too large", "The request was larger than we accept."),
    429: ("Too many requests", "Please wait a moment and try again."),
    500: ("Something went wrong", "An unexpected error happened on our side. Nothing was changed."),
    503: ("Temporarily unavailable", "The service is briefly unavailable. Please try again in a minute."),
}


_BARE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title} · Priverion DPMS</title></head><body>
<main><h1>{title}</h1><p>{message}</p></main></body></html>"""


def is_scim_request() -> bool:
    """Return whether the request is addressed to the SCIM API."""
    return current_request().path.startswith("/scim/")


def render_error(status: int, message: str | None = None) -> Response:
    """Return the error in the representation the caller expects."""
    if is_scim_request():
        from scim_api.errors import scim_error_response

        return scim_error_response(status, message or TITLES.get(status, ("", ""))[1])
    title, default_message = TITLES.get(status, ("Error", "Something went wrong."))
    from portal.navigation import nav_key_for, required_access

    nav_key = nav_key_for(request.endpoint)
    context = {"status": status, "title": title, "message": message or default_message,
               "nav_key": nav_key, "in_settings": nav_key is not None or
               request.endpoint == "settings.index",
               "needs": required_access(request.endpoint, request.method)}
    htmx = bool(request.headers.get("HX-Request"))
    try:
        body = render_template("errors/_error.html" if htmx else "errors/error.html", **context)
    except Exception:  # the shell itself needs the database; when that is down, stay plain
        from portal.extensions import db

        db.session.rollback()
        body = _BARE_PAGE.format(title=escape(title), message=escape(context["message"]))
    response = make_response(body, status)
    if htmx:
        # Let HTMX swap the error into the page instead of silently ignoring it.
        response.headers["HX-Retarget"] = "#flash-area"
        response.headers["HX-Reswap"] = "innerHTML"
    response.vary.add("HX-Request")
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


def register(app: Flask) -> None:
    """Install the error handlers."""

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Response:
        return render_error(400, "Your form expired or was sent from another site. Nothing was "
                                 "changed; reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return render_error(exc.code or 500, None if exc.code in TITLES else exc.description)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        from sqlalchemy.exc import OperationalError

        from portal.extensions import db

        db.session.rollback()
        if isinstance(exc, OperationalError):
            log.warning("database unavailable: %s", type(exc).__name__)
            return render_error(503)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500)
