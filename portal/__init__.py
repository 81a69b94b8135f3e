"""The DPMS IAM portal: application factory."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.log import InstanceLogger
from werkzeug.middleware.proxy_fix import ProxyFix

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the application; no side effects beyond the instance folder."""
    from portal.flask_app import PortalFlask

    app = PortalFlask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    from portal.config import load_config

    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from portal.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    if app.config.get("APP_ENV") == "production":
        _never_log_result_rows(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    from portal import ratelimit

    ratelimit.init_app(app)

    from portal import account, auth, errors, home, iam, people, security, settings, sso_signin, support
    from scim_api import bp as scim_bp

    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(iam.bp)
    app.register_blueprint(people.bp)
    app.register_blueprint(people.groups_bp)
    app.register_blueprint(support.bp)
    app.register_blueprint(sso_signin.bp)  # its ACS view is CSRF-exempt (the IdP posts it)
    app.register_blueprint(scim_bp)
    csrf.exempt(scim_bp)
    errors.register(app)
    security.register(app)
    # The SCIM API is authenticated by bearer token: the portal's CSRF, session and
    # membership hooks are skipped for it (portal.flask_app).
    app.skip_app_hooks(scim_bp.name, security.portal_only_hooks(app))
    from portal.services.audit_details import action_label

    app.add_template_filter(action_label, "action_label")  # every screen names actions alike

    from portal.cli import register as register_cli

    register_cli(app)
    return app


def engine_options(config: Any) -> dict[str, Any]:
    """Return the engine options with what safety needs, whatever the configuration said.

    Production hides bound parameters (password hashes, token digests, personal data) from
    SQL log lines and error messages, even under a DEBUG root logger. SQLite waits up to
    SQLITE_BUSY_TIMEOUT_SECONDS for another writer's lock before the request fails (503).
    """
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("json_deserializer", _load_json)
    if config.get("APP_ENV") == "production":
        options.setdefault("hide_parameters", True)
    if str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
        options["connect_args"] = {"timeout": config.get("SQLITE_BUSY_TIMEOUT_SECONDS", 10.0),
                                   **options.get("connect_args", {})}
    return options


# orjson reads an integer beyond 64 bits as a float, silently; it has 20 digits or more.
_LONG_DIGITS = re.compile(r"\d{20}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{20}")


def _load_json(text: str | bytes) -> Any:
    """Read a JSON column with orjson (every User on a SCIM page has one), json as fallback.

    The stdlib reads what orjson refuses and json.dumps may have written (NaN), and any
    text with a run of 20 digits: an IdP's huge integer is kept exact, never a float.
    """
    long_digits = (_LONG_DIGITS.search(text) if isinstance(text, str)
                   else _LONG_DIGITS_BYTES.search(text))
    if long_digits is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


class _NoResultRows(logging.Filter):
    """Drop SQLAlchemy's DEBUG records of result rows and columns (they carry the data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(("Row ", "Col ")))


def _never_log_result_rows(app: Flask) -> None:
    """Keep fetched rows (password hashes, token digests) out of a DEBUG log in production."""
    from portal.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            logger = engine.logger  # echo=True wraps the logger
            if isinstance(logger, InstanceLogger):
                logger = logger.logger
            if not any(isinstance(f, _NoResultRows) for f in logger.filters):
                logger.addFilter(_NoResultRows())


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Use WAL and foreign keys on SQLite (the busy timeout comes from `engine_options`)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
