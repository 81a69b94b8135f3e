"""PortalFlask decides `ensure_sync` without inspect for plain functions, and only for them."""

from __future__ import annotations

import functools

import pytest
from flask import Flask

from portal.flask_app import PortalFlask


def _plain() -> str:
    return "plain"


async def _coroutine() -> str:
    return "async"


class _Handler:
    def method(self) -> str:
        return "method"


def test_app_is_portal_flask(app: Flask) -> None:
    assert isinstance(app, PortalFlask)


def test_plain_function_and_bound_method_are_returned_as_they_are(app: Flask) -> None:
    assert app.ensure_sync(_plain) is _plain
    bound = _Handler().method
    assert app.ensure_sync(bound) == bound


def test_partial_takes_flasks_own_path_and_still_runs(app: Flask) -> None:
    wrapped = functools.partial(_plain)
    assert app.ensure_sync(wrapped) is wrapped  # Flask's check: a partial of a def is sync
    assert app.ensure_sync(wrapped)() == "plain"


def test_async_function_is_never_returned_unwrapped(app: Flask) -> None:
    # Flask wraps it with asgiref when installed, and refuses it otherwise: either way the
    # coroutine function itself is not handed to a sync worker.
    try:
        result = app.ensure_sync(_coroutine)
    except RuntimeError as exc:
        assert "async" in str(exc)
    else:
        assert result is not _coroutine
        assert result() == "async"


def test_function_marked_as_coroutine_goes_through_flask(app: Flask,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def marked() -> str:
        return "marked"

    marked._is_coroutine_marker = True  # type: ignore[attr-defined]  # inspect's 3.12 mark
    seen: list[object] = []
    monkeypatch.setattr(Flask, "ensure_sync", lambda self, func: seen.append(func) or func)
    app.ensure_sync(marked)
    app.ensure_sync(_plain)
    assert seen == [marked]
