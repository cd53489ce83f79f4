"""add accounts.kind with a backfill

Revision ID: s2
Revises: s1
Create Date: 2025-09-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's2'
down_revision = 's1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'accounts',
        sa.Column('kind', sa.String(length=20), nullable=True,
                  server_default='personal'),
    )
    # backfill: every existing row is updated
    op.execute(
        "UPDATE accounts SET kind = "
        "CASE WHEN balance > 100 THEN 'business' ELSE 'personal' END"
    )
    op.alter_column('accounts', 'kind', nullable=False)


def downgrade() -> None:
    op.drop_column('accounts', 'kind')
