"""People (User Management) and Groups: who is in the organisation and what they may do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, make_response, render_template, request
from flask_login import current_user
from markupsafe import Markup, escape

from portal.permissions import PEOPLE_MANAGE, PEOPLE_VIEW
from portal.security import current_membership
from portal.services import role_grants
from portal.services.audit import Actor

bp = Blueprint("people", __name__, url_prefix="/people")
groups_bp = Blueprint("groups", __name__, url_prefix="/groups")


def org_id() -> int:
    """Return the id of the organisation the signed-in person is working in (or 403)."""
    return current_membership().organisation_id


def actor() -> Actor:
    """Return the signed-in person as the actor of an audited change."""
    return Actor.of(current_user)


def page_size(name: str = "PEOPLE_PAGE_SIZE", default: int = 50) -> int:
    """Return the configured page size for a list."""
    return int(current_app.config.get(name, default))


def wants_fragment() -> bool:
    """Return whether HTMX asked for the fragment (a history restore needs the whole page)."""
    return (request.headers.get("HX-Request") is not None
            and request.headers.get("HX-History-Restore-Request") is None)


def render(page_template: str, fragment_template: str, status: int = 200,
           **context: Any) -> Response:
    """Render the page, or just its fragment for HTMX; the same URL serves both."""
    html = render_template(fragment_template if wants_fragment() else page_template, **context)
    response = make_response(html, status)
    if status >= 400 and wants_fragment():
        # A refused change re-renders its section with the reason; app.js swaps a 4xx in
        # when the server marks it like this.
        response.headers["HX-Reswap"] = "outerHTML"
    response.vary.add("HX-Request")
    return response


@bp.app_template_filter("expires_in")
def _expires_in(until: datetime) -> str:
    """Say how long a time-boxed grant has left ("expires in 5 h")."""
    return role_grants.expires_in_words(until)


@bp.app_template_filter("breakable")
def _breakable(text: str | None) -> Markup:
    """Let an e-mail address wrap after its @ and before a dot (<wbr>), nowhere else; other
    text is left to wrap at its spaces and hyphens."""
    safe = str(escape(text or ""))
    if "@" not in safe:
        return Markup(safe)
    return Markup(safe.replace("@", "@<wbr>").replace(".", "<wbr>."))


@bp.app_context_processor
def _navigation() -> dict[str, bool]:
    permissions = g.get("permissions", frozenset())
    return {"can_view_people": PEOPLE_VIEW in permissions,
            "can_manage_people": PEOPLE_MANAGE in permissions}


from portal.people import grants, groups, members  # noqa: E402,F401  (routes register on the blueprints)
