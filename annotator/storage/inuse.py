"""Who has the SQLite database open, and maintenance that needs nobody to.

Every process of ours that works on the database holds a *shared* flock on ``DB.lock`` (next
to the database file) for as long as it does: ``annotator serve`` (master and workers), the
background tokenizing job and ``annotator tokenize``, and the commands that open a session
(``annotator import``, ``users``, ``export`` ...). Maintenance that replaces the database or
changes its schema (``annotator restore``; a migration that has something to do) takes the
lock *exclusively* without waiting: when that fails it refuses, and names the holders. A
holder that finds maintenance running refuses to start instead.

Naming the holders: the kernel's list of locks (``/proc/locks``: type, pid, device and inode
of every flock) gives the pid of each holder of ``DB.lock``, and ``/proc/PID/cmdline`` what
it is. Nothing is recorded by the holders, so nothing can go stale: a process that died
holds no lock. Where ``/proc/locks`` cannot be read, the refusal says that the database is
open without naming anyone.

Maintainers queue on ``DB.maint.lock`` first (blocking), so that processes starting together
on a fresh database, each wanting to migrate it, take turns instead of refusing each other.

PostgreSQL has no file to lock: nothing here applies (restore is ``pg_restore``, and
migrations hold an advisory lock, see db.py).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from annotator.core.errors import AnnotatorError


def db_file(url: str) -> Path | None:
    """The SQLite database file behind ``url``, or None (PostgreSQL, in-memory, URIs)."""
    if not url.startswith("sqlite"):
        return None
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).absolute()


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _try(fd: int, how: int) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def holding(url: str, what: str = "this command"):
    """Hold the shared lock while the body works on the database; refuse (AnnotatorError)
    while maintenance holds it."""
    path = db_file(url)
    if path is None:
        yield
        return
    fd = _open(lock_path(path))
    try:
        if not _try(fd, fcntl.LOCK_SH):
            raise AnnotatorError(
                f"{path} is being restored or migrated right now ({_named(path)}); "
                f"run {what} again when that has finished.")
        yield
    finally:
        os.close(fd)  # closing the last descriptor of the open file lets go of the lock


@contextmanager
def exclusive(url: str, what: str):
    """Hold the lock exclusively for maintenance (``what``: "annotator restore", "schema
    upgrade"); refuse, naming who has the database open, when anyone does."""
    path = db_file(url)
    if path is None:
        yield
        return
    queue = _open(path.with_name(path.name + ".maint.lock"))
    try:
        fcntl.flock(queue, fcntl.LOCK_EX)  # one maintainer at a time; the others wait here
        fd = _open(lock_path(path))
        try:
            if not _try(fd, fcntl.LOCK_EX):
                who = holders(path)
                named = (f"{len(who)} process{'es' if len(who) != 1 else ''} of annotator: "
                         + ", ".join(f"pid {pid} ({role})" for pid, role in who)) if who else \
                    "another process (which one cannot be told here)"
                raise AnnotatorError(f"{what}: refused: {path} is open in {named}. "
                                     f"Stop {'them' if len(who) != 1 else 'it'} first.")
            yield
        finally:
            os.close(fd)
    finally:
        os.close(queue)


def _named(path: Path) -> str:
    who = holders(path)
    return ", ".join(f"pid {pid}: {role}" for pid, role in who) or "by another process"


def holders(path: Path) -> list[tuple[int, str]]:
    """(pid, role) of every process holding a flock on ``path``'s lock file, by pid."""
    try:
        st = os.stat(lock_path(path))
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    found: dict[int, bool] = {}  # pid -> the lock is on our device (not merely our inode)
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  READ 1234 00:2a:5678 0 EOF"; "1: -> FLOCK ..." is a waiter
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
        except ValueError:
            continue
        if int(inode) == st.st_ino:
            found[pid] = found.get(pid, False) or f"{major}:{minor}" == dev
    if any(found.values()):  # some file systems show another device number there
        found = {pid: True for pid, ours in found.items() if ours}
    return [(pid, role(pid)) for pid in sorted(found)]


def role(pid: int) -> str:
    """What process ``pid`` is, from its command line: "annotator serve", "background
    tokenizing job", or the command line itself (shortened)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "no longer running"
    if any("annotator.services.tokenize_job" in a for a in args):
        return "background tokenizing job"
    if any("annotator.services.background" in a for a in args):
        return "the server's background jobs"
    for i, a in enumerate(args):
        if a in ("annotator.cli", "annotator") or os.path.basename(a) == "annotator":
            rest = args[i + 1:]
            while rest and rest[0].startswith("-"):
                rest = rest[2:] if rest[0] == "--db" else rest[1:]
            return "annotator" + (f" {rest[0]}" if rest else "")
    shown = " ".join(args) or "?"
    return shown if len(shown) <= 60 else shown[:57] + "..."
