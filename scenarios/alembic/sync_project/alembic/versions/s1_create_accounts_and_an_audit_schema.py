"""create accounts and an audit schema

Revision ID: s1
Revises: 
Create Date: 2025-09-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's1'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA audit")
    op.create_table(
        'accounts',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('balance', sa.Numeric(12, 4), nullable=False,
                  server_default='0'),
    )
    op.create_table(
        'entries',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), sa.ForeignKey('accounts.id'),
                  nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        schema='audit',
    )


def downgrade() -> None:
    op.drop_table('entries', schema='audit')
    op.drop_table('accounts')
    op.execute("DROP SCHEMA audit")
