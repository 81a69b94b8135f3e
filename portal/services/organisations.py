"""Creating organisations and changing their SCIM rollout state."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import select
from werkzeug.sansio.utils import get_current_url

from portal.extensions import db
from portal.flask_app import current_request
from portal.models import ROLLOUT_PENDING, ROLLOUT_RELEASED, Organisation, utcnow
from portal.services import audit
from portal.services.errors import NotFound, ServiceError
from portal.services.roles import ensure_builtin_roles

if TYPE_CHECKING:
    from portal.services.scim_tokens import TokenOrganisation


def create_organisation(name: str, actor: audit.Actor, *, released: bool = True) -> Organisation:
    """Create an organisation with a new random key."""
    name = name.strip()
    if not name:
        raise ServiceError("An organisation needs a name.")
    ensure_builtin_roles()
    org = Organisation(name=name, scim_rollout=ROLLOUT_RELEASED if released else ROLLOUT_PENDING)
    db.session.add(org)
    db.session.flush()
    audit.record(actor, "organisation.created", org, target_type="organisation",
                 target_id=org.key, target_label=org.name)
    return org


def get_by_key(key: str) -> Organisation:
    """Return the organisation with this key or raise NotFound."""
    org = db.session.scalar(select(Organisation).where(Organisation.key == key))
    if org is None:
        raise NotFound(f"No organisation has the key {key!r}.")
    return org


def set_scim_rollout(org: Organisation, released: bool, actor: audit.Actor) -> bool:
    """Release or withdraw SCIM for an organisation; return whether anything changed."""
    state = ROLLOUT_RELEASED if released else ROLLOUT_PENDING
    if org.scim_rollout == state:
        return False
    org.scim_rollout = state
    audit.record(actor, "scim.rollout_released" if released else "scim.rollout_withdrawn", org,
                 target_type="organisation", target_id=org.key, target_label=org.name)
    if released:
        from portal.services import scim_notices

        scim_notices.scim_released(org, utcnow().isoformat())
    return True


DEFAULT_EXTERNAL_URL = "http://127.0.0.1:5000"


def public_base_url() -> str:
    """Return where the portal is reached from outside: EXTERNAL_URL, else this request's host."""
    from flask import current_app, has_request_context

    base: str | None = current_app.config.get("EXTERNAL_URL")
    if base:
        return base
    if not has_request_context():
        return DEFAULT_EXTERNAL_URL
    req = current_request()
    return _host_url(req.scheme, req.host)


def scim_base_url(org: Organisation | TokenOrganisation) -> str:
    """Return the organisation's SCIM Base URL."""
    return f"{public_base_url()}/scim/v2/{org.key}"


@lru_cache(maxsize=64)  # bounded: the Host header is the client's to choose
def _host_url(scheme: str, host: str) -> str:
    """Return scheme://host as werkzeug's request.host_url spells it (an IDN host decoded).

    Every SCIM response carries locations under this base; werkzeug rebuilds it through
    its IRI conversion on each request (~30 µs), the same text for the same two values.
    """
    return get_current_url(scheme, host).rstrip("/")
