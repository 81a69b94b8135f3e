"""The current time, from one place, so tests can freeze and advance it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Return the current time as an aware UTC datetime (tests monkeypatch this)."""
    return datetime.now(UTC)
