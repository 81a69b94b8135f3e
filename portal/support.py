"""The vendor's support pages: SCIM rollout state across organisations."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.models import Organisation
from portal.security import require_support_staff
from portal.services import organisations
from portal.services.audit import Actor
from portal.services.errors import NotFound
from portal.services.scim_status import scim_statuses

bp = Blueprint("support", __name__, url_prefix="/support")


def _support_actor() -> Actor:
    """Return the audit actor for the signed-in support person, marked as vendor support."""
    return Actor(label=f"{current_user.email} (Priverion support)", account_id=current_user.id)


def _organisation(key: str) -> Organisation:
    """Return the organisation with this key, or 404."""
    try:
        return organisations.get_by_key(key)
    except NotFound:
        abort(404)


@bp.route("/rollout")
@require_support_staff
def rollout() -> str:
    """List organisations with their SCIM rollout state, token and last provisioning request."""
    orgs = db.session.scalars(
        select(Organisation).order_by(Organisation.name, Organisation.id)).all()
    return render_template("support/rollout.html", organisations=orgs, statuses=scim_statuses(orgs))


@bp.route("/rollout/<key>/release", methods=["POST"])
@require_support_staff
def rollout_release(key: str) -> Response:
    """Release SCIM for one organisation."""
    org = _organisation(key)
    changed = organisations.set_scim_rollout(org, True, _support_actor())
    flash(f"SCIM {'is now released' if changed else 'was already released'} for {org.name}.",
          "success")
    return redirect(url_for("support.rollout"))


@bp.route("/rollout/<key>/withdraw", methods=["GET"])
@require_support_staff
def rollout_withdraw_confirm(key: str) -> str:
    """Ask for confirmation before withdrawing SCIM (the no-JavaScript form of the dialog)."""
    return render_template("support/rollout_withdraw.html", org=_organisation(key))


@bp.route("/rollout/<key>/withdraw", methods=["POST"])
@require_support_staff
def rollout_withdraw(key: str) -> Response:
    """Withdraw SCIM for one organisation."""
    org = _organisation(key)
    changed = organisations.set_scim_rollout(org, False, _support_actor())
    flash(f"SCIM {'is now withdrawn' if changed else 'was already withdrawn'} for {org.name}.",
          "success")
    return redirect(url_for("support.rollout"))
