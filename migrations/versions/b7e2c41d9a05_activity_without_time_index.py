"""provisioning activity without an index on time alone

Every SCIM request writes an activity record; each index is one more page written per
record. The daily prune now deletes organisation by organisation on the
(organisation_id, time) index, so the index on `time` alone is no longer read.

Revision ID: b7e2c41d9a05
Revises: 6f0fabdf18d4
Create Date: 2026-11-28 23:50:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e2c41d9a05'
down_revision = '6f0fabdf18d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('provisioning_activity', schema=None) as batch_op:
        batch_op.drop_index('ix_provisioning_activity_time')


def downgrade():
    with op.batch_alter_table('provisioning_activity', schema=None) as batch_op:
        batch_op.create_index('ix_provisioning_activity_time', ['time'], unique=False)
