"""A fresh database for the run, and N users loaded in bulk into the tables the SCIM API reads.

Users go in with SQLAlchemy Core inserts (thousands per statement) rather than
one SCIM request each: the benchmark measures the API, not the load. The
organisation and its SCIM token go through the services, as in production.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from bench.config import Settings

BATCH = 5_000
SPARES = 100  # users outside every group: PATCH adds and removes them
BIG_GROUP, SMALL_GROUP = "Bench Big", "Bench Small"
SMALL_GROUP_SIZE = 10


def user_name(i: int) -> str:
    """Return the userName of the i-th loaded user (the same on every server)."""
    return f"user{i:06d}@bench.example"


@dataclass
class AppData:
    """What the benchmark loaded into our app's database."""

    database_url: str
    backend: str
    org_key: str = ""
    token: str = ""
    users: int = 0
    spares: list[str] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


@contextmanager
def fresh_database(settings: Settings) -> Iterator[AppData]:
    """Yield an empty database for this run (SQLite in a temp dir, or a new PostgreSQL one)."""
    if not settings.database_url:
        tmp = tempfile.mkdtemp(prefix="dpms-bench-db-")
        try:
            yield AppData(f"sqlite:///{tmp}/bench.sqlite3", "SQLite")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    url = make_url(_psycopg(settings.database_url))
    name = f"dpms_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        version = conn.execute(text("SHOW server_version")).scalar()
    try:
        yield AppData(url.set(database=name).render_as_string(hide_password=False),
                      f"PostgreSQL {version}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _psycopg(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def bench_app(database_url: str) -> Flask:
    """Return the project's app pointed at the benchmark database."""
    from portal import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})


def prepare(data: AppData) -> None:
    """Migrate the schema, create the organisation, its token, the spare users and the groups."""
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.models import Group
    from portal.services import organisations, scim_tokens
    from portal.services.audit import CLI_ACTOR

    app = bench_app(data.database_url)
    with app.app_context():
        upgrade()
        org = organisations.create_organisation("Bench Org", CLI_ACTOR)
        data.token = scim_tokens.issue_token(org, CLI_ACTOR).plaintext
        data.org_key = org.key
        spare_ids = _insert_users(org.id, [f"spare{i:03d}@bench.example" for i in range(SPARES)])
        data.spares = list(db.session.scalars(select(_membership().c.public_id).where(
            _membership().c.id.in_(spare_ids)).order_by(_membership().c.id)))
        for name in (BIG_GROUP, SMALL_GROUP):
            group = Group(organisation_id=org.id, display_name=name,
                          display_name_lower=name.lower(), source="scim",
                          external_id=f"ext-{name.lower().replace(' ', '-')}")
            db.session.add(group)
            db.session.flush()
            data.groups[name] = {"id": group.public_id, "pk": group.id, "members": 0}
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def grow(data: AppData, users: int, big_group: int) -> None:
    """Add users until there are `users` of them; fill the groups up to their sizes."""
    from portal.extensions import db
    from portal.models import GroupMember, Organisation

    app = bench_app(data.database_url)
    with app.app_context():
        org_id = db.session.scalar(select(Organisation.id).where(Organisation.key == data.org_key))
        assert org_id is not None
        member_ids: list[int] = []
        for start in range(data.users, users, BATCH):
            names = [user_name(i) for i in range(start, min(start + BATCH, users))]
            member_ids.extend(_insert_users(org_id, names))
            db.session.commit()
        data.users = max(data.users, users)
        first = _first_members(org_id, max(big_group, SMALL_GROUP_SIZE))
        for name, size in ((BIG_GROUP, min(big_group, users)),
                           (SMALL_GROUP, min(SMALL_GROUP_SIZE, users))):
            group = data.groups[name]
            wanted = first[group["members"]:size]
            for start in range(0, len(wanted), BATCH):
                db.session.execute(insert(GroupMember.__table__), [
                    {"group_id": group["pk"], "membership_id": mid}
                    for mid in wanted[start:start + BATCH]])
            group["members"] = max(group["members"], size)
        db.session.commit()
        count = db.session.scalar(select(func.count()).select_from(_membership()))
        assert count is not None and count >= users + SPARES, f"loaded {count} members"
        db.session.remove()
        db.engine.dispose()
    if data.database_url.startswith("postgresql"):
        # A directory in service has been vacuumed and analysed by autovacuum; one bulk-loaded
        # a moment ago has not: without a visibility map every COUNT reads the table's pages.
        engine = create_engine(_psycopg(data.database_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()


def _membership() -> Any:
    from portal.models import Membership

    return Membership.__table__


def _first_members(org_id: int, limit: int) -> list[int]:
    """Return the ids of the first `limit` loaded users (by userName, spares excluded)."""
    from portal.extensions import db

    m = _membership()
    return list(db.session.scalars(
        select(m.c.id).where(m.c.organisation_id == org_id, m.c.user_name_lower.like("user%"))
        .order_by(m.c.user_name_lower).limit(limit)))


def _insert_users(org_id: int, names: list[str]) -> list[int]:
    """Insert accounts, SCIM-managed memberships and their work email; return membership ids."""
    from portal.extensions import db
    from portal.models import Account, MemberEmail, Membership, sort_name_for

    account_ids = list(db.session.scalars(
        insert(Account.__table__).returning(Account.__table__.c.id, sort_by_parameter_order=True),
        [{"email": n, "display_name": _display(n)} for n in names]))
    member_ids = list(db.session.scalars(
        insert(Membership.__table__).returning(Membership.__table__.c.id,
                                               sort_by_parameter_order=True),
        [{"organisation_id": org_id, "account_id": aid, "active": True, "source": "scim",
          "scim_managed": True, "user_name": n, "user_name_lower": n.lower(),
          "external_id": f"ext-{n}", "given_name": "Bench", "family_name": _display(n),
          "name_formatted": f"Bench {_display(n)}", "display_name": f"Bench {_display(n)}",
          "sort_name": sort_name_for(f"Bench {_display(n)}")}
         for aid, n in zip(account_ids, names, strict=True)]))
    db.session.execute(insert(MemberEmail.__table__), [
        {"membership_id": mid, "value": n, "value_lower": n.lower(), "type": "work",
         "primary": True} for mid, n in zip(member_ids, names, strict=True)])
    return member_ids


def _display(name: str) -> str:
    return name.split("@", 1)[0].capitalize()
