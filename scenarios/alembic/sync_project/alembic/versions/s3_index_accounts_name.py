"""index accounts.name

Revision ID: s3
Revises: s2
Create Date: 2025-09-03 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's3'
down_revision = 's2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_accounts_name', 'accounts', ['name'])


def downgrade() -> None:
    op.drop_index('ix_accounts_name', table_name='accounts')
