"""What provisioning does to people: adopt, deactivate (sessions end at once), delete, re-link."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Account, AuditEvent, Membership, Organisation
from tests.conftest import PASSWORD, Factory, login
from tests.scim.conftest import Scim


def _org(app: Flask, scim: Scim) -> Organisation:
    with app.app_context():
        org = db.session.get(Organisation, scim.org_id)
        db.session.expunge(org)
        return org


def _count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def _actions(app: Flask, target: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.target_id == target).order_by(AuditEvent.id)))


def test_manual_member_with_that_email_is_adopted_not_duplicated(
    app: Flask, scim: Scim, factory: Factory
) -> None:
    manual = factory.member(_org(app, scim), "max@acme.example")
    accounts, memberships = _count(app, Account), _count(app, Membership)
    created = scim.create_user("MAX@acme.example", displayName="Max Mustermann")
    assert created["id"] == manual.public_id
    assert (_count(app, Account), _count(app, Membership)) == (accounts, memberships)
    adopted = scim.member(created["id"])
    assert adopted.scim_managed is True and adopted.account_id == manual.account_id
    assert adopted.display_name == "Max Mustermann" and adopted.user_name == "MAX@acme.example"
    assert adopted.account.password_hash is not None  # the person's own sign-in is untouched
    assert "member.adopted" in _actions(app, created["id"])
    with app.app_context():
        roles = [r.name for r in db.session.get(Membership, manual.id).roles]
    assert roles == ["Member"]  # manual roles are kept


def test_break_glass_admin_is_never_adopted(app: Flask, scim: Scim, factory: Factory) -> None:
    admin = factory.it_admin(_org(app, scim), "admin@acme.example")
    with app.app_context():
        db.session.get(Membership, admin.id).is_break_glass = True
        db.session.commit()
    response = scim.post("/Users", {"userName": "admin@acme.example", "active": False})
    assert response.status_code == 409
    assert response.get_json(force=True)["scimType"] == "uniqueness"
    stored = scim.member(admin.public_id)
    assert stored.scim_managed is False and stored.active is True


def test_duplicate_user_name_is_409_case_insensitively(app: Flask, scim: Scim) -> None:
    scim.create_user("ann@acme.example")
    response = scim.post("/Users", {"userName": "ANN@ACME.EXAMPLE"})
    assert response.status_code == 409
    assert response.get_json(force=True)["scimType"] == "uniqueness"
    assert _count(app, Membership) == 1
    other = scim.create_user("bob@acme.example")
    renamed = scim.patch(f"/Users/{other['id']}",
                         {"op": "replace", "path": "userName", "value": "Ann@acme.example"})
    assert renamed.status_code == 409
    assert scim.member(other["id"]).user_name == "bob@acme.example"


def test_delete_keeps_the_record_and_recreating_relinks_it(app: Flask, scim: Scim) -> None:
    created = scim.create_user("ann@acme.example", title="Engineer")
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        assert scim.request(method, f"/Users/{created['id']}",
                            {"Operations": [{"op": "remove", "path": "title"}]}
                            if method == "PATCH" else {"userName": "x@acme.example"}
                            ).status_code == 404
    kept = scim.member(created["id"])
    assert kept.active is False and kept.scim_deleted_at is not None
    assert kept.deactivated_at is not None
    again = scim.create_user("Ann@acme.example", title="Lead")
    assert again["id"] == created["id"] and again["active"] is True
    relinked = scim.member(created["id"])
    assert relinked.scim_deleted_at is None and relinked.title == "Lead"
    assert _count(app, Membership) == 1 and _count(app, Account) == 1
    assert _actions(app, created["id"])[-3:] == ["member.deprovisioned", "member.relinked",
                                                 "member.reactivated"]


def test_deactivated_member_is_refused_on_the_very_next_portal_request(
    app: Flask, scim: Scim, factory: Factory, client
) -> None:
    member = factory.member(_org(app, scim), "max@acme.example")
    scim.create_user("max@acme.example")  # adopted; the password sign-in stays
    assert login(client, "max@acme.example").status_code == 302
    assert client.get("/").status_code == 200
    scim.patch(f"/Users/{member.public_id}", {"op": "Replace", "path": "active",
                                               "value": "False"})
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    refused = login(client, "max@acme.example", PASSWORD)
    assert refused.status_code == 403
    assert b"Your access to this organisation has been deactivated" in refused.data
    scim.patch(f"/Users/{member.public_id}", {"op": "replace", "value": {"active": True}})
    assert login(client, "max@acme.example").status_code == 302
    assert client.get("/").status_code == 200


def test_deprovisioned_member_loses_access_at_once(
    app: Flask, scim: Scim, factory: Factory, client
) -> None:
    member = factory.member(_org(app, scim), "max@acme.example")
    scim.create_user("max@acme.example")
    login(client, "max@acme.example")
    assert client.get("/").status_code == 200
    scim.delete(f"/Users/{member.public_id}")
    assert client.get("/").status_code == 302


def test_scim_person_links_to_an_existing_account_of_another_organisation(
    app: Flask, scim: Scim, factory: Factory
) -> None:
    globex = factory.org("Globex")
    elsewhere = factory.member(globex, "ann@acme.example")
    created = scim.create_user("ann@acme.example")
    stored = scim.member(created["id"])
    assert stored.account_id == elsewhere.account_id and stored.id != elsewhere.id
    scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "active", "value": False})
    assert scim.member(elsewhere.public_id).active is True  # the other organisation is untouched


def test_new_scim_accounts_have_no_password(app: Flask, scim: Scim) -> None:
    created = scim.create_user("newbie@acme.example", password="ignored-password-1")
    assert scim.member(created["id"]).account.password_hash is None
    with_id = scim.create_user("jdoe", emails=[{"value": "jdoe@acme.example", "primary": True}])
    assert scim.member(with_id["id"]).account.email == "jdoe@acme.example"
    opaque = scim.create_user("8f14e45f-ceea-467f-a0e6-9c2a9b0d3c11")
    assert scim.member(opaque["id"]).account.email.endswith("@users.scim.invalid")


def test_put_without_active_keeps_the_status_and_put_false_deactivates(scim: Scim) -> None:
    created = scim.create_user("ann@acme.example", active=False)
    scim.put(f"/Users/{created['id']}", {"userName": "ann@acme.example", "title": "X"})
    assert scim.member(created["id"]).active is False
    scim.put(f"/Users/{created['id']}", {"userName": "ann@acme.example", "active": True})
    assert scim.member(created["id"]).active is True


def test_scim_group_membership_grants_mapped_roles_and_nothing_else(
    app: Flask, scim: Scim
) -> None:
    from portal.permissions import IAM_MANAGE, IT_ADMINISTRATOR
    from portal.services import group_roles, roles
    from portal.services.audit import CLI_ACTOR

    user = scim.create_user("ann@acme.example")
    group = scim.create_group("IT Admins")

    def permissions() -> frozenset[str]:
        with app.app_context():
            member = db.session.scalar(select(Membership).where(
                Membership.public_id == user["id"]))
            return roles.effective_permissions(member)

    assert permissions() == frozenset()  # SCIM creates accounts; it grants nothing by itself
    with app.app_context():
        found = group_roles.get_group(scim.org_id, group["id"])
        group_roles.map_group(found, roles.get_role(IT_ADMINISTRATOR), CLI_ACTOR)
        db.session.commit()
    scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members",
                                          "value": [{"value": user["id"]}]})
    assert IAM_MANAGE in permissions()
    scim.patch(f"/Groups/{group['id']}", {"op": "remove",
                                          "path": f'members[value eq "{user["id"]}"]'})
    assert IAM_MANAGE not in permissions()
    scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members",
                                          "value": [{"value": user["id"]}]})
    scim.delete(f"/Groups/{group['id']}")
    assert permissions() == frozenset()
