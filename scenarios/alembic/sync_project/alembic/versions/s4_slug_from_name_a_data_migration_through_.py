"""slug from name, a data migration through op.get_bind()

Revision ID: s4
Revises: s3
Create Date: 2025-09-04 10:00:00.000000

"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's4'
down_revision = 's3'
branch_labels = None
depends_on = None


def _slugify(name: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')


def upgrade() -> None:
    op.add_column('accounts',
                  sa.Column('slug', sa.String(length=100), nullable=True))
    # data migration in Python: read every row, write every row back
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, name FROM accounts")).fetchall()
    for row in rows:
        bind.execute(
            sa.text("UPDATE accounts SET slug = :s WHERE id = :i"),
            {"s": _slugify(row.name), "i": row.id},
        )


def downgrade() -> None:
    op.drop_column('accounts', 'slug')
