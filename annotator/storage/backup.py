"""Online backup and restore of the SQLite database; PostgreSQL users are pointed to pg_dump.

backup: SQLite's online backup API copies the live database in one step, inside one read
transaction, so the copy is one committed state (WAL: the reader never blocks the server's
writers, and they never disturb it). The copy goes to a hidden temporary file next to PATH,
is switched to a self-contained rollback-journal file (no -wal beside it), must pass
``PRAGMA integrity_check`` and be an annotator database, is fsynced and only then renamed to
PATH: PATH is either untouched or a complete, checked backup. An existing PATH is kept
unless ``force``.

restore: the file must be an annotator database (SQLite header, integrity_check ``ok``, a
schema revision this version of annotator knows). It is refused while any process of ours
has the target open (a server, a background tokenizing job, a command), naming them:
they hold a shared lock on ``TARGET.lock`` and restore needs it exclusively, so none can
start half-way either (inuse.py). A target that already exists is
replaced only when confirmed (``--yes``), after a safety copy ``TARGET.pre-restore-<time>``.
The copy into an existing target goes through the backup API as one write transaction, so
any other reader sees the old database or the restored one, never a mix; a new target is
written to a temporary file and renamed. Last, the restored database is migrated to the
current schema (a backup made by an older version is brought up to date).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from annotator.core.errors import AnnotatorError
from annotator.storage.db import head_revision, is_sqlite, known_revisions, migrate
from annotator.storage.inuse import exclusive

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_MS = 30000


def _pg_pointer(url: str, verb: str) -> AnnotatorError:
    try:
        shown = make_url(url).set(drivername=make_url(url).get_backend_name())
        shown = shown.render_as_string(hide_password=True)
    except Exception:
        shown = "DATABASE_URL"
    how = (f"pg_dump -Fc -f annotator.dump '{shown}'" if verb == "backup"
           else f"pg_restore --clean --if-exists -d '{shown}' annotator.dump")
    return AnnotatorError(
        f"`annotator {verb}` works on SQLite databases only; this one is "
        f"{make_url(url).get_backend_name()}: use {how} (docs/deploying.md).")


def sqlite_path(url: str, verb: str) -> Path:
    """The database file behind a SQLite URL; any other database gets the pg_dump pointer."""
    if not is_sqlite(url):
        raise _pg_pointer(url, verb)
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise AnnotatorError(f"{url} is not a database file that can be {verb}d.")
    return Path(name).absolute()


def _connect(path: Path, mode: str = "rw") -> sqlite3.Connection:
    """A plain sqlite3 connection that never creates a missing file (mode rw or ro)."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode={mode}", uri=True, timeout=BUSY_MS / 1000,
                           isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return conn


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_to_new_file(src: Path, tmp: Path) -> None:
    """Snapshot ``src`` into the new file ``tmp`` (one backup step = one read transaction)."""
    source = _connect(src)
    try:
        dest = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.backup(dest)  # pages=-1: everything in one step
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
    finally:
        source.close()


def _rename_into_place(tmp: Path, dest: Path) -> None:
    _fsync(tmp)
    os.replace(tmp, dest)
    _fsync(dest.parent)


def check_file(path: str | os.PathLike) -> str:
    """Raise unless ``path`` is an intact annotator database; return its schema revision."""
    path = Path(path).absolute()
    if not path.is_file():
        raise AnnotatorError(f"There is no file at {path}.")
    with open(path, "rb") as f:
        if f.read(16) != SQLITE_MAGIC:
            raise AnnotatorError(f"{path} is not an SQLite database.")
    try:
        conn = _connect(path, "ro")
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in
                      conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise AnnotatorError(f"{path} is damaged and cannot be read: {e}.") from None
    if problems != ["ok"]:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise AnnotatorError(f"{path} failed PRAGMA integrity_check: {problems[0]}{more}.")
    if revision is None or "annotations" not in tables:
        raise AnnotatorError(f"{path} is an SQLite database but not an annotator database "
                             f"(no annotator schema version in it).")
    if revision not in known_revisions():
        raise AnnotatorError(f"{path} was written by a newer annotator (schema revision "
                             f"{revision!r}; this version knows up to {head_revision()!r}): "
                             f"upgrade annotator first.")
    return revision


def backup(url: str, dest: str | os.PathLike, *, force: bool = False) -> dict:
    """Copy the live database behind ``url`` to the file ``dest``; see the module docstring."""
    src = sqlite_path(url, "backup")
    if not src.is_file():
        raise AnnotatorError(f"There is no database at {src} to back up.")
    dest = Path(dest).absolute()
    if dest.is_dir():
        raise AnnotatorError(f"{dest} is a folder; give the backup a file name, "
                             f"e.g. {dest / 'annotator.db'}.")
    if dest.exists() and dest.samefile(src):
        raise AnnotatorError(f"{dest} is the live database itself; choose another file.")
    if dest.exists() and not force:
        raise AnnotatorError(f"{dest} already exists; choose a new name or pass --force "
                             f"to overwrite it.")
    if not dest.parent.is_dir():
        raise AnnotatorError(f"The folder {dest.parent} does not exist.")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        _copy_to_new_file(src, tmp)
        revision = check_file(tmp)
        _rename_into_place(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return {"source": str(src), "path": str(dest), "bytes": dest.stat().st_size,
            "revision": revision}


def restore(url: str, src: str | os.PathLike, *, confirm: bool = False) -> dict:
    """Replace the database behind ``url`` by the backup ``src``; see the module docstring."""
    target = sqlite_path(url, "restore")
    src = Path(src).absolute()
    revision = check_file(src)
    if target.exists() and target.samefile(src):
        raise AnnotatorError(f"{src} is the database itself; nothing to restore.")
    safety = None
    with exclusive(url, "annotator restore"):
        if target.exists():
            if not confirm:
                raise AnnotatorError(
                    f"{target} already exists and restoring replaces everything in it; "
                    f"pass --yes to go ahead (a copy of it is kept first).")
            safety = _safety_copy(target)
            _copy_into(src, target)
        else:
            for side in ("-wal", "-shm", "-journal"):
                if target.with_name(target.name + side).exists():
                    raise AnnotatorError(f"{target.name}{side} is left over without {target.name}; "
                                         f"move it away before restoring.")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
            try:
                _copy_to_new_file(src, tmp)
                _rename_into_place(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        migrate(url, maintenance_held=True)
    return {"path": str(target), "from": str(src), "revision": revision, "now": head_revision(),
            "safety_copy": str(safety) if safety else None}


def _safety_copy(target: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safety = target.with_name(f"{target.name}.pre-restore-{stamp}")
    n = 1
    while safety.exists():
        n += 1
        safety = target.with_name(f"{target.name}.pre-restore-{stamp}-{n}")
    tmp = safety.with_name(f".{safety.name}.partial")
    try:
        _copy_to_new_file(target, tmp)
        _rename_into_place(tmp, safety)
    except sqlite3.DatabaseError as e:
        raise AnnotatorError(f"{target} is not a readable SQLite database ({e}); "
                             f"move it away and run restore again.") from None
    finally:
        tmp.unlink(missing_ok=True)
    return safety


def _copy_into(src: Path, target: Path) -> None:
    """Overwrite the existing database ``target`` with ``src`` in one write transaction."""
    source = _connect(src, "ro")
    try:
        dest = _connect(target)
        try:
            src_page = source.execute("PRAGMA page_size").fetchone()[0]
            if dest.execute("PRAGMA page_size").fetchone()[0] != src_page:
                # A WAL database cannot change its page size; the backup needs it to.
                dest.execute("PRAGMA journal_mode=DELETE")
            source.backup(dest)  # pages=-1: one step, one transaction on the target
            dest.execute("PRAGMA journal_mode=WAL")
        finally:
            dest.close()
    finally:
        source.close()
