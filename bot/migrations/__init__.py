"""Alembic migrations of the Zhiban schema."""
