"""An unfiltered User list's totalResults comes from scim_user_tally, kept by triggers.

Whatever changes who is a live SCIM User — the API, the portal's own writes, raw SQL,
an organisation's deletion, a migration of existing rows — the tally must equal the rows.
"""

from __future__ import annotations

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import delete, func, select, text, update

from portal.extensions import db
from portal.models import Membership, Organisation, ScimUserTally
from tests.scim.conftest import Scim, make_scim
from tests.test_migrations import _reset

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _rows(org_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.organisation_id == org_id, Membership.scim_managed.is_(True),
        Membership.scim_deleted_at.is_(None))) or 0


def _tally(org_id: int) -> int:
    return db.session.scalar(select(func.coalesce(func.sum(ScimUserTally.live), 0)).where(
        ScimUserTally.organisation_id == org_id)) or 0


def _org_id(app: Flask, scim: Scim) -> int:
    with app.app_context():
        return db.session.scalar(select(Membership.organisation_id).where(
            Membership.public_id == scim.create_user("probe@acme.example")["id"])) or 0


def _listed_total(scim: Scim) -> int:
    body = scim.get("/Users?count=1000").get_json(force=True)
    assert body["totalResults"] == len(body["Resources"])
    return int(body["totalResults"])


def test_the_list_total_follows_every_scim_change_and_stays_per_organisation(
        app: Flask, scim: Scim, other_scim: Scim) -> None:
    org_id = _org_id(app, scim)
    ids = [scim.create_user(f"user{i}@acme.example")["id"] for i in range(20)]
    other_scim.create_user("someone@globex.example")
    assert _listed_total(scim) == 21
    assert scim.delete(f"/Users/{ids[0]}").status_code == 204
    assert scim.delete(f"/Users/{ids[1]}").status_code == 204
    assert scim.delete(f"/Users/{ids[1]}").status_code == 404  # gone once, counted once
    scim.patch(f"/Users/{ids[2]}", {"op": "replace", "value": {"active": False}})
    scim.create_user("user0@acme.example")  # the deleted userName comes back
    assert _listed_total(scim) == 20
    assert _listed_total(other_scim) == 1
    with app.app_context():
        assert _tally(org_id) == _rows(org_id) == 20
        assert db.session.scalar(select(func.count()).select_from(ScimUserTally).where(
            ScimUserTally.organisation_id == org_id, ScimUserTally.slot >= 16)) == 0


def test_raw_writes_that_bypass_the_app_keep_the_tally_exact(app: Flask, scim: Scim) -> None:
    org_id = _org_id(app, scim)
    for i in range(9):
        scim.create_user(f"user{i}@acme.example")
    other = make_scim(app, "Initech")
    other_id = _org_id(app, other)
    with app.app_context():
        live = Membership.scim_deleted_at.is_(None)
        first, second, third = db.session.scalars(select(Membership.id).where(
            Membership.organisation_id == org_id).order_by(Membership.id).limit(3)).all()
        db.session.execute(update(Membership).where(Membership.id == first)
                           .values(scim_managed=False))  # out of SCIM's hands
        db.session.execute(update(Membership).where(Membership.id == second)
                           .values(scim_deleted_at=func.now()))  # soft-deleted
        db.session.execute(update(Membership).where(Membership.id == third)
                           .values(organisation_id=other_id))  # moved to another tenant
        db.session.execute(update(Membership).where(Membership.id == first)
                           .values(display_name="Renamed"))  # no change of liveness
        db.session.execute(delete(Membership).where(
            Membership.organisation_id == org_id, live, Membership.scim_managed.is_(True),
            Membership.user_name == "user8@acme.example"))
        db.session.commit()
        assert _tally(org_id) == _rows(org_id) == 6
        assert _tally(other_id) == _rows(other_id) == 2
    assert _listed_total(scim) == 6
    assert _listed_total(other) == 2


def test_deleting_an_organisation_takes_its_tally_with_it(app: Flask, scim: Scim) -> None:
    org_id = _org_id(app, scim)
    scim.create_user("ann@acme.example")
    with app.app_context():
        db.session.delete(db.session.get(Organisation, org_id))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(ScimUserTally)) == 0


def test_the_migration_counts_the_users_that_already_exist(app: Flask) -> None:
    _reset(app)
    try:
        with app.app_context():
            upgrade(revision="c3d8f1a2b9e4")  # the revision before scim_user_tally
        scim = make_scim(app)
        org_id = _org_id(app, scim)
        ids = [scim.create_user(f"user{i}@acme.example")["id"] for i in range(40)]
        scim.delete(f"/Users/{ids[0]}")
        with app.app_context():
            upgrade()
            assert _rows(org_id) == 40
            assert _tally(org_id) == 40
            assert db.session.execute(text(
                "SELECT count(*) FROM scim_user_tally WHERE organisation_id = :o"),
                {"o": org_id}).scalar() == 16  # every slot of 41 ids
        scim.create_user("late@acme.example")  # and the triggers run after it
        assert _listed_total(scim) == 41
    finally:
        _reset(app, restore=True)
