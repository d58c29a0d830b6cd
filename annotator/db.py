"""The database: engines, one session per request, migrations, load-or-abort helpers.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout.
Requests that change data take the write lock up front (BEGIN IMMEDIATE) so that concurrent
writers wait their turn instead of failing half-way. Any SQLAlchemy URL works; nothing here
is SQLite-only SQL.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import orjson
from flask import Flask, current_app, g, request
from sqlalchemy import JSON, DateTime, Engine, create_engine, event, inspect, text
from sqlmodel import Session, select

from .errors import Forbidden, NotFound
from .fastsql import RawConnection, Statement, connection_of
from .checkpoint import ensure_checkpointer
from .writelock import connection_factory
from .models import Annotation, Document, Project, User

MIGRATIONS = Path(__file__).parent / "migrations"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def json_dumps(value) -> str:
    """JSON columns are written with orjson (profiled: json.dumps was the largest single cost
    of writing token lists); values orjson refuses (integers beyond 64 bits) use json."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


def json_loads(raw):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # e.g. NaN, which json.dumps writes and orjson refuses
        return json.loads(raw)


def make_engine(url: str, *, immediate: bool = False, busy_ms: int = 30000,
                background_checkpoint: bool = False) -> Engine:
    """An engine; for SQLite, with the pragmas below on every connection.

    SQLite pragmas (each measured in bench/, see docs/speed.md): ``journal_mode=WAL``
    (readers never block the writer), ``synchronous=NORMAL`` (no fsync per commit; a commit
    survives a process crash, the last ones may be lost on power loss), ``foreign_keys=ON``,
    ``busy_timeout``; with ``background_checkpoint`` (the server) ``wal_autocheckpoint=0``
    and a checkpoint thread instead (checkpoint.py). Writers queue on a file lock
    (writelock.py) before ``BEGIN IMMEDIATE``.
    """
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, json_serializer=json_dumps,
                             json_deserializer=json_loads)
    connect_args = {"timeout": busy_ms / 1000, "check_same_thread": False}
    db_path = None
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        db_path = url.removeprefix("sqlite:///").split("?", 1)[0]
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        if immediate:  # writers queue on a file lock, woken at once (writelock.py)
            connect_args["factory"] = connection_factory(os.path.abspath(db_path), busy_ms / 1000)
    engine = create_engine(url, connect_args=connect_args, json_serializer=json_dumps,
                           json_deserializer=json_loads)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL across process crashes
        if background_checkpoint and db_path:
            cur.execute("PRAGMA wal_autocheckpoint=0")
            ensure_checkpointer(os.path.abspath(db_path))
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        dbapi_conn = conn.connection.dbapi_connection
        if immediate and hasattr(dbapi_conn, "begin_write"):
            dbapi_conn.begin_write("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Owns the engines. Reads use a deferred transaction; writes take the lock at BEGIN."""

    def __init__(self, url: str, background_checkpoint: bool = False):
        self.url = url
        self.read_engine = make_engine(url, background_checkpoint=background_checkpoint)
        self.write_engine = (make_engine(url, immediate=True, background_checkpoint=background_checkpoint)
                             if is_sqlite(url) else self.read_engine)

    def session(self, write: bool = True) -> Session:
        return Session(self.write_engine if write else self.read_engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()


_REV_RE = re.compile(r"^(down_revision|revision)\s*=\s*['\"]?([\w.-]+|None)['\"]?", re.M)


@functools.cache
def head_revision() -> str:
    """The newest migration, read from the files without importing Alembic (fast start-up)."""
    revs, downs = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REV_RE.findall(path.read_text(encoding="utf-8")))
        revs.add(found["revision"])
        downs.add(found.get("down_revision", "None"))
    heads = revs - downs
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have exactly one head, found {sorted(heads)}")
    return heads.pop()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if "alembic_version" not in inspect(conn).get_table_names():
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """Bring the schema to the newest version (Alembic), creating the database if needed.

    A database already at the newest version is left alone without importing Alembic.
    """
    if current_revision(url) == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = make_engine(url, immediate=True)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    from .users import ensure_system_users

    db = Database(url)
    try:
        with db.session() as s:
            ensure_system_users(s)
            s.commit()
    finally:
        db.dispose()


def schema_is_current(url: str) -> bool:
    engine = make_engine(url)
    try:
        return "alembic_version" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def init_app(app: Flask) -> None:
    app.extensions["annotator.db"] = Database(app.config["DATABASE_URL"],
                                              app.config.get("BACKGROUND_CHECKPOINT", False))

    def _close(_exc=None):
        for key in ("db_session", "db_write_session", "db_reader"):
            s = g.pop(key, None)
            if s is not None:
                s.close()

    # Both: a test's pushed app context can outlive many requests.
    app.teardown_request(_close)
    app.teardown_appcontext(_close)


def get_db() -> Database:
    return current_app.extensions["annotator.db"]


def session() -> Session:
    """The request's session: a write session for state-changing methods."""
    if "db_session" not in g:
        from flask import has_request_context

        write = not has_request_context() or request.method not in SAFE_METHODS
        g.db_session = get_db().session(write=write)
    return g.db_session


def reader():
    """A read-only connection for look-ups that need not be inside the request's write
    transaction: the caller, the document, the label set (a ``fastsql.RawConnection``;
    pass it where a Session is accepted by ``fastsql.connection_of``).

    Profile (8 clients saving at once): a state-changing request took SQLite's write lock
    (BEGIN IMMEDIATE, and the writer file lock) at its first statement, which was the API
    token look-up, so authentication, the document load and span validation all ran
    inside the one-writer-at-a-time section. Read through this connection they run in
    parallel; the write transaction starts when the request first writes.
    """
    from flask import has_request_context

    if not has_request_context():
        return session()
    conn = g.get("db_reader")
    if conn is None:
        conn = g.db_reader = RawConnection(get_db().read_engine)
    return conn


def write_session() -> Session:
    """A write session even for a GET that changes state (the queue's reservation)."""
    from flask import has_request_context

    if not has_request_context() or request.method not in SAFE_METHODS:
        return session()
    if "db_write_session" not in g:
        g.db_write_session = get_db().session(write=True)
    return g.db_write_session


# --- load-or-abort helpers: existence and permission in one place -------------------

def get_project_or_404(project_id: int, user: User) -> Project:
    project = session().get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.")
    return project


_DOCUMENT = Statement("SELECT id, project_id, external_id, text, meta, content_hash, tokens, created_at "
                      "FROM documents WHERE id = :id",
                      results={4: JSON(), 6: JSON(), 7: DateTime(timezone=True)})
_DOCUMENT_FIELDS = ("id", "project_id", "external_id", "text", "meta", "content_hash", "tokens", "created_at")


def get_document_or_404(document_id: int, user: User) -> Document:
    """A detached, read-only Document (hot path: every annotation read and save loads one)."""
    row = _DOCUMENT.first(connection_of(reader()), {"id": document_id})
    if row is None:
        raise NotFound(f"Document {document_id} does not exist.")
    return Document.model_construct(**dict(zip(_DOCUMENT_FIELDS, row)))


def get_user_by_name_or_404(username: str) -> User:
    user = session().exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"User {username!r} does not exist.")
    return user


def require_lead(user: User) -> None:
    if not user.is_lead:
        raise Forbidden("Only a lead or an admin may do that.")


def default_database_url(data_dir: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.join(data_dir, "annotator.db"))


__all__ = [
    "Annotation", "Database", "get_db", "session", "reader", "write_session", "migrate", "init_app",
    "get_project_or_404", "get_document_or_404", "require_lead",
]
