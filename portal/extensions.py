"""Flask extensions, created unbound and initialised by the app factory."""

from typing import Any

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Executable, MetaData, Result
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base with a naming convention so Alembic names constraints stably."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()


def core_rows(statement: Executable, params: dict[str, Any] | None = None) -> Result[Any]:
    """Run a Core statement on the session's connection: its rows without the ORM's wrapping.

    For statements built per request or with an expanding IN (the ones every request runs
    are portal.prepared's): ~25% cheaper than `db.session.execute`, same transaction.
    Pending ORM changes are flushed first, as the session's own execute would do.
    """
    session = db.session
    session.flush()
    return session.connection().execute(statement, params)
