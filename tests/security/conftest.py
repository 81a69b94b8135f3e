"""Fixtures for the security properties: SCIM callers, database snapshots, a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from tests.scim.conftest import Scim, make_scim

# Written on purpose whatever a request's outcome: the token's "last used" stamp and the
# provisioning activity log (one row per request). Everything else must stay untouched
# by a refused request.
USAGE_COLUMNS = {"scim_token": {"last_used_at", "last_used_agent"}}
REQUEST_LOGS = {"provisioning_activity"}


def db_snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table (ordered by primary key), for before/after checks."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name in REQUEST_LOGS:
                continue
            skipped = USAGE_COLUMNS.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skipped]
            rows = db.session.execute(
                select(*columns).order_by(*table.primary_key.columns)).all()
            snapshot[table.name] = [tuple(row) for row in rows]
        db.session.rollback()
    return snapshot


@pytest.fixture
def scim(app: Flask) -> Scim:
    """The SCIM API of a released organisation, called with its valid token."""
    return make_scim(app)


@pytest.fixture
def other_scim(app: Flask) -> Scim:
    """The SCIM API of a second organisation."""
    return make_scim(app, "Globex")


class FrozenClock:
    """A `time` module stand-in whose time() moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrozenClock]:
    """Freeze the clock the rate limits read, so a whole test happens within one window."""
    import time

    import limits.storage.memory
    import limits.strategies

    import portal.ratelimit

    clock = FrozenClock(time.time())
    for module in (limits.storage.memory, limits.strategies, portal.ratelimit):
        monkeypatch.setattr(module, "time", clock)
    yield clock
