"""Background work queued in the database: tokenizing, training, predicting.

A job is a row of ``jobs`` (models.Job). The web process only *enqueues* (one small write);
the server's one background process (background.py) claims the oldest queued job and runs
it. Because the queue is in the database, a job survives a restart: a job whose process
stopped goes back to the queue (``requeue_orphans`` at start; a job whose heartbeat is older
than ``STALE_S`` is taken over by any server's background process, for a server that died
on another machine sharing the PostgreSQL database).

Annotators must not feel a job. It runs at the lowest CPU priority, and it *paces* itself
(``Pacer``): the web workers touch a file when a request arrives (``note_request``), and
while that happened in the last ``BUSY_WINDOW_S`` the job works at most ``BUSY_SHARE`` of
the time, sleeping between its small steps. Idle, it runs flat out.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import time
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlmodel import Session

from annotator.storage.models import Job, utcnow

MAX_ORPHANED = 3  # a job whose process died under it this many times fails
STALE_S = 120  # a running job's heartbeat older than this: its process is gone
HEARTBEAT_S = 2.0  # a running job writes its progress at most this often
DEDUPED = ("tokenize", "predict")  # a queued job of the same kind, project and params will do it
KEEP_FINISHED = timedelta(days=7)  # finished tokenize/predict jobs are forgotten after this
BUSY_WINDOW_S = 0.5  # a request within this long: the server is busy
BUSY_SHARE = 0.2  # of the time a job may work while the server is busy
SLICE_S = 0.03  # a job's work between two looks at the server
MAX_PAUSE_S = 2.0  # a job's longest pause (after a long step)
NOTE_EVERY_S = 0.05  # a web worker touches the busy file at most this often


class Stopped(Exception):
    """The job's process is stopping (or lost the job): the job goes back to the queue."""


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the queue ----------------------------------------------------------------------------

def enqueue(s: Session, kind: str, project_id: int | None = None, params: dict | None = None,
            user_id: int | None = None) -> Job:
    """Queue a job in the caller's transaction (committed with it). A tokenize or predict job
    identical to one still queued is not queued twice: that one will do the work."""
    params = params or {}
    if kind in DEDUPED:
        for job in s.execute(select(Job).where(Job.kind == kind, Job.state == "queued",
                                               Job.project_id == project_id)).scalars():
            if job.params == params:
                return job
    job = Job(kind=kind, project_id=project_id, params=params, created_by=user_id)
    s.add(job)
    s.flush()
    return job


def start_now(db, kind: str, project_id: int | None, params: dict | None, owner: str) -> Job:
    """A job run in the foreground by a command: recorded (for the lead's page) as running
    already, by the command's process."""
    now = utcnow()
    with db.session() as s:
        job = Job(kind=kind, project_id=project_id, params=params or {}, state="running",
                  owner=owner, started_at=now, heartbeat_at=now)
        s.add(job)
        s.commit()
        return job


def queued(s: Session, kind: str, project_id: int | None = None) -> bool:
    return s.execute(select(Job.id).where(Job.kind == kind, Job.state == "queued",
                                          Job.project_id == project_id).limit(1)).first() is not None


def claim(db, owner: str, job_id: int | None = None) -> Job | None:
    """Take the oldest queued job (or a running one whose process is gone) for ``owner``; or
    that one job, if it is still queued."""
    now = utcnow()
    with db.session() as s:
        stale = and_(Job.state == "running", Job.heartbeat_at < now - timedelta(seconds=STALE_S))
        query = select(Job).where(or_(Job.state == "queued", stale) if job_id is None
                                  else and_(Job.id == job_id, Job.state == "queued"))
        query = query.order_by(Job.id).limit(1)
        if s.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = s.execute(query).scalar_one_or_none()
        if job is None:
            return None
        job.state, job.owner, job.heartbeat_at, job.error = "running", owner, now, None
        job.started_at = job.started_at or now
        s.add(job)
        s.execute(delete(Job).where(Job.kind.in_(DEDUPED), Job.state.in_(("done", "failed")),
                                    Job.finished_at < now - KEEP_FINISHED))
        s.commit()
        return job


def requeue_orphans(db, host: str | None = None) -> int:
    """Put back in the queue the running jobs of this machine's processes that are gone (a
    server stopped or killed while they ran): a restart resumes them at once. A job whose
    process died under it ``MAX_ORPHANED`` times (killed for want of memory each time, say)
    fails instead, saying so, rather than kill every background process after it."""
    host = host or socket.gethostname()
    with db.session() as s:
        gone = 0
        for job in s.execute(select(Job).where(Job.state == "running")).scalars():
            name, _, pid = (job.owner or "").rpartition(":")
            if name != host or not pid.isdigit() or _alive(int(pid)):
                continue
            gone += 1
            orphaned = (job.result or {}).get("orphaned", 0) + 1
            job.owner, job.result = None, {"orphaned": orphaned}
            if orphaned >= MAX_ORPHANED:
                job.state, job.finished_at = "failed", utcnow()
                job.error = (f"the process running this job died {orphaned} times (out of "
                             "memory? see the server's log); queue it again to retry")
            else:
                job.state = "queued"
            s.add(job)
        s.commit()
        return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recent(s: Session, project_id: int | None, limit: int = 10) -> list[dict]:
    """The latest jobs of a project and those of the whole database (tokenizing), newest
    first, for the lead; ``project_id`` None: every project's."""
    where = (or_(Job.project_id == project_id, Job.project_id.is_(None))
             if project_id is not None else True)
    rows = s.execute(select(Job).where(where).order_by(Job.id.desc()).limit(limit)).scalars()
    return [job_json(j) for j in rows]


def job_json(job: Job) -> dict:
    def iso(t):
        return t.isoformat() if t else None
    return {"id": job.id, "kind": job.kind, "project_id": job.project_id, "state": job.state,
            "progress": round(job.progress or 0.0, 3), "message": job.message or "",
            "error": job.error, "result": job.result, "params": job.params,
            "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at)}


# --- a running job -------------------------------------------------------------------------

class Run:
    """What a running job's code holds: ``pace()`` between small steps (sleeps while the server
    is busy; raises Stopped when the process stops) and ``progress(fraction, message)``."""

    def __init__(self, db, job: Job, owner: str, pacer: Pacer | None = None, stopping=None,
                 echo=None):
        self.db, self.job, self.owner = db, job, owner
        self.echo = echo  # told each new progress message (a command prints them)
        self.pacer = pacer
        self.stopping = stopping  # a threading.Event, set on SIGTERM
        self._written = 0.0
        self._fraction, self._message = job.progress or 0.0, job.message or ""

    @property
    def params(self) -> dict:
        return self.job.params or {}

    def pace(self) -> None:
        if self.stopping is not None and self.stopping.is_set():
            raise Stopped()
        if self.pacer is not None:
            self.pacer.pace(self.stopping)
        if time.monotonic() - self._written >= HEARTBEAT_S:
            self._write()

    def progress(self, fraction: float, message: str | None = None) -> None:
        self._fraction = max(0.0, min(1.0, float(fraction)))
        if message is not None and message != self._message:
            self._message = message
            if self.echo is not None:
                self.echo(message)
        self.pace()

    def _write(self) -> None:
        self._written = time.monotonic()
        with self.db.session() as s:
            done = s.execute(update(Job).where(Job.id == self.job.id, Job.owner == self.owner,
                                               Job.state == "running")
                             .values(progress=self._fraction, message=self._message[:500],
                                     heartbeat_at=utcnow()))
            s.commit()
        if done.rowcount == 0:
            raise Stopped()  # taken over (we were thought dead) or removed

    def finish(self, state: str, error: str | None = None, result: dict | None = None,
               message: str | None = None) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == self.job.id, Job.owner == self.owner).values(
                state=state, error=error, result=result, finished_at=utcnow(),
                progress=1.0 if state == "done" else self._fraction,
                message=(message if message is not None else self._message)[:500]))
            s.commit()

    def requeue(self) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == self.job.id, Job.owner == self.owner)
                      .values(state="queued", owner=None, progress=self._fraction))
            s.commit()


# --- the server being busy -----------------------------------------------------------------

def busy_path(url: str, data_dir: str) -> str:
    """The file the web workers touch on each request (in memory when /dev/shm exists)."""
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else data_dir
    return os.path.join(base or tempfile.gettempdir(), f"annotator-busy-{key}")


class RequestNote:
    """A web worker's side: ``note()`` on each request touches the busy file (at most every
    NOTE_EVERY_S: one utime call)."""

    def __init__(self, path: str):
        self.path = path
        self._last = 0.0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        except OSError:
            self.path = None

    def note(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._last < NOTE_EVERY_S:
            return
        self._last = now
        try:
            os.utime(self.path)
        except OSError:
            pass


class Pacer:
    """A job's side: while a request arrived within BUSY_WINDOW_S, work at most BUSY_SHARE of
    the time (after each slice of work, sleep four times as long); idle, never sleep."""

    def __init__(self, path: str | None, share: float = BUSY_SHARE):
        self.path = path
        self.share = share
        self._since = time.monotonic()
        self.slept = 0.0

    def busy(self) -> bool:
        if self.path is None:
            return False
        try:
            return time.time() - os.stat(self.path).st_mtime < BUSY_WINDOW_S
        except OSError:
            return False

    def pace(self, stopping=None) -> None:
        worked = time.monotonic() - self._since
        if worked < SLICE_S:
            return
        if self.busy():
            pause = min(worked * (1 - self.share) / self.share, MAX_PAUSE_S)
            if stopping is not None:
                if stopping.wait(pause):
                    raise Stopped()
            else:
                time.sleep(pause)
            self.slept += pause
        self._since = time.monotonic()
