"""Tokenizing in the background: fills ``documents.tokens`` outside the web process.

An import request only stores the documents; tokenizing 10,000 Korean documents of 2,000
characters with Kiwi costs ~30 ms of CPU each (profiled: ``kiwi.tokenize`` itself), about
five minutes of one core, and Kiwi needs ~0.5 GB. So the web process never imports Kiwi or
spaCy for this: after an import commits (and when the server starts) it queues a
``tokenize`` job (jobs.py), which the server's background process (background.py) runs at
the lowest CPU priority, pacing itself while requests arrive: it tokenizes every document
without tokens in small transactions. Until a document's tokens are stored the annotate page
snaps to words on its own and an export tokenizes that document itself.

At most one scan runs per database and at most one more waits (file locks, so that
``annotator tokenize`` and the background process never scan side by side): a scan first
takes the *waiting* lock (``wait=False``: without blocking, and returns when another waits),
then the *running* lock, then lets go of the waiting lock and scans. A scan always starts
after the queueing of its job, so no document is missed.

``annotator tokenize [PROJECT]`` runs the same job in the foreground.

A job holds the database open (inuse.py) while it scans, so that a restore or a schema
upgrade is refused meanwhile, and it does not start while one of them runs.

When a write fails because the database's disk is full (or the database cannot be reached:
``faults.kind``), the job stops writing: one line on stderr (the server's log), a *paused*
status (below), and it waits: 2 s, then twice as long each time up to a minute, retrying
the whole batch (read, tokenize, write: nothing computed before the pause is written after
it) when the time is up, or at once when the free space of the SQLite file's volume has
grown by a megabyte. It says so again when it resumes.

The status cannot go into the full database. It is a fixed-size record (``STATUS_BYTES``)
rewritten in place, so a full disk cannot refuse the rewrite: in /dev/shm (memory, not the
database's disk) keyed by the database URL, else in DATA_DIR, where the job writes it
first when it starts, while there is room. ``paused(url, data_dir)`` reads it for the
lead's page; a record whose job no longer runs (it holds the *running* lock) is ignored.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime

from annotator.core.errors import AnnotatorError
from annotator.core.faults import DISK_FULL, kind

BATCH = 16  # documents per write transaction: the write lock is held ~1 ms at a time
FIRST_RETRY_S, MAX_RETRY_S = 2.0, 60.0  # a paused job's waits between tries
POLL_S = 0.5  # how often a paused job looks at the volume's free space
SPACE_RETURNED = 1 << 20  # bytes more free than at the failure: try again at once
STATUS_BYTES = 512
SHM = "/dev/shm"
# why a job is paused (faults.kind), and what ends the pause
WHY = {DISK_FULL: ("the database's disk is full", "space is freed")}
UNREACHABLE = ("the database cannot be reached", "it can be reached again")


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def lock_paths(data_dir: str, url: str) -> tuple[str, str]:
    base = os.path.join(data_dir, f"tokenize-{_key(url)}")
    return base + ".wait.lock", base + ".run.lock"


def status_path(data_dir: str, url: str) -> str:
    if os.path.isdir(SHM) and os.access(SHM, os.W_OK):
        return os.path.join(SHM, f"annotator-tokenize-{_key(url)}.status")
    return os.path.join(data_dir, f"tokenize-{_key(url)}.status")


def _write_status(path: str, **fields) -> None:
    """Rewrite the status record in place (same size: no new blocks on a full disk)."""
    data = json.dumps(fields).encode()[:STATUS_BYTES].ljust(STATUS_BYTES)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)
    except OSError:
        pass  # the status is a courtesy to the lead's page; the job goes on without it


def paused(url: str, data_dir: str) -> dict | None:
    """``{"reason", "since", "message"}`` while a job on this database is paused, else None
    (reason: ``faults.kind``; since: ISO 8601, UTC; message: for the lead's page)."""
    path = status_path(data_dir, url)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            if os.fstat(fd).st_uid != os.getuid():
                return None  # not ours (/dev/shm is everyone's)
            raw = os.pread(fd, STATUS_BYTES, 0)
        finally:
            os.close(fd)
        found = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("state") != "paused" or not _job_runs(url, data_dir):
        return None
    reason, since = found.get("reason"), str(found.get("since"))
    why, until = WHY.get(reason, UNREACHABLE)
    return {"reason": reason, "since": since,
            "message": f"Background tokenizing is paused: {why} (since {since[11:16]} UTC). "
                       f"It resumes by itself when {until}."}


def _job_runs(url: str, data_dir: str) -> bool:
    """Whether a job holds the running lock (a job that died holds nothing)."""
    try:
        fd = os.open(lock_paths(data_dir, url)[1], os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _flock(path: str, blocking: bool) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def run_job(url: str, data_dir: str, project_id: int | None = None, wait: bool = True,
            run=None) -> int:
    """Tokenize every document without tokens (of one project, or all); returns the count.

    With ``wait=False`` it returns 0 at once when another job is already waiting to run.
    ``run`` (a queued job's jobs.Run) is paced between documents and told the progress.
    """
    os.makedirs(data_dir, exist_ok=True)
    wait_path, run_path = lock_paths(data_dir, url)
    wait_fd = _flock(wait_path, blocking=wait)
    if wait_fd is None:
        return 0
    run_fd = _flock(run_path, blocking=True)
    os.close(wait_fd)  # releases the waiting lock: the next kick may queue behind us
    status = status_path(data_dir, url)
    try:
        from annotator.storage.inuse import holding

        with holding(url, "`annotator tokenize`"):
            _write_status(status, state="running", pid=os.getpid())  # claims its blocks now
            return _scan(url, project_id, _Pause(url, status), run)
    finally:
        try:
            os.unlink(status)
        except OSError:
            pass
        os.close(run_fd)


class _Pause:
    """A job's waits while its writes fail for want of disk space (or of the database)."""

    def __init__(self, url: str, status: str):
        from annotator.storage.inuse import db_file

        self.status = status
        found = db_file(url)
        self.volume = str(found.parent) if found else None
        self.since: str | None = None
        self.delay = 0.0

    def free(self) -> int | None:
        if self.volume is None:
            return None  # PostgreSQL: simply try again
        try:
            st = os.statvfs(self.volume)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def wait(self, reason: str) -> None:
        """Say so (once), then wait until it is time to try again."""
        if self.since is None:
            self.since = datetime.now(UTC).isoformat(timespec="seconds")
            self.delay = FIRST_RETRY_S
            why, until = WHY.get(reason, UNREACHABLE)
            print(f"annotator: background tokenizing paused: {why}; it resumes by itself "
                  f"when {until}.", file=sys.stderr, flush=True)
            _write_status(self.status, state="paused", reason=reason, since=self.since,
                          pid=os.getpid())
        else:
            self.delay = min(self.delay * 2, MAX_RETRY_S)
        before = self.free()
        deadline = time.monotonic() + self.delay
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(POLL_S, left))
            now = self.free()
            if before is not None and now is not None and now >= before + SPACE_RETURNED:
                return  # space came back: try at once

    def wrote(self) -> None:
        if self.since is not None:
            print(f"annotator: background tokenizing resumed (paused since {self.since}).",
                  file=sys.stderr, flush=True)
            _write_status(self.status, state="running", pid=os.getpid())
            self.since = None


def _scan(url: str, project_id: int | None, pause: _Pause, run=None) -> int:
    from sqlalchemy import JSON

    from annotator.core import nlp
    from annotator.services.tokens import words_in
    from annotator.storage.db import Database
    from annotator.storage.fastsql import Statement

    pending = Statement(
        "SELECT d.id, d.text, p.language, p.settings FROM documents d "
        "JOIN projects p ON p.id = d.project_id WHERE d.id > :after AND d.tokens IS NULL "
        + ("AND d.project_id = :p " if project_id is not None else "")
        + "ORDER BY d.id LIMIT :n", results={3: JSON()})
    store = Statement("UPDATE documents SET tokens = :t WHERE id = :id AND tokens IS NULL", t=JSON())
    count = Statement("SELECT count(*) FROM documents d WHERE d.tokens IS NULL"
                      + (" AND d.project_id = :p" if project_id is not None else ""))
    db = Database(url)
    done, after, total = 0, 0, None
    try:
        while True:
            try:
                with db.session(write=False) as s:
                    rows = pending.all(s.connection(), {"after": after, "n": BATCH,
                                                        **({"p": project_id} if project_id else {})})
                    if total is None and run is not None:
                        total = count.all(s.connection(), {"p": project_id} if project_id else {})[0][0]
                if not rows:
                    return done
                out = []
                for doc_id, text, lang, settings in rows:
                    if run is not None:
                        run.pace()  # sleeps while the server is busy
                    words = words_in(settings)
                    bounds = nlp.get_tokenizer_boundaries(text, lang or "en", words)
                    out.append({"id": doc_id, "t": [[a, b] for a, b in bounds]})
                with db.session() as s:
                    store.many(s.connection(), out)
                    s.commit()
            except Exception as e:  # a full disk or a lost database: wait; else raise
                k = kind(e)
                if k is None:
                    raise
                db.dispose()  # fresh connections for the next try
                pause.wait(k)
                continue  # the same batch again, read and tokenized afresh
            pause.wrote()
            done += len(out)
            after = rows[-1][0]
            if run is not None:
                run.progress(done / max(total or 1, done), f"{done:,} of {max(total or 0, done):,} documents tokenized")
    finally:
        db.dispose()


# --- queued jobs ----------------------------------------------------------------------------

def run_queued(run, url: str, data_dir: str) -> dict:
    """A queued ``tokenize`` job (background.py): every document without tokens."""
    done = run_job(url, data_dir, run.job.project_id, wait=True, run=run)
    return {"documents": done}


def main(argv: list[str]) -> int:
    """The job in a process of its own (tests, benchmarks): ``URL DATA_DIR``."""
    url, data_dir = argv[0], argv[1]
    try:
        run_job(url, data_dir, wait=False)
    except AnnotatorError as e:  # maintenance holds the database
        print(f"annotator: tokenizing did not start: {e.message}", file=sys.stderr, flush=True)
    return 0


_kick_lock = threading.Lock()
_last_kick = 0.0


def in_background(app) -> bool:
    """Whether this app leaves tokenizing to the background process: under ``annotator
    serve`` (not in tests or commands) with ``BACKGROUND_TOKENIZE`` on."""
    return bool(app.config.get("SERVING") and app.config.get("BACKGROUND_TOKENIZE"))


def kick_for_app(app, min_interval: float = 0.0) -> None:
    """Queue a tokenize job (jobs.py) when the app leaves tokenizing to the background, unless
    one is queued already (it will see every document). One small write; never blocks on
    the job, which the server's background process runs."""
    global _last_kick
    if not in_background(app):
        return
    with _kick_lock:
        now = time.monotonic()
        if min_interval and now - _last_kick < min_interval:
            return
        _last_kick = now
    from annotator.storage.jobs import enqueue, queued

    database = app.extensions["annotator.db"]
    with database.session(write=False) as s:
        if queued(s, "tokenize"):
            return
    with database.session() as s:
        enqueue(s, "tokenize")
        s.commit()
