"""auditor role: reads the audit log, people and groups; changes nothing

For a Data Protection Officer or an auditor collecting evidence. New installations get it
with the other built-in roles (portal.services.roles.ensure_builtin_roles); this adds it
where the built-in roles already exist.

Revision ID: d2b7c4e8a9f1
Revises: c9e4b7a1d2f3
Create Date: 2026-11-29 11:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd2b7c4e8a9f1'
down_revision = 'c9e4b7a1d2f3'
branch_labels = None
depends_on = None

DESCRIPTION = ("Reads the audit log, people and groups, and exports audit evidence; "
               "changes nothing.")


def upgrade():
    role = sa.table('role', sa.column('name', sa.String), sa.column('description', sa.String),
                    sa.column('permissions', sa.JSON))
    connection = op.get_bind()
    if connection.scalar(sa.select(sa.func.count()).select_from(role)) and not \
            connection.scalar(sa.select(sa.func.count()).select_from(role)
                              .where(role.c.name == 'Auditor')):
        op.bulk_insert(role, [{"name": "Auditor", "description": DESCRIPTION,
                               "permissions": ["it_settings.audit", "people.view"]}])


def downgrade():
    # The role may be held by then; it stays (an unknown role name is harmless to older code).
    pass
