"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
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


def test_migrations_downgrade_to_empty_and_upgrade_again(app: Flask) -> None:
    _reset(app)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "scim_token" in inspect(db.engine).get_table_names()
    _reset(app, restore=True)
