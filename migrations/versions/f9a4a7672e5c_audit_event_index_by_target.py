"""audit event index by target (a person's or group's history)

Revision ID: f9a4a7672e5c
Revises: 47c144573f06
Create Date: 2026-11-28 11:03:44.577312

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f9a4a7672e5c'
down_revision = '47c144573f06'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_org_target', ['organisation_id', 'target_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_org_target')
