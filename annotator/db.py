"""The database: engines, one session per request, migrations, load-or-abort helpers.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout.
Requests that change data take the write lock up front (BEGIN IMMEDIATE) so that concurrent
writers wait their turn instead of failing half-way. Any SQLAlchemy URL works; nothing here
is SQLite-only SQL.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from pathlib import Path

import orjson
from flask import Flask, current_app, g, request
from sqlalchemy import JSON, DateTime, Engine, create_engine, event, inspect, text
from sqlmodel import Session, select

from .errors import Forbidden, NotFound
from .checkpoint import ensure_checkpointer
from .config import env_setting
from .fastsql import RawConnection, Statement, connection_of
from .models import Annotation, Document, Project, ProjectMember, User
from .writelock import connection_factory

MIGRATIONS = Path(__file__).parent / "migrations"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MIGRATION_LOCK_KEY = 0x616E6E6F  # "anno": the PostgreSQL advisory lock migrations hold


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> str | None:
    """The database file behind a SQLite URL (absolute), or None (in memory, PostgreSQL)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return None
    return os.path.abspath(url.removeprefix("sqlite:///").split("?", 1)[0])


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
    db_path = sqlite_file(url)
    if db_path:
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        if immediate:  # writers queue on a file lock, woken at once (writelock.py)
            connect_args["factory"] = connection_factory(db_path, busy_ms / 1000)
    engine = create_engine(url, connect_args=connect_args, json_serializer=json_dumps,
                           json_deserializer=json_loads)
    max_pages = env_setting("SQLITE_MAX_PAGES")  # a full database on purpose (tests, quotas)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL across process crashes
        if max_pages:
            cur.execute(f"PRAGMA max_page_count={int(max_pages)}")
        if background_checkpoint and db_path:
            cur.execute("PRAGMA wal_autocheckpoint=0")
            ensure_checkpointer(db_path)
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
def known_revisions() -> dict[str, str]:
    """Every migration this version of annotator has: revision -> down_revision ("None")."""
    out = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REV_RE.findall(path.read_text(encoding="utf-8")))
        out[found["revision"]] = found.get("down_revision", "None")
    return out


@functools.cache
def head_revision() -> str:
    """The newest migration, read from the files without importing Alembic (fast start-up)."""
    revs = known_revisions()
    heads = set(revs) - set(revs.values())
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


def migrate(url: str, *, maintenance_held: bool = False) -> None:
    """Bring the schema to the newest version (Alembic), creating the database if needed.

    A database already at the newest version is left alone without importing Alembic (and
    without asking anyone: servers start so). Changing the schema is maintenance: refused
    while any process of ours has the SQLite database open (inuse.py), unless the caller
    already holds it exclusively (``maintenance_held``: restore).
    """
    if current_revision(url) == head_revision():
        return
    if not maintenance_held:
        from .inuse import exclusive

        # Processes migrating at once (servers starting together) take turns in there.
        with exclusive(url, f"Upgrading the schema to {head_revision()}"):
            migrate(url, maintenance_held=True)
        return
    from alembic import command
    from alembic.config import Config

    from .users import ensure_system_users

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = make_engine(url, immediate=True)
    try:
        # One transaction, one migrator at a time: processes starting together on a fresh
        # database wait here (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), then
        # find the schema and the system users already there.
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            with Session(bind=conn) as s:  # joins the transaction; committed with it
                ensure_system_users(s)
                s.flush()
    finally:
        engine.dispose()


def schema_is_current(url: str) -> bool:
    engine = make_engine(url)
    try:
        return "alembic_version" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def id_converter(url: str):
    """The URL converter for ``<int:...>``: a number past what an id column holds matches no
    route (404), instead of reaching the driver (OverflowError on SQLite past 2^63,
    NumericValueOutOfRange on PostgreSQL's 32-bit integer past 2^31: a 500)."""
    from werkzeug.exceptions import NotFound as NoRoute
    from werkzeug.routing import IntegerConverter

    largest = 2**63 - 1 if is_sqlite(url) else 2**31 - 1

    class IdConverter(IntegerConverter):
        # Raised, not a ValidationError: werkzeug would then answer 405 where another
        # method's rule has the same path (GET and POST .../documents).
        def to_python(self, value: str) -> int:
            number = super().to_python(value)
            if number > largest:
                raise NoRoute()
            return number

    return IdConverter


def init_app(app: Flask) -> None:
    # Configure the ORM mappers now, once, before any request (and, under gunicorn's preload,
    # before the workers fork). Left lazy, the first ORM query of a process configures them;
    # until then attribute access on a model_construct()-ed instance (the hot paths build the
    # caller's User so) fails with AttributeError, and threads serving the first requests race.
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    app.extensions["annotator.db"] = Database(app.config["DATABASE_URL"],
                                              app.config.get("BACKGROUND_CHECKPOINT", False))
    global _marker
    key = hashlib.sha256(app.config["DATABASE_URL"].encode()).hexdigest()[:12]
    _marker = os.path.join(app.config["DATA_DIR"], f"disk-full-{key}")

    def _close(_exc=None):
        discard_sessions(invalidate=False)

    # Both: a test's pushed app context can outlive many requests.
    app.teardown_request(_close)
    app.teardown_appcontext(_close)


def discard_sessions(invalidate: bool) -> None:
    """Close the request's sessions and connections (``invalidate``: drop them from the
    pool, after the database connection was lost). Never raises: it runs in teardown, where
    an exception would reach the WSGI server, which answers its own HTML page instead of our
    error shape (probed with PostgreSQL backends terminated under load: 5 of 11 failures)."""
    for key in ("db_session", "db_write_session", "db_reader"):
        s = g.pop(key, None)
        if s is None:
            continue
        try:
            s.invalidate() if invalidate else s.close()
        except Exception as e:  # noqa: BLE001  (a dead connection: drop it, say so once)
            current_app.logger.warning("closing a database session failed (%s: %s); "
                                       "its connection is dropped", type(e).__name__, e)
            try:
                s.invalidate()
            except Exception:  # noqa: BLE001
                pass


# --- writability, as /api/v1/health reports it ------------------------------------------

MIN_FREE_BYTES = 1 << 20  # below this much free space SQLite writes are about to fail
DISK_FULL_MEMORY_S = 30  # how long a write failed on a full disk marks the database unwritable
# Where the processes of one server tell each other that a write failed on a full disk (a
# file beside the other state in DATA_DIR; set by init_app): the health check may be answered
# by another worker than the one whose write failed. Removed by the next successful commit.
_marker: str | None = None


def note_disk_full() -> None:
    if _marker is None:
        return
    try:
        os.makedirs(os.path.dirname(_marker), exist_ok=True)
        with open(_marker, "w") as f:
            f.write(f"{time.time():.3f}")
    except OSError:  # DATA_DIR on the full volume (SQLite): the volume's free space tells
        pass


def disk_full_since() -> float | None:
    try:
        return os.stat(_marker).st_mtime if _marker else None
    except OSError:
        return None


def _clear_disk_full(_session) -> None:
    if _marker is not None and os.path.exists(_marker):
        try:
            os.unlink(_marker)
        except OSError:
            pass


event.listen(Session, "after_commit", _clear_disk_full)


def database_health(database: Database) -> dict:
    """Whether the database answers and takes writes: ``{"reachable", "writable",
    "free_bytes" (SQLite: the volume's free space, or less where ``max_page_count`` caps the
    file), "disk_full_since"}``. Raises what the driver raises when it cannot be reached."""
    with database.read_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        free = None
        path = sqlite_file(database.url)
        if path:
            st = os.statvfs(os.path.dirname(path))
            free = st.f_bavail * st.f_frsize
            page, count, unused, cap = (conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                                        ("page_size", "page_count", "freelist_count",
                                         "max_page_count"))
            free = min(free, (cap - count + unused) * page)
    since = disk_full_since()
    if free is not None:  # SQLite: the volume (and the page cap) is the truth
        writable = free >= MIN_FREE_BYTES
    else:  # PostgreSQL: a write failed on a full disk lately, and none succeeded since
        writable = since is None or time.time() - since > DISK_FULL_MEMORY_S
    return {"reachable": True, "writable": writable, "free_bytes": free,
            "disk_full_since": since}


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



# --- access: existence and permission in one place -----------------------------------
#
# Admins see every project; leads and annotators only the projects they are members of
# (ProjectMember). A project, or a document of a project, that the caller may not see is
# answered exactly like one that does not exist (404), so ids reveal nothing. Lead-only
# actions also need the lead or admin role (403, asked only of members).

_IS_MEMBER = text("SELECT 1 FROM project_members WHERE project_id = :p AND user_id = :u")


def can_access(user: User, project_id: int) -> bool:
    if user.is_admin:
        return True
    found = session().connection().execute(_IS_MEMBER, {"p": project_id, "u": user.id}).first()
    return found is not None


def accessible_projects(user: User):
    """A Project query of what the caller may see (admins: everything), in id order."""
    query = select(Project).order_by(Project.id)
    if not user.is_admin:
        query = query.where(Project.id.in_(
            select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))
    return query


def require_lead(user: User) -> None:
    if not user.is_lead:
        raise Forbidden("Only a lead or an admin may do that.")


def get_project_or_404(project_id: int, user: User, *, lead: bool = False) -> Project:
    """The project, if it exists and the caller may see it (404 otherwise); ``lead=True``
    also requires the lead or admin role (403)."""
    project = session().get(Project, project_id)
    if project is None or not can_access(user, project.id):
        raise NotFound(f"Project {project_id} does not exist.")
    if lead:
        require_lead(user)
    return project


_DOCUMENT = Statement(
    "SELECT d.id, d.project_id, d.external_id, d.text, d.meta, d.content_hash, d.tokens, "
    "d.created_at, (SELECT COUNT(*) FROM project_members m WHERE m.project_id = d.project_id "
    "AND m.user_id = :u) AS member FROM documents d WHERE d.id = :id",
    results={4: JSON(), 6: JSON(), 7: DateTime(timezone=True)})
_DOCUMENT_FIELDS = ("id", "project_id", "external_id", "text", "meta", "content_hash", "tokens",
                    "created_at")


def get_document_or_404(document_id: int, user: User, *, lead: bool = False) -> Document:
    """The document, if it exists and the caller may see its project (404 otherwise);
    ``lead=True`` also requires the lead or admin role (403).

    A detached, read-only Document (hot path: every annotation read and save loads one,
    with the membership check in the same statement, outside the write lock).
    """
    row = _DOCUMENT.first(connection_of(reader()), {"id": document_id, "u": user.id})
    if row is None or not (row[8] or user.is_admin):
        raise NotFound(f"Document {document_id} does not exist.")
    if lead:
        require_lead(user)
    return Document.model_construct(**dict(zip(_DOCUMENT_FIELDS, row[:8])))


def get_user_by_name_or_404(username: str) -> User:
    user = session().exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"User {username!r} does not exist.")
    return user


def reset_postgres(url: str) -> None:
    """Drop and recreate the public schema: everything in the database is gone. For the test
    suite and the benchmarks, which are handed an empty, disposable database."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def default_database_url(data_dir: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.join(data_dir, "annotator.db"))


__all__ = [
    "Annotation", "Database", "get_db", "session", "reader", "write_session", "migrate",
    "init_app", "can_access", "accessible_projects", "get_project_or_404", "get_document_or_404",
    "require_lead",
]
