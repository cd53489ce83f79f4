"""drops an index the chain never created

Revision ID: s7
Revises: s6
Create Date: 2025-09-07 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's7'
down_revision = 's6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # no revision ever created this index: PostgreSQL answers
    # UndefinedObject (SQLSTATE 42704) and the revision fails
    op.drop_index('ix_accounts_created_at', table_name='accounts')


def downgrade() -> None:
    op.create_index('ix_accounts_created_at', 'accounts', ['id'])
