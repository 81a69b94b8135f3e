"""The command line later checks script against: org, user, demo, scim, rollout."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Account, AuditEvent, Membership, Organisation, ScimToken
from portal.services import scim_tokens


def test_org_create_prints_only_the_key(app: Flask, runner) -> None:
    result = runner.invoke(args=["org", "create", "Acme Corp"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", key)
    with app.app_context():
        org = db.session.scalar(select(Organisation).where(Organisation.key == key))
        assert org is not None and org.name == "Acme Corp"


def test_user_create_adds_account_and_membership_with_role(app: Flask, runner) -> None:
    key = runner.invoke(args=["org", "create", "Acme Corp"]).stdout.strip()
    result = runner.invoke(args=["user", "create", "--org", key, "--email", "Ann@Acme.example",
                                 "--password", "long-password-1", "--role", "IT Administrator"])
    assert result.exit_code == 0, result.output
    other = runner.invoke(args=["org", "create", "Globex"]).stdout.strip()
    runner.invoke(args=["user", "create", "--org", other, "--email", "ann@acme.example"])
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == "ann@acme.example"))
        assert account is not None
        memberships = db.session.scalars(
            select(Membership).where(Membership.account_id == account.id)).all()
        assert len(memberships) == 2
        roles_by_org = {m.organisation.name: [r.name for r in m.roles] for m in memberships}
        assert roles_by_org == {"Acme Corp": ["IT Administrator"], "Globex": ["Member"]}


def test_unknown_org_key_is_one_line_error_and_exit_1(runner) -> None:
    for args in (["user", "create", "--org", "nope", "--email", "a@b.example"],
                 ["scim", "rotate-token", "--org", "nope"],
                 ["scim", "base-url", "--org", "nope"],
                 ["rollout", "enable", "--org", "nope"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1
        assert result.stderr.strip().count("\n") == 0
        assert "nope" in result.stderr


def test_unknown_role_is_refused(runner) -> None:
    key = runner.invoke(args=["org", "create", "Acme Corp"]).stdout.strip()
    result = runner.invoke(args=["user", "create", "--org", key, "--email", "a@b.example",
                                 "--role", "Overlord"])
    assert result.exit_code == 1 and "Overlord" in result.stderr


def test_demo_is_idempotent(app: Flask, runner) -> None:
    first = runner.invoke(args=["demo", "--password", "demo-pass-123"])
    second = runner.invoke(args=["demo", "--password", "demo-pass-123"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "it-admin@acme.example" in first.stdout
    assert "Sign in at http://127.0.0.1:5000/login" in first.stdout
    elsewhere = runner.invoke(args=["demo", "--password", "demo-pass-123",
                                    "--url", "http://127.0.0.1:5077/"])
    assert "Sign in at http://127.0.0.1:5077/login with:" in elsewhere.stdout  # make run PORT=
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Organisation)) == 2
        assert db.session.scalar(select(func.count()).select_from(Account)) == 3
        admin = db.session.scalar(select(Account).where(Account.email == "it-admin@acme.example"))
        assert len(admin.memberships) == 2
        support = db.session.scalar(select(Account).where(Account.email == "support@vendor.example"))
        assert support.is_support_staff


def test_rotate_token_prints_a_new_token_and_revokes_the_old(app: Flask, runner) -> None:
    key = runner.invoke(args=["org", "create", "Acme Corp"]).stdout.strip()
    first = runner.invoke(args=["scim", "rotate-token", "--org", key]).stdout.strip()
    second = runner.invoke(args=["scim", "rotate-token", "--org", key]).stdout.strip()
    assert first.startswith("dpms_scim_") and second.startswith("dpms_scim_") and first != second
    with app.app_context():
        assert scim_tokens.verify_token(key, first) is None
        assert scim_tokens.verify_token(key, second) is not None
        assert db.session.scalar(select(func.count()).select_from(ScimToken)) == 2
        stored = " ".join(t.digest + t.hint for t in db.session.scalars(select(ScimToken)))
        assert first not in stored and second not in stored
        details = " ".join(str(e.details) + (e.target_label or "")
                           for e in db.session.scalars(select(AuditEvent)))
        assert second not in details


def test_base_url_uses_external_url(runner) -> None:
    key = runner.invoke(args=["org", "create", "Acme Corp"]).stdout.strip()
    result = runner.invoke(args=["scim", "base-url", "--org", key])
    assert result.stdout.strip() == f"https://dpms.test/scim/v2/{key}"


def test_rollout_status_enable_disable(app: Flask, runner) -> None:
    key = runner.invoke(args=["org", "create", "Acme Corp"]).stdout.strip()
    assert runner.invoke(args=["rollout", "disable", "--org", key]).exit_code == 0
    status = runner.invoke(args=["rollout", "status"]).stdout
    assert re.search(rf"{key}\s+pending\s+no\s+Acme Corp", status)
    runner.invoke(args=["rollout", "enable", "--org", key])
    with app.app_context():
        org = db.session.scalar(select(Organisation).where(Organisation.key == key))
        assert org.scim_released
        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert {"scim.rollout_withdrawn", "scim.rollout_released"} <= actions
