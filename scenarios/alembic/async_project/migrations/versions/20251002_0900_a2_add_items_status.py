"""add items status

Revision ID: a2
Revises: a1
Create Date: 2025-10-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a2'
down_revision = 'a1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'items',
        sa.Column('status', sa.String(length=20), nullable=True,
                  server_default='new'),
    )
    # backfill: every existing row is updated
    op.execute(
        "UPDATE items SET status = "
        "CASE WHEN id % 2 = 0 THEN 'done' ELSE 'new' END"
    )
    op.alter_column('items', 'status', nullable=False)


def downgrade() -> None:
    op.drop_column('items', 'status')
