"""Tokenizing in the background: fills ``documents.tokens`` outside the web process.

An import request only stores the documents; tokenizing 10,000 Korean documents of 2,000
characters with Kiwi costs ~30 ms of CPU each (profiled: ``kiwi.tokenize`` itself), about
five minutes of one core, and Kiwi needs ~0.5 GB. So the web process never imports Kiwi or
spaCy for this: after an import commits (and when the server starts) it *kicks* a job, a
separate process at the lowest CPU priority (nice 19), which tokenizes every document
without tokens in small transactions and exits. Until a document's tokens are stored the
annotate page snaps to words on its own and an export tokenizes that document itself.

At most one job runs per database and at most one more waits: a job first takes the
*waiting* lock without blocking (if another job already waits, that one will see our
documents, and we exit), then the *running* lock (blocking), then lets go of the waiting
lock and scans. A scan always starts after the kick that started its job, so no document
is missed.

``annotator tokenize [PROJECT]`` runs the same job in the foreground.

A job holds the database open (inuse.py) while it scans, so that a restore or a schema
upgrade is refused meanwhile, and it does not start while one of them runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import threading
import time

from .errors import AnnotatorError

BATCH = 16  # documents per write transaction: the write lock is held ~1 ms at a time


def lock_paths(data_dir: str, url: str) -> tuple[str, str]:
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    base = os.path.join(data_dir, f"tokenize-{key}")
    return base + ".wait.lock", base + ".run.lock"


def _flock(path: str, blocking: bool) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def run_job(url: str, data_dir: str, project_id: int | None = None, wait: bool = True) -> int:
    """Tokenize every document without tokens (of one project, or all); returns the count.

    With ``wait=False`` (a kicked job) it returns 0 at once when another job is already
    waiting to run.
    """
    os.makedirs(data_dir, exist_ok=True)
    wait_path, run_path = lock_paths(data_dir, url)
    wait_fd = _flock(wait_path, blocking=wait)
    if wait_fd is None:
        return 0
    run_fd = _flock(run_path, blocking=True)
    os.close(wait_fd)  # releases the waiting lock: the next kick may queue behind us
    try:
        from .inuse import holding

        with holding(url, "`annotator tokenize`"):
            return _scan(url, project_id)
    finally:
        os.close(run_fd)


def _scan(url: str, project_id: int | None) -> int:
    from sqlalchemy import JSON

    from . import nlp
    from .db import Database
    from .fastsql import Statement
    from .tokens import words_in

    pending = Statement(
        "SELECT d.id, d.text, p.language, p.settings FROM documents d "
        "JOIN projects p ON p.id = d.project_id WHERE d.id > :after AND d.tokens IS NULL "
        + ("AND d.project_id = :p " if project_id is not None else "")
        + "ORDER BY d.id LIMIT :n", results={3: JSON()})
    store = Statement("UPDATE documents SET tokens = :t WHERE id = :id AND tokens IS NULL", t=JSON())
    db = Database(url)
    done, after = 0, 0
    try:
        while True:
            with db.session(write=False) as s:
                rows = pending.all(s.connection(), {"after": after, "n": BATCH,
                                                    **({"p": project_id} if project_id else {})})
            if not rows:
                return done
            out = []
            for doc_id, text, lang, settings in rows:
                words = words_in(settings)
                bounds = nlp.get_tokenizer_boundaries(text, lang or "en", words)
                out.append({"id": doc_id, "t": [[a, b] for a, b in bounds]})
            with db.session() as s:
                store.many(s.connection(), out)
                s.commit()
            done += len(out)
            after = rows[-1][0]
    finally:
        db.dispose()


# --- kicking a job from the web process --------------------------------------------------

_children: list[subprocess.Popen] = []
_kick_lock = threading.Lock()
_last_kick = 0.0


def kick(url: str, data_dir: str, min_interval: float = 0.0) -> None:
    """Start a background job (it exits at once if one is already queued). Never blocks."""
    global _last_kick
    with _kick_lock:
        now = time.monotonic()
        if min_interval and now - _last_kick < min_interval:
            return
        _last_kick = now
        _children[:] = [p for p in _children if p.poll() is None]  # reap finished jobs
        code = ("import os, sys; os.nice(19); from annotator.tokenize_job import main; "
                "sys.exit(main(sys.argv[1:]))")
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        _children.append(subprocess.Popen(
            [sys.executable, "-c", code, url, data_dir], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True))


def main(argv: list[str]) -> int:
    url, data_dir = argv[0], argv[1]
    try:
        run_job(url, data_dir, wait=False)
    except AnnotatorError as e:  # maintenance holds the database: the next kick comes after
        print(f"annotator: background tokenizing did not start: {e.message}", file=sys.stderr,
              flush=True)
    return 0


def in_background(app) -> bool:
    """Whether this app leaves tokenizing to background jobs: under ``annotator serve`` (not
    in tests or commands) with ``BACKGROUND_TOKENIZE`` on."""
    return bool(app.config.get("SERVING") and app.config.get("BACKGROUND_TOKENIZE"))


def kick_for_app(app, min_interval: float = 0.0) -> None:
    """``kick`` when the app leaves tokenizing to background jobs (``in_background``)."""
    if in_background(app):
        kick(app.config["DATABASE_URL"], app.config["DATA_DIR"], min_interval)
