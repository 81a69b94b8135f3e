"""membership sort name

The People list sorts by what it shows (display name, else the account's name, else
userName), case-folded: a stored, indexed key kept by portal.models._keep_sort_names.
Existing rows are filled here with the same Python case-folding the models use.

Revision ID: c3d8f1a2b9e4
Revises: c3d8e1f0a7b2
Create Date: 2026-11-29 02:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c3d8f1a2b9e4'
down_revision = 'c3d8e1f0a7b2'
branch_labels = None
depends_on = None

BATCH = 1000


def _sort_name(label: str) -> str:
    return " ".join(label.split()).casefold()[:320]  # as portal.models.sort_name_for


def upgrade():
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sort_name', sa.String(length=320), nullable=False,
                                      server_default=''))
    connection = op.get_bind()
    membership = sa.table('membership', sa.column('id', sa.Integer),
                          sa.column('account_id', sa.Integer),
                          sa.column('display_name', sa.String), sa.column('user_name', sa.String),
                          sa.column('sort_name', sa.String))
    account = sa.table('account', sa.column('id', sa.Integer), sa.column('display_name', sa.String))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(membership.c.id, membership.c.display_name, account.c.display_name,
                      membership.c.user_name)
            .select_from(membership.join(account, account.c.id == membership.c.account_id))
            .where(membership.c.id > last).order_by(membership.c.id).limit(BATCH)).all()
        if not rows:
            break
        connection.execute(
            membership.update().where(membership.c.id == sa.bindparam('mid'))
            .values(sort_name=sa.bindparam('key')),
            [{'mid': mid, 'key': _sort_name(own or account_name or user_name or '')}
             for mid, own, account_name, user_name in rows])
        last = rows[-1][0]
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index('ix_membership_org_sort', ['organisation_id', 'sort_name', 'id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index('ix_membership_org_sort')
        batch_op.drop_column('sort_name')
