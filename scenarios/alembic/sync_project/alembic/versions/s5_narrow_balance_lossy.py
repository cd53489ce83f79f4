"""narrow balance (lossy)

Revision ID: s5
Revises: s4
Create Date: 2025-09-05 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's5'
down_revision = 's4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Numeric(12, 4) -> Numeric(14, 2): values are rounded, digits are lost
    op.alter_column('accounts', 'balance',
                    type_=sa.Numeric(14, 2),
                    existing_type=sa.Numeric(12, 4))


def downgrade() -> None:
    # the scale comes back, the lost digits do not
    op.alter_column('accounts', 'balance',
                    type_=sa.Numeric(12, 4),
                    existing_type=sa.Numeric(14, 2))
