"""Rate limits that count failures only (failed sign-ins, failed SCIM bearer auth).

Flask-Limiter's decorators count every request; here only failures may count
against a client, so a valid IdP request is never refused because someone else
failed from the same address. We use the `limits` library under Flask-Limiter for
the storage (in-memory for one process, Redis via RATELIMIT_STORAGE_URI across
workers and machines) and the strategy (RATELIMIT_STRATEGY, fixed-window by
default as in Flask-Limiter), and decide ourselves what to hit. Flask-Limiter's
`Limiter` itself is not installed: its request hooks cost ~90 µs on every request,
SCIM included, for limits this app never declares.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES


def init_app(app: Flask) -> None:
    """Give the app its own limiter; its storage is per process unless it is Redis."""
    storage = storage_from_string(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    strategy = STRATEGIES[app.config.get("RATELIMIT_STRATEGY") or "fixed-window"]
    app.extensions["dpms_limiter"] = strategy(storage)


def _strategy() -> Any:
    return current_app.extensions["dpms_limiter"]


@dataclass(frozen=True)
class FailureLimit:
    """A budget of failures per identifier (address, account, organisation)."""

    scope: str
    config_key: str
    default: str

    @property
    def item(self) -> RateLimitItem:
        return parse(current_app.config.get(self.config_key) or self.default)


LOGIN_PER_ADDRESS = FailureLimit("login-ip", "RATELIMIT_LOGIN_PER_ADDRESS", "30 per 5 minutes")
LOGIN_PER_ACCOUNT = FailureLimit("login-account", "RATELIMIT_LOGIN_PER_ACCOUNT", "10 per 15 minutes")
SCIM_AUTH_PER_ADDRESS = FailureLimit("scim-ip", "RATELIMIT_SCIM_AUTH_PER_ADDRESS", "20 per minute")
SCIM_AUTH_PER_ORG = FailureLimit("scim-org", "RATELIMIT_SCIM_AUTH_PER_ORG", "60 per minute")


def _enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def retry_after(*checks: tuple[FailureLimit, str]) -> int | None:
    """Return seconds to wait if any (limit, identifier) has no failures left, else None."""
    if not _enabled():
        return None
    strategy = _strategy()
    for limit, identifier in checks:
        item = limit.item
        if not strategy.test(item, limit.scope, identifier):
            reset = strategy.get_window_stats(item, limit.scope, identifier).reset_time
            return max(1, math.ceil(reset - time.time()))
    return None


def record_failure(*checks: tuple[FailureLimit, str]) -> None:
    """Count one failure against each (limit, identifier)."""
    if not _enabled():
        return
    for limit, identifier in checks:
        _strategy().hit(limit.item, limit.scope, identifier)


def client_address() -> str:
    """Return the client's address (after ProxyFix, when configured)."""
    return get_remote_address()
