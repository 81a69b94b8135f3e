"""Prepared statements (portal.prepared) answer exactly what the engine would, on both backends.

They skip SQLAlchemy's per-call execution, so each thing that execution did for the app is
checked here: typed values back (aware datetimes, JSON, booleans), bound values processed
the same way, the cursor events (statement counts), pending ORM changes flushed first,
errors raised as SQLAlchemy's with the transaction still usable, and the engine's own path
when a statement cannot be prepared or SQL logging is on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import AuditEvent, Organisation
from portal.prepared import Prepared
from tests.conftest import Factory, count_statements

_EVENTS = AuditEvent.__table__
_BY_ACTION = Prepared(
    select(_EVENTS.c.id, _EVENTS.c.action, _EVENTS.c.created_at, _EVENTS.c.details)
    .where(_EVENTS.c.action == bindparam("action")).order_by(_EVENTS.c.id))
_ORG_BY_KEY = Prepared(select(Organisation.id, Organisation.name, Organisation.scim_rollout)
                       .where(Organisation.key == bindparam("key"), Organisation.name != "-"))
_INSERT_EVENT = Prepared(insert(_EVENTS).values(
    action=bindparam("action"), actor_label=bindparam("actor"),
    created_at=bindparam("at"), details=bindparam("details")))


def _engine_rows(statement: Prepared, params: dict[str, object]) -> list[tuple[object, ...]]:
    return [tuple(row) for row in db.session.execute(statement.statement, params)]


def test_rows_are_the_engines_rows_with_typed_values(app: Flask) -> None:
    at = datetime(2026, 11, 2, 9, 30, 15, 250000, tzinfo=UTC)
    details = {"big": 147573952589676412927, "text": "Zoë – 東京", "ok": True, "none": None}
    with app.app_context():
        _INSERT_EVENT.rows({"action": "test.prepared", "actor": "t", "at": at,
                            "details": details})
        _INSERT_EVENT.rows({"action": "test.prepared", "actor": "t", "at": at, "details": None})
        rows = _BY_ACTION.rows({"action": "test.prepared"})
        assert [tuple(r) for r in rows] == _engine_rows(_BY_ACTION, {"action": "test.prepared"})
        first, second = rows
        assert first.created_at == at and first.created_at.tzinfo is not None
        assert first.details == details and isinstance(first.details["big"], int)
        assert second.details is None
        assert first._mapping["action"] == "test.prepared"
        assert _BY_ACTION.first({"action": "no.such.action"}) is None
        db.session.rollback()


def test_fixed_values_in_the_statement_are_bound_and_callers_values_processed(
    app: Flask, factory: Factory
) -> None:
    org = factory.org()
    with app.app_context():
        found = _ORG_BY_KEY.first({"key": org.key})
        assert found is not None and (found.id, found.name) == (org.id, org.name)
        assert _ORG_BY_KEY.first({"key": org.key + "x"}) is None


def test_cursor_listeners_get_the_engines_path_with_its_execution_context(app: Flask) -> None:
    """Statement counts, fault injection and query recording keep working (they use context)."""
    timed: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               many: bool) -> None:
        context._test_started = 1.0  # as Flask-SQLAlchemy's query recording does

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
              many: bool) -> None:
        timed.append(context._test_started)

    with app.app_context():
        db.session.connection()  # the transaction's BEGIN is not what is counted
        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        try:
            with count_statements() as seen:
                _BY_ACTION.rows({"action": "a"})
                rows = _BY_ACTION.rows({"action": "b"})
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
            event.remove(db.engine, "after_cursor_execute", after)
        assert len(seen) == 2 and all("FROM audit_event" in s for s in seen)
        assert timed == [1.0, 1.0] and rows == []
        db.session.rollback()


def test_a_python_side_default_is_never_skipped(app: Flask) -> None:
    """An INSERT leaving out a column with a Python default runs as the engine would run it."""
    partial = Prepared(insert(_EVENTS).values(action=bindparam("action"),
                                              actor_label=bindparam("actor")))
    with app.app_context():
        partial.rows({"action": "test.defaults", "actor": "t"})
        [row] = _BY_ACTION.rows({"action": "test.defaults"})
        assert row.created_at is not None and row.details == {}
        db.session.rollback()


def test_pending_orm_changes_are_flushed_first(app: Flask) -> None:
    with app.app_context():
        db.session.add(AuditEvent(action="test.pending", actor_label="t", details={}))
        assert [r.action for r in _BY_ACTION.rows({"action": "test.pending"})] == ["test.pending"]
        db.session.rollback()


def test_a_database_error_is_sqlalchemys_and_the_transaction_rolls_back(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(IntegrityError):  # actor_label is NOT NULL
            _INSERT_EVENT.rows({"action": "test.bad", "actor": None,
                                "at": datetime.now(UTC), "details": {}})
        db.session.rollback()
        assert _BY_ACTION.rows({"action": "test.bad"}) == []
        db.session.rollback()


def test_an_expanding_in_takes_the_engines_path(app: Flask) -> None:
    many = Prepared(select(_EVENTS.c.action).where(
        _EVENTS.c.action.in_(bindparam("actions", expanding=True))))
    with app.app_context():
        _INSERT_EVENT.rows({"action": "test.in", "actor": "t", "at": datetime.now(UTC),
                            "details": {}})
        assert [r[0] for r in many.rows({"actions": ["test.in", "other"]})] == ["test.in"]
        db.session.rollback()


def test_the_sessions_connection_is_remembered_for_its_transaction_only(app: Flask) -> None:
    import gc
    import weakref

    from portal.prepared import session_connection

    with app.app_context():
        session = db.session()
        first = session_connection(session)
        assert session_connection(session) is first is session.connection()
        session.commit()  # a new transaction, and a connection from the pool again
        second = session_connection(session)
        assert second is session.connection() and not second.closed
        assert first.closed
        session.rollback()
        assert session_connection(session) is session.connection()
        # Remembering it makes no reference cycle: the Session is freed as soon as it is
        # dropped, not later by the garbage collector.
        gc.disable()
        try:
            alive = weakref.ref(session)
            db.session.remove()
            del session
            assert alive() is None
        finally:
            gc.enable()
