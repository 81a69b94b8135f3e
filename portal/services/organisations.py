"""Creating organisations and changing their SCIM rollout state."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import ROLLOUT_PENDING, ROLLOUT_RELEASED, Organisation, utcnow
from portal.services import audit
from portal.services.errors import NotFound, ServiceError
from portal.services.roles import ensure_builtin_roles


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


def scim_base_url(org: Organisation) -> str:
    """Return the organisation's SCIM Base URL: EXTERNAL_URL, else this request's host."""
    from flask import current_app, has_request_context, request

    base = current_app.config.get("EXTERNAL_URL")
    if not base:
        base = request.host_url.rstrip("/") if has_request_context() else DEFAULT_EXTERNAL_URL
    return f"{base}/scim/v2/{org.key}"
