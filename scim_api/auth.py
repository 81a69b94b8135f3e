"""Bearer authentication in front of every SCIM request, and who the caller is.

The organisation key in the URL and the token must belong together; the token is
looked up by its digest (portal.services.scim_tokens) and never logged or echoed.
"""

from __future__ import annotations

import logging

from flask import Response
from sqlalchemy.exc import SQLAlchemyError

from portal import ratelimit
from portal.extensions import db
from portal.flask_app import current_request, request_globals
from portal.security import record_regardless
from portal.services import scim_notices, scim_tokens
from portal.services.audit import Actor
from portal.services.scim_tokens import TokenOrganisation
from scim_api.errors import scim_error_response

log = logging.getLogger(__name__)

UNAUTHORIZED_DETAIL = (
    "Authentication failed: send the organisation's SCIM token as 'Authorization: Bearer "
    "<token>' to this organisation's SCIM base URL."
)
NOT_RELEASED_DETAIL = (
    "SCIM is not yet available for this organisation. Ask your Priverion contact about the "
    "rollout; nothing was changed."
)
DEFAULT_CLIENT = "identity provider"


def presented_token() -> str | None:
    """Return the bearer token of the request, if it carries one."""
    header = current_request().environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def client_name(user_agent: str | None) -> str | None:
    """Return the User-Agent as printable text (no control characters), or None."""
    text = user_agent or ""
    if not text.isprintable():  # rare: filter character by character only then
        text = "".join(c for c in text if c.isprintable() or c.isspace())
    return " ".join(text.split()) or None


def scim_actor(user_agent: str | None) -> Actor:
    """Return the audit actor for a SCIM client, labelled by its User-Agent."""
    agent = (client_name(user_agent) or DEFAULT_CLIENT)[:200]
    return Actor(label=f"SCIM: {agent}")


def authenticate(org_key: str | None = None) -> Response | None:
    """Refuse the request unless it carries the organisation's valid token (a before_request)."""
    # Read unproxied (portal.flask_app): every SCIM request passes here.
    req = current_request()
    org_key = (req.view_args or {}).get("org_key", org_key) or ""
    token = presented_token()
    found = scim_tokens.verify_token(org_key, token) if token else None
    if found is None:
        return _refuse(org_key, token)
    org = found.organisation
    if not org.scim_released:
        return scim_error_response(403, NOT_RELEASED_DETAIL)
    user_agent = req.environ.get("HTTP_USER_AGENT")
    agent = client_name(user_agent)
    # Recorded even when the request then fails (a 409 still used the token).
    record_regardless(lambda response: scim_tokens.note_use(found, agent))
    ctx_g = request_globals()
    ctx_g.scim_org = org
    ctx_g.scim_actor = scim_actor(user_agent)
    return None


def _refuse(org_key: str, token: str | None = None) -> Response:
    """Answer a failed authentication: 401, or 429 once this client or URL failed too often.

    Only failures count, and they are checked after the token: a valid token is never
    refused because someone else failed from the same address or against the same URL.
    """
    budgets = ((ratelimit.SCIM_AUTH_PER_ADDRESS, ratelimit.client_address()),
               (ratelimit.SCIM_AUTH_PER_ORG, org_key[:64]))
    wait = ratelimit.retry_after(*budgets)
    if wait is not None:
        response = scim_error_response(429, "Too many failed authentication attempts; retry "
                                            "after the time in Retry-After.", "tooMany")
        response.headers["Retry-After"] = str(wait)
        return response
    ratelimit.record_failure(*budgets)
    replaced = scim_tokens.replaced_token(org_key, token) if token else None
    if replaced is None:
        return scim_error_response(401, UNAUTHORIZED_DETAIL)
    # The IdP kept the old token after a rotation (or someone has a leaked one): say so,
    # and warn the admins once. Written after the refusal's rollback, with its record.
    user_agent = current_request().environ.get("HTTP_USER_AGENT")
    address = ratelimit.client_address()

    def warn(response: Response) -> None:
        # Best effort: a warning that cannot be written never turns the 401 into an error
        # nor costs the request its activity record.
        try:
            scim_notices.replaced_token_in_use(replaced, scim_actor(user_agent),
                                               client_name(user_agent), address)
        except SQLAlchemyError:
            db.session.rollback()
            log.warning("could not record a replaced SCIM token's use (organisation %s)",
                        replaced.organisation_id)

    record_regardless(warn)
    return scim_error_response(401, scim_tokens.REPLACED_DETAIL.format(
        when=replaced.replaced_on))


def current_org() -> TokenOrganisation:
    """Return the organisation the authenticated SCIM request acts for (id, key, name)."""
    org: TokenOrganisation = request_globals().scim_org
    return org


def current_actor() -> Actor:
    """Return the audit actor of the authenticated SCIM request."""
    actor: Actor = request_globals().scim_actor
    return actor
