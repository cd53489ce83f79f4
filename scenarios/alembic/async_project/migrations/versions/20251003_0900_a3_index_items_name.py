"""index items name

Revision ID: a3
Revises: a2
Create Date: 2025-10-03 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3'
down_revision = 'a2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_items_name', 'items', ['name'])


def downgrade() -> None:
    op.drop_index('ix_items_name', table_name='items')
