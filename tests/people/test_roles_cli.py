"""`flask --app app roles map-group / unmap-group`."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Organisation
from portal.permissions import IT_ADMINISTRATOR
from tests.conftest import Factory
from tests.people.conftest import Directory


def test_map_group_gives_every_member_the_role_and_is_audited(
    app: Flask, runner: Any, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    directory.group(acme, "IT Admins", members=[ann])
    result = runner.invoke(args=["roles", "map-group", "--org", acme.key,
                                 "--group", "it admins", "--role", "it administrator"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Members of 'IT Admins' in Acme Corp now hold " \
                                    "'IT Administrator'."
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}
    with app.app_context():
        event = db.session.scalar(select(AuditEvent)
                                  .where(AuditEvent.action == "group.role_mapped"))
        assert event.actor_label == "command line" and event.target_label == "IT Admins"
        assert event.details["role"] == IT_ADMINISTRATOR


def test_map_group_twice_says_it_already_was(
    runner: Any, acme: Organisation, directory: Directory
) -> None:
    directory.group(acme, "IT Admins", roles_=[IT_ADMINISTRATOR])
    result = runner.invoke(args=["roles", "map-group", "--org", acme.key,
                                 "--group", "IT Admins", "--role", IT_ADMINISTRATOR])
    assert result.exit_code == 0 and "already held" in result.stdout


def test_unmap_group_takes_the_role_away(
    runner: Any, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    directory.group(acme, "IT Admins", members=[ann], roles_=[IT_ADMINISTRATOR])
    result = runner.invoke(args=["roles", "unmap-group", "--org", acme.key,
                                 "--group", "IT Admins", "--role", IT_ADMINISTRATOR])
    assert result.exit_code == 0, result.output
    assert directory.roles_of(ann) == set()


def test_unmap_refused_by_the_guard_is_a_one_line_error_and_exit_1(
    runner: Any, factory: Factory, directory: Directory
) -> None:
    org = factory.org("Solo Ltd")
    ann = directory.scim_member(org, "ann@solo.example")
    directory.group(org, "IT Admins", members=[ann], roles_=[IT_ADMINISTRATOR])
    result = runner.invoke(args=["roles", "unmap-group", "--org", org.key,
                                 "--group", "IT Admins", "--role", IT_ADMINISTRATOR])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Refused: this would leave Solo Ltd with nobody")
    assert result.stderr.strip().count("\n") == 0
    assert directory.roles_of(ann) == {IT_ADMINISTRATOR}


def test_unknown_group_role_or_organisation_is_a_one_line_error(
    runner: Any, factory: Factory, acme: Organisation, directory: Directory
) -> None:
    directory.group(factory.org("Globex"), "Globex IT")  # exists, but not in Acme
    for args, needle in (
        (["--org", acme.key, "--group", "Globex IT", "--role", "Member"], "no group called"),
        (["--org", acme.key, "--group", "Nope", "--role", "Member"], "'Nope'"),
        (["--org", "no-such-key", "--group", "IT", "--role", "Member"], "no-such-key"),
    ):
        result = runner.invoke(args=["roles", "map-group", *args])
        assert result.exit_code == 1, args
        assert needle in result.stderr and result.stderr.strip().count("\n") == 0
    directory.group(acme, "IT")
    result = runner.invoke(args=["roles", "map-group", "--org", acme.key, "--group", "IT",
                                 "--role", "Overlord"])
    assert result.exit_code == 1 and "Overlord" in result.stderr
