"""a downgrade that is pass

Revision ID: s6
Revises: s5
Create Date: 2025-09-06 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's6'
down_revision = 's5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts',
                  sa.Column('region', sa.String(length=20), nullable=True))


def downgrade() -> None:
    pass
