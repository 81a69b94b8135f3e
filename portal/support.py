"""The vendor's support pages: SCIM rollout state across organisations."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation
from portal.security import require_support_staff

bp = Blueprint("support", __name__, url_prefix="/support")


@bp.route("/rollout")
@require_support_staff
def rollout() -> str:
    """List organisations with their SCIM rollout state."""
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    return render_template("support/rollout.html", organisations=orgs)
