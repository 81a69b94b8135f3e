"""Statements compiled once per dialect and run straight on the driver's cursor.

Every SCIM request runs the same few statements: the token check, the IdP's lookup before
a create (`userName eq "…"`), that User's emails and groups, the activity record. Through
`Connection.execute` each costs ~25-30 µs of SQLAlchemy even with its compiled form
cached (an execution context, parameter processing, a result object and its rows),
against ~5 µs for the driver to run it; on the lookup that was a third of the request.
`Prepared` keeps the compiled SQL, the order and processing of its parameters and the
result processors per dialect, and runs the statement on the cursor of the session's own
connection — same transaction, flushed first as `Session.execute` would.

Why our own code: SQLAlchemy 2 has no cheaper execution path (its "baked" queries are
gone; lambda statements and the compiled cache still build the context per call), and no
maintained library adds one. What the engine's execution does that the app relies on is
kept: the dialect's bind and result processors (datetimes as text on SQLite, JSON,
booleans), and errors become SQLAlchemy's (`OperationalError` …) with a dropped
connection invalidated, through the connection's own handler. The engine's own path is
taken whenever anything listens to its cursor events (statement counts in the tests,
fault injection, Flask-SQLAlchemy's query recording: they expect an execution context),
with `echo` on, and for a statement this cannot run as compiled (an expanding `IN`,
literal binds, Python-side column defaults, a bind with a callable value).

It reads a few of SQLAlchemy's internals: the compiled form's bind and result processors
(`_bind_processors`, `_result_columns`, `_cached_result_processor`), the connection's
`_has_events`/`_echo` and its `_handle_dbapi_exception`. pyproject.toml allows only the
minor release they were checked against, and tests/test_prepared.py fails on both
backends if a release changes them.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from portal.extensions import db

_NO_DEFAULT = object()


@dataclass(frozen=True)
class _Form:
    """One statement compiled for one dialect."""

    sql: str
    positional: bool
    # (name as compiled, key in the caller's params, fixed value or _NO_DEFAULT, processor)
    binds: tuple[tuple[str, str, Any, Callable[[Any], Any] | None], ...]
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, its result processor)
    row: type[tuple[Any, ...]] | None  # a named tuple of the result's columns


class Row(tuple[Any, ...]):
    """Base of the result rows: a tuple with attribute access and a `_mapping` by name."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))


def _row_type(names: Sequence[str]) -> type[tuple[Any, ...]]:
    # Column names are SQL labels, not always identifiers: rename=True keeps the position.
    plain = namedtuple("PreparedRow", list(names), rename=True)  # type: ignore[misc]
    return type("PreparedRow", (plain, Row), {"__slots__": ()})


class Prepared:
    """A statement built once (values as bind parameters), runnable for ~5 µs of overhead."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: dict[str, _Form | None] = {}

    def _compile(self, dialect: Dialect) -> _Form | None:
        compiled: Any = cast(ClauseElement, self.statement).compile(dialect=dialect)
        if (compiled.post_compile_params or compiled.literal_execute_params
                or compiled.insert_prefetch or compiled.update_prefetch
                or any(bind.callable is not None for bind in compiled.binds.values())):
            return None  # rendered or computed per call: the engine's path does that
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        escaped = getattr(compiled, "escaped_bind_names", None) or {}
        binds = []
        for name in names:
            bind = compiled.binds[name]
            fixed = _NO_DEFAULT if bind.required else bind.effective_value
            binds.append((escaped.get(name, name), bind.key, fixed,
                          compiled._bind_processors.get(name)))
        columns = compiled._result_columns
        try:
            processors = [col[3]._cached_result_processor(dialect, None) for col in columns]
        except Exception:  # a type that needs the driver's column type code (Numeric …)
            return None
        return _Form(
            sql=compiled.string,
            positional=bool(compiled.positional),
            binds=tuple(binds),
            processed=tuple((i, p) for i, p in enumerate(processors) if p is not None),
            row=_row_type([col[0] for col in columns]) if columns else None,
        )

    def _form(self, connection: Connection) -> _Form | None:
        key = f"{connection.dialect.name}+{connection.dialect.driver}"
        if key not in self._forms:
            self._forms[key] = self._compile(connection.dialect)
        return self._forms[key]

    def rows(self, params: dict[str, Any] | None = None) -> list[Any]:
        """Run the statement in the request's transaction and return all its rows."""
        session = db.session()  # the request's Session itself: one registry lookup, not two
        session.flush()
        connection = session_connection(session)
        form = self._form(connection)
        if (form is None or connection._echo or connection._has_events
                or connection.engine._has_events):
            result = connection.execute(self.statement, params)
            return list(result) if result.returns_rows else []
        return _run(connection, form, params or {})

    def first(self, params: dict[str, Any] | None = None) -> Any | None:
        """Return the first row, or None."""
        found = self.rows(params)
        return found[0] if found else None


def session_connection(session: Session) -> Connection:
    """Return `session.connection()`, remembered for the rest of its transaction.

    `Session.connection()` resolves the bind each time (Flask-SQLAlchemy's `get_bind`
    looks up the app context and its engines): ~8 µs, four times a SCIM request.
    """
    known = remembered_connection(session)
    if known is not None:
        return known
    connection = session.connection()
    # A weak reference: the transaction refers to the session, which must not keep a
    # cycle alive (a Session freed by the garbage collector instead of at once costs more).
    session.info[_CONNECTION_KEY] = (weakref.ref(session.get_transaction()), connection)
    return connection


def remembered_connection(session: Session) -> Connection | None:
    """Return the connection `session_connection` remembered for the current transaction."""
    transaction = session.get_transaction()
    known = session.info.get(_CONNECTION_KEY)
    if known is not None and transaction is not None and known[0]() is transaction \
            and transaction.is_active and not known[1].closed:
        connection: Connection = known[1]
        return connection
    return None


_CONNECTION_KEY = "prepared.connection"


def _values(form: _Form, params: dict[str, Any]) -> Any:
    out: list[Any] = []
    for _, key, fixed, process in form.binds:
        value = params[key] if fixed is _NO_DEFAULT or key in params else fixed
        out.append(process(value) if process is not None else value)
    if form.positional:
        return tuple(out)
    return {name: value for (name, *_), value in zip(form.binds, out, strict=True)}


def _run(connection: Connection, form: _Form, params: dict[str, Any]) -> list[Any]:
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    sql, values, cursor = form.sql, _values(form, params), None
    try:
        cursor = dbapi.cursor()
        cursor.execute(sql, values)
        fetched = cursor.fetchall() if cursor.description is not None else []
        cursor.close()
    except BaseException as exc:  # wrapped, the cursor closed, a lost connection invalidated
        connection._handle_dbapi_exception(exc, sql, values, cursor, None)
    make = form.row
    if make is None:
        return []
    new = tuple.__new__
    if not form.processed:
        return [new(make, r) for r in fetched]
    out = []
    for r in fetched:  # only the columns whose type converts (datetimes, JSON, booleans)
        values = list(r)
        for i, process in form.processed:
            values[i] = process(values[i])
        out.append(new(make, values))
    return out
