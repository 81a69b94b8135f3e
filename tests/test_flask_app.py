"""PortalFlask decides `ensure_sync` without inspect for plain functions, and only for them."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from flask import Blueprint, Flask, after_this_request, g, request

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


def _hooked_app(order: list[str]) -> PortalFlask:
    """A small PortalFlask with app-wide and blueprint hooks that note when they run."""
    app = PortalFlask(__name__)
    api, site = Blueprint("api", __name__), Blueprint("site", __name__)

    def note(name: str) -> Any:
        def before() -> None:
            order.append(f"{name} before")

        def after(response: Any) -> Any:
            order.append(f"{name} after")
            return response

        return before, after

    app_before, app_after = note("app")
    portal_before, portal_after = note("portal-only")
    api_before, api_after = note("api")
    app.before_request(app_before)
    app.before_request(portal_before)
    app.after_request(app_after)
    app.after_request(portal_after)
    api.before_request(api_before)
    api.after_request(api_after)

    @api.route("/api")
    def api_view() -> str:
        @after_this_request
        def late(response: Any) -> Any:
            order.append("after-this-request")
            return response

        order.append("view")
        return "api"

    @site.route("/site")
    def site_view() -> str:
        order.append("view")
        return "site"

    @api.route("/refused")
    def refused() -> str:
        order.append("view")
        return "never"

    def refuse() -> Any:
        return ("refused", 403) if request.path == "/refused" else None

    api.before_request(refuse)
    app.register_blueprint(api)
    app.register_blueprint(site)
    app.skip_app_hooks("api", [portal_before, portal_after])
    return app


def test_a_blueprint_skips_only_the_app_hooks_named_for_it_in_flasks_order() -> None:
    order: list[str] = []
    client = _hooked_app(order).test_client()
    assert client.get("/api").text == "api"
    # Flask's order: app hooks, then the blueprint's; after the view, this request's own
    # hooks, the blueprint's, then the app's in reverse order of registration.
    assert order == ["app before", "api before", "view", "after-this-request", "api after",
                     "app after"]
    order.clear()
    assert client.get("/site").text == "site"  # another blueprint runs every app-wide hook
    assert order == ["app before", "portal-only before", "view", "portal-only after",
                     "app after"]


def test_a_before_hook_that_answers_still_stops_the_request() -> None:
    order: list[str] = []
    response = _hooked_app(order).test_client().get("/refused")
    assert (response.status_code, response.text) == (403, "refused")
    assert "view" not in order
    assert order == ["app before", "api before", "api after", "app after"]


def test_scim_requests_skip_the_portal_hooks_and_portal_requests_run_them(
        app: Flask, client: Any) -> None:
    seen: dict[str, bool] = {}

    @app.after_request
    def watch(response: Any) -> Any:
        seen[request.path.split("/")[1]] = "membership" in g  # set by _load_membership
        return response

    client.get("/scim/v2/no-such-org/Users")
    client.get("/auth/login")
    assert seen == {"scim": False, "auth": True}
    skipped = {getattr(hook, "__name__", "") for hook in app.hooks_skipped["scim"]}
    assert skipped == {"csrf_protect", "_update_remember_cookie", "_load_membership",
                       "_refuse_nul_characters"}
