"""The database: engines, sessions, migrations, and whether it takes writes.

The request's own sessions and the access rule (who may see which project) are the web's:
annotator.web.db.

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
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlmodel import Session, select

from annotator.core.config import env_setting
from annotator.storage.checkpoint import ensure_checkpointer
from annotator.storage.models import GOLD_USER, IMPORT_USER, SYSTEM_ROLE, User
from annotator.storage.writelock import connection_factory

MIGRATIONS = Path(__file__).parent / "migrations"
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
        from annotator.storage.inuse import exclusive

        # Processes migrating at once (servers starting together) take turns in there.
        with exclusive(url, f"Upgrading the schema to {head_revision()}"):
            migrate(url, maintenance_held=True)
        return
    from alembic import command
    from alembic.config import Config

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


def ensure_system_users(s: Session) -> None:
    """The pseudo-users that imports and settled gold are recorded as (models.IMPORT_USER,
    models.GOLD_USER): created with the schema, never able to log in."""
    for name in (IMPORT_USER, GOLD_USER):
        if s.exec(select(User).where(User.username == name)).first() is None:
            s.add(User(username=name, role=SYSTEM_ROLE, active=False))


def schema_is_current(url: str) -> bool:
    engine = make_engine(url)
    try:
        return "alembic_version" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


# --- writability, as /api/v1/health reports it ------------------------------------------

MIN_FREE_BYTES = 1 << 20  # below this much free space SQLite writes are about to fail
DISK_FULL_MEMORY_S = 30  # how long a write failed on a full disk marks the database unwritable
# Where the processes of one server tell each other that a write failed on a full disk (a
# file beside the other state in DATA_DIR; set by watch_disk_full): the health check may be answered
# by another worker than the one whose write failed. Removed by the next successful commit.
_marker: str | None = None


def watch_disk_full(url: str, data_dir: str) -> None:
    """Where this process notes, and looks for, a write that failed on a full disk."""
    global _marker
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    _marker = os.path.join(data_dir, f"disk-full-{key}")


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


