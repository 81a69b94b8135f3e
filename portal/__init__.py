"""The DPMS IAM portal: application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the application; no side effects beyond the instance folder."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    from portal.config import load_config

    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from portal.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    from portal import ratelimit

    ratelimit.init_app(app)

    from portal import auth, errors, home, iam, people, security, settings, sso_signin, support
    from scim_api import bp as scim_bp

    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
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

    from portal.cli import register as register_cli

    register_cli(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Use WAL, a busy timeout and foreign keys on SQLite so concurrent writers wait."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
