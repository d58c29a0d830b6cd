"""The `annotator` group and what its commands share: the database a command works on
(``AppContext``) and how an error is told (one clear line on stderr and a non-zero exit,
never a traceback). The commands register themselves on ``main`` from the modules beside.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import click

from annotator.core.errors import AnnotatorError


class AppContext:
    def __init__(self, db_url: str | None):
        self.db_url = db_url

    def config(self) -> dict:
        from annotator.core.config import load_config

        return load_config({"DATABASE_URL": self.db_url} if self.db_url else None)

    def require_database(self) -> str:
        """The database URL, refusing (one line, exit 1) when it is a SQLite file that does not
        exist: a command that only reads must not create an empty database and print nothing
        because it was run from another directory."""
        from annotator.storage.db import sqlite_file

        conf = self.config()
        url, path = conf["DATABASE_URL"], sqlite_file(conf["DATABASE_URL"])
        if path and not os.path.exists(path):
            raise click.ClickException(
                f"No database at {path}. The data folder is "
                f"{'--db' if self.db_url else 'ANNOTATOR_DATA_DIR'} or else annotator-data/ in "
                f"the current directory ({os.getcwd()}); run from the folder where you started "
                f"`annotator demo` or `annotator serve`, or pass --db.")
        return url

    @contextmanager
    def session(self, *, create: bool = False):
        """A write session on a migrated database; commits on success. The database counts
        as open meanwhile (inuse.py): a restore is refused until the command has finished.
        A missing SQLite database is refused unless ``create`` (a command that makes the first
        user or project): one that reads or names a project must not make an empty one."""
        from annotator.storage.db import Database, migrate
        from annotator.storage.inuse import holding

        url = self.config()["DATABASE_URL"] if create else self.require_database()
        migrate(url)
        with holding(url, "the command"):
            database = Database(url)
            try:
                with database.session() as s:
                    yield s
                    s.commit()
            finally:
                database.dispose()


def _db_url(value: str | None) -> str | None:
    if value and "://" not in value:
        return "sqlite:///" + os.path.abspath(value)
    return value


class Group(click.Group):
    """Turns our errors into one line and exit code 1 (2 for usage errors, as click does)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AnnotatorError as e:
            message = e.message
            if (e.details and isinstance(e.details[0], dict) and len(e.details) > 1
                    and "more)" not in message):
                more = f" ({len(e.details)} problems; the first is shown)"
                message = message[:-1] + more + "." if message.endswith(".") else message + more
            raise click.ClickException(message) from None
        except OSError as e:
            raise click.ClickException(f"{e.strerror or e}: {e.filename}" if e.filename else str(e)) from None


@click.group(cls=Group)
@click.version_option(package_name="annotator", prog_name="annotator",
                      message="%(prog)s %(version)s")
@click.option("--db", "db", envvar="ANNOTATOR_DATABASE_URL", default=None,
              help="SQLite file path or SQLAlchemy URL (default: annotator-data/annotator.db).")
@click.pass_context
def main(ctx, db):
    """annotator: label text spans, measure agreement, export training data."""
    ctx.obj = AppContext(_db_url(db))
