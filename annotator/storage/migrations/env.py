"""Alembic environment: run with the connection that annotator.storage.db.migrate passes in."""

from alembic import context
from sqlmodel import SQLModel

from annotator.storage import models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from annotator.storage.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url"), immediate=True)
        with engine.begin() as connection:
            _configure_and_run(connection)
        return
    _configure_and_run(connection)


def _configure_and_run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
