"""Flask, made cheaper per request: the application class and unproxied request objects.

Three costs came off every SCIM request (the IdP's lookup before each create runs ~0.5 ms
in-process, so each is a few percent of it):

- `ensure_sync`: Flask asks it about every hook, view and teardown function on every
  request (14 times on a SCIM lookup), and its answer, `inspect.iscoroutinefunction`,
  unwraps methods and partials each time (~1 µs a call). A plain `def` says so in its
  code flags, so that case is decided here in one attribute read; anything else (a
  partial, an `async def`, a function marked as a coroutine) still goes through Flask's
  own check. `ensure_sync` is the method Flask's documentation says to override for this.
- App-wide hooks meant for the portal: the CSRF check, Flask-Login's remember-me cookie,
  the membership loader and the form NUL check mean nothing to an API authenticated by a
  bearer token, yet Flask runs every app-wide hook for every blueprint (~18 µs on a SCIM
  lookup). `skip_app_hooks` names the ones a blueprint's requests skip; the two methods
  that run hooks below are Flask 3.1's own, with that one filter added (pyproject.toml
  allows only the minor release they were copied from; tests/test_flask_app.py checks
  that hooks still run, in order, everywhere else).
- Reading `request.x` or `g.x` goes through werkzeug's LocalProxy, whose own attribute
  lookup fails first (Python builds an AttributeError message) before it forwards:
  ~0.8 µs a read, against ~0.1 µs on the object itself. Code that runs on every SCIM
  request takes the objects once with `current_request()` / `request_globals()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from inspect import CO_COROUTINE
from itertools import chain
from types import CodeType
from typing import Any

from flask import Flask, Request, Response, g, request
from flask.ctx import _AppCtxGlobals
from flask.globals import request_ctx


class PortalFlask(Flask):
    """Flask whose `ensure_sync` recognises a plain function at once, and whose blueprints
    may skip app-wide hooks that do not concern them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooks_skipped: dict[str, frozenset[Callable[..., Any]]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Return a plain function as it is; let Flask wrap anything async."""
        code = getattr(func, "__code__", None)
        if (type(code) is CodeType and not code.co_flags & CO_COROUTINE
                and "_is_coroutine_marker" not in getattr(func, "__dict__", ())):
            return func
        return super().ensure_sync(func)

    def skip_app_hooks(self, blueprint: str, hooks: Iterable[Callable[..., Any]]) -> None:
        """Let requests routed to `blueprint` skip these app-wide before/after-request hooks."""
        self.hooks_skipped[blueprint] = self.hooks_skipped.get(blueprint, frozenset()) | set(hooks)

    def _app_hooks(self, registry: dict[Any, list[Callable[..., Any]]],
                   blueprint: str | None) -> list[Callable[..., Any]]:
        hooks = registry.get(None, [])
        skipped = self.hooks_skipped.get(blueprint) if blueprint else None
        return [hook for hook in hooks if hook not in skipped] if skipped else hooks

    def preprocess_request(self) -> Any:
        """Run the url value preprocessors, then the before-request hooks (Flask's own order)."""
        req = current_request()
        names = (None, *reversed(req.blueprints))
        for name in names:
            if name in self.url_value_preprocessors:
                for url_func in self.url_value_preprocessors[name]:
                    url_func(req.endpoint, req.view_args)
        for name in names:
            if name is None:
                funcs = self._app_hooks(self.before_request_funcs, req.blueprint)
            else:
                funcs = self.before_request_funcs.get(name, [])
            for before_func in funcs:
                rv = self.ensure_sync(before_func)()
                if rv is not None:
                    return rv
        return None

    def process_response(self, response: Response) -> Response:
        """Run this request's and the registered after-request hooks, then save the session."""
        ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
        for func in ctx._after_request_functions:
            response = self.ensure_sync(func)(response)
        req = ctx.request
        for name in chain(req.blueprints, (None,)):
            if name is None:
                funcs = self._app_hooks(self.after_request_funcs, req.blueprint)
            else:
                funcs = self.after_request_funcs.get(name, [])
            for func in reversed(funcs):
                response = self.ensure_sync(func)(response)
        if not self.session_interface.is_null_session(ctx._session):
            self.session_interface.save_session(self, ctx._session, response)
        return response


def current_request() -> Request:
    """Return the request being handled, not its proxy (for code that reads it often)."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    return req


def request_globals() -> _AppCtxGlobals:
    """Return the application context's `g` itself, not its proxy."""
    found: _AppCtxGlobals = g._get_current_object()
    return found
