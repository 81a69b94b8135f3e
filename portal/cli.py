"""Command-line administration: `flask --app app <group> <command>`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation, ScimToken, utcnow
from portal.permissions import MEMBER
from portal.services import (
    accounts,
    group_roles,
    organisations,
    provisioning_activity,
    role_grants,
    roles,
    scim_tokens,
    sso,
)
from portal.services.audit import CLI_ACTOR
from portal.services.errors import ServiceError

org_cli = AppGroup("org", help="Organisations.")
user_cli = AppGroup("user", help="People who can sign in.")
scim_cli = AppGroup("scim", help="SCIM endpoint and token.")
rollout_cli = AppGroup("rollout", help="SCIM rollout state per organisation.")
activity_cli = AppGroup("activity", help="The provisioning activity log.")
sso_cli = AppGroup("sso", help="SAML single sign-on.")
roles_cli = AppGroup("roles", help="Roles and group-to-role mappings.")
access_cli = AppGroup("access", help="Time-boxed access (roles granted until a date).")


def transactional(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run the command in one transaction; a ServiceError is a one-line message and exit 1."""

    @wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            db.session.commit()
            return result
        except ServiceError as exc:
            db.session.rollback()
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapped


@org_cli.command("create")
@click.argument("name")
@click.option("--rollout/--no-rollout", default=True, show_default=True,
              help="Release SCIM for the new organisation.")
@transactional
def org_create(name: str, rollout: bool) -> None:
    """Create an organisation and print its key."""
    org = organisations.create_organisation(name, CLI_ACTOR, released=rollout)
    click.echo(org.key)


@user_cli.command("create")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@click.option("--email", required=True)
@click.option("--password", default=None, help="Leave out for an account without a password.")
@click.option("--role", "role_name", default=MEMBER, show_default=True)
@click.option("--name", "display_name", default="", help="Display name.")
@transactional
def user_create(org_key: str, email: str, password: str | None, role_name: str,
                display_name: str) -> None:
    """Create the account if needed and add it to the organisation with a role."""
    org = organisations.get_by_key(org_key)
    role = roles.get_role(role_name)
    membership = accounts.add_member(org, email, CLI_ACTOR, role=role, password=password,
                                     display_name=display_name)
    click.echo(f"{membership.account.email} is a member of {org.name} as {role.name}.")


@user_cli.command("break-glass")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@click.option("--email", required=True)
@click.option("--off", is_flag=True, help="Remove the break-glass mark instead.")
@transactional
def user_break_glass(org_key: str, email: str, off: bool) -> None:
    """Mark a member as break-glass administrator (password sign-in while SSO is enforced)."""
    org = organisations.get_by_key(org_key)
    member = sso.find_member_by_email(org, email)
    if member is None:
        raise ServiceError(f"{email} is not a member of {org.name}.")
    changed = sso.set_break_glass(member, not off, CLI_ACTOR)
    states = {(True, True): "no longer", (True, False): "now", (False, True): "still not",
              (False, False): "already"}
    state = states[(changed, off)]
    click.echo(f"{member.account.email} is {state} a break-glass administrator of {org.name}.")


@sso_cli.command("check-certs")
@transactional
def sso_check_certs() -> None:
    """Notify IAM administrators of IdP certificates expiring within 30 days (run daily)."""
    with current_app.test_request_context():  # notification links are built with url_for
        sent = sso.notify_expiring_certificates()
    click.echo(f"{sent} notification(s) sent.")


@scim_cli.command("rotate-token")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@transactional
def scim_rotate_token(org_key: str) -> None:
    """Issue a new SCIM token (the previous one stops working) and print it."""
    org = organisations.get_by_key(org_key)
    issued = scim_tokens.issue_token(org, CLI_ACTOR)
    db.session.commit()  # show the token only once it is stored: a failed commit shows none
    click.echo(issued.plaintext)


@scim_cli.command("base-url")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@transactional
def scim_base_url(org_key: str) -> None:
    """Print the organisation's SCIM Base URL."""
    click.echo(organisations.scim_base_url(organisations.get_by_key(org_key)))


@rollout_cli.command("status")
@transactional
def rollout_status() -> None:
    """List organisations with their SCIM rollout and token state."""
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    active = set(db.session.scalars(
        select(ScimToken.organisation_id).where(ScimToken.revoked_at.is_(None))))
    click.echo(f"{'KEY':<24} {'ROLLOUT':<10} {'TOKEN':<6} NAME")
    for org in orgs:
        token = "yes" if org.id in active else "no"
        click.echo(f"{org.key:<24} {org.scim_rollout:<10} {token:<6} {org.name}")


@rollout_cli.command("enable")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@transactional
def rollout_enable(org_key: str) -> None:
    """Release SCIM for an organisation."""
    org = organisations.get_by_key(org_key)
    changed = organisations.set_scim_rollout(org, True, CLI_ACTOR)
    click.echo(f"SCIM {'released' if changed else 'was already released'} for {org.name}.")


@rollout_cli.command("disable")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@transactional
def rollout_disable(org_key: str) -> None:
    """Withdraw SCIM for an organisation."""
    org = organisations.get_by_key(org_key)
    changed = organisations.set_scim_rollout(org, False, CLI_ACTOR)
    click.echo(f"SCIM {'withdrawn' if changed else 'was already withdrawn'} for {org.name}.")


@roles_cli.command("map-group")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@click.option("--group", "group_name", required=True, help="The group's display name.")
@click.option("--role", "role_name", required=True, help="The role's name.")
@transactional
def roles_map_group(org_key: str, group_name: str, role_name: str) -> None:
    """Give every member of a group a role while they are in the group."""
    org = organisations.get_by_key(org_key)
    group = group_roles.find_group(org, group_name)
    role = roles.get_role(role_name)
    changed = group_roles.map_group(group, role, CLI_ACTOR)
    state = "now hold" if changed else "already held"
    click.echo(f"Members of {group.display_name!r} in {org.name} {state} {role.name!r}.")


@roles_cli.command("unmap-group")
@click.option("--org", "org_key", required=True, help="Organisation key.")
@click.option("--group", "group_name", required=True, help="The group's display name.")
@click.option("--role", "role_name", required=True, help="The role's name.")
@transactional
def roles_unmap_group(org_key: str, group_name: str, role_name: str) -> None:
    """Stop giving a group's members a role (refused if nobody could manage IAM after)."""
    org = organisations.get_by_key(org_key)
    group = group_roles.find_group(org, group_name)
    role = roles.get_role(role_name)
    changed = group_roles.unmap_group(group, role, CLI_ACTOR)
    state = "no longer hold" if changed else "did not hold"
    click.echo(f"Members of {group.display_name!r} in {org.name} {state} {role.name!r} "
               "through this group.")


@access_cli.command("expire")
@transactional
def access_expire() -> None:
    """Record every time-boxed grant that has run out as expired (safe to run often)."""
    ended = role_grants.expire_grants()
    click.echo(f"{ended} grant{'' if ended == 1 else 's'} ended.")


@activity_cli.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: ACTIVITY_RETENTION_DAYS, 90).")
@transactional
def activity_prune(days: int | None) -> None:
    """Delete provisioning activity records older than the retention period."""
    keep = days or current_app.config["ACTIVITY_RETENTION_DAYS"]
    removed = provisioning_activity.prune(utcnow() - timedelta(days=keep))
    click.echo(f"Removed {removed} provisioning activity record{'s' if removed != 1 else ''} "
               f"older than {keep} days.")


@click.command("demo")
@click.option("--password", default="demo-password-1", show_default=True)
@click.option("--url", "base_url", default="http://127.0.0.1:5000", show_default=True,
              help="Where the portal will be served (for the sign-in hint).")
@with_appcontext
@transactional
def demo(password: str, base_url: str) -> None:
    """Seed a demo (idempotent): Acme Corp, Globex and three people."""
    from portal.services.demo import seed_demo

    seeded = seed_demo(password)
    click.echo(seeded.describe(password, base_url))


def register(app: Flask) -> None:
    """Add the command groups to the app's CLI."""
    for group in (org_cli, user_cli, scim_cli, rollout_cli, sso_cli, roles_cli, access_cli,
                  activity_cli):
        app.cli.add_command(group)
    app.cli.add_command(demo)
