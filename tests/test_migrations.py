"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from portal.extensions import db


def _reset(app: Flask, *, restore: bool = False) -> None:
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        if restore:  # leave the schema the other tests expect
            db.create_all()


def test_migrations_from_empty_database_match_the_models(app: Flask) -> None:
    _reset(app)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        assert "membership" in inspect(db.engine).get_table_names()
    _reset(app, restore=True)


def _revisions() -> list[str]:
    """Return every revision id, newest (head) first."""
    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, "exactly one Alembic head"
    return [revision.revision for revision in script.walk_revisions()]


def _matches_models() -> None:
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == _revisions()[0]


def test_migrations_upgrade_to_head_from_every_earlier_revision(app: Flask) -> None:
    with app.app_context():
        earlier = _revisions()[1:]
    for revision in reversed(earlier):  # oldest first
        _reset(app)
        with app.app_context():
            upgrade(revision=revision)
            upgrade()
            _matches_models()
    _reset(app, restore=True)


def test_migrations_downgrade_to_every_earlier_revision_and_upgrade_again(app: Flask) -> None:
    _reset(app)
    with app.app_context():
        upgrade()
        for revision in [*_revisions()[1:], "base"]:  # newest first, then empty
            downgrade(revision=revision)
            if revision == "base":
                assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            _matches_models()
    _reset(app, restore=True)


def test_the_auditor_role_is_added_where_the_built_in_roles_already_exist(app: Flask) -> None:
    _reset(app)
    with app.app_context():
        upgrade(revision="c9e4b7a1d2f3")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO role (name, description, permissions) VALUES "
                              "('Administrator', '', '[]'), ('Member', '', '[]')"))
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, permissions FROM role ORDER BY name")).all()
        assert [name for name, _ in rows] == ["Administrator", "Auditor", "Member"]
        permissions = dict(rows)["Auditor"]
        assert sorted(permissions if isinstance(permissions, list) else
                      json.loads(permissions)) == ["it_settings.audit",
                                                                  "people.view"]
    _reset(app, restore=True)
