"""Run the app on gunicorn (a production WSGI server), several worker processes, one database.

Settings, each measured with bench/bench_server.py (docs/speed.md):

- ``preload_app``: the app is imported once in the master, and the workers fork with it
  loaded, so they start at once (cold start) and share those pages (idle memory).
- ``gc.freeze()`` after loading: the objects of the loaded app are moved out of the
  garbage collector's reach. Collections no longer walk (and write to) them, so the
  workers' copies of those pages stay shared, and a request that allocates many objects
  (an import) is not slowed by full collections over the whole app.
- ``gthread`` workers whose event loop reads each request before a thread gets it
  (worker.py: idle and slow clients cannot take the threads), with 2 *slots* each: at most
  2 requests of one worker run the app at once. A long request (an export) leaves the other
  slot free; with 4 the 8-client save p99 was higher (more threads of one process waiting
  for the GIL), with 1 an export stalls its worker. More threads than slots wait on slow
  uploads.
- no access log by default (``--access-log`` turns it on): measured 0.05-0.25 ms of CPU
  per request (up to a fifth of a health check) on the shared 2-core machine.
- no control socket: one fixed path shared by every gunicorn on the machine.
- the workers' heartbeat files in /dev/shm, touched at most once a second (gthread touches
  its file on every pass of its event loop; see ``_worker_class``).
- SQLite WAL checkpoints in a background thread (checkpoint.py), not inside a commit; and
  every process closes its connections on the way out, so that a clean stop leaves no WAL
  for the next start to read (``_close_database``).
- glibc's mmap and trim thresholds set in the master, inherited by the workers
  (``_fix_malloc_thresholds``).
- after a request with a large body or a large answer (an import, an export) the worker
  hands the freed heap back to the system (glibc ``malloc_trim``): measured, a worker that
  had parsed a 44 MB import stayed at 146 MB PSS without it, 47 MB with it (30 MB idle).
- ... and then retires: once nothing else runs in it, it stops like gunicorn's
  ``max_requests`` (kept-alive connections get "Connection: close") and the master forks a
  fresh one from the preloaded app. Measured (bench/mem_residual.py, the bench's work before
  its export): the web processes idled at 137-143 MB instead of 75 MB fresh, and what
  stayed was not in reach of any trim: CPython's small-object arenas (1 MiB; 44 and 55 in
  the workers against 33 in a fresh one, with the same 32 MB of live objects: an arena is
  given back only when every block in it is free, and a few long-lived objects created
  during an import pin them), pages copied from the master on write (the master's private
  pages 5 -> 20 MB, i.e. both workers had their own copy), SQLite page caches (3-7 MB per
  worker); ``malloc_trim`` and ``gc.collect()`` together gave back 6 MB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

BIG_REQUEST = 4 << 20  # bytes


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018  (glibc only)
        return libc
    except (OSError, AttributeError):  # not glibc
        return None


def _malloc_trim():
    libc = _libc()
    return None if libc is None else libc.malloc_trim


def _fix_malloc_thresholds() -> None:
    """Start every worker with the malloc thresholds a worker used to reach after its first
    big request (glibc's dynamic rule: a freed mmapped block of S bytes raises the mmap
    threshold to S, at most 32 MiB, and the trim threshold to 2 S).

    Measured (6 imports of 10,000 documents, each in a fresh worker since workers retire
    after one): 0.74 s of server CPU per import with glibc's initial 128 KiB thresholds, where
    every big block (a growing list, the body) is mmapped, faulted in and unmapped again, and
    0.61 s with these (0.65 s before workers retired). Memory is handed back by the explicit
    ``malloc_trim`` after big requests, and by retiring.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


def _post_request(worker, req, environ, resp) -> None:
    """After a big request (an import, an export) that succeeded: give the freed heap back,
    and retire the worker once it serves nothing else (see the module's docstring for what
    was measured); the worker (worker.py) counts what it serves, uploads being read included,
    and retires when the last of them is done.

    Waiting for the worker's other requests matters: a stopping gthread worker gives them
    only ``graceful_timeout`` to finish, and an export of 100,000 documents takes longer."""
    ok = resp is not None and 200 <= (getattr(resp, "status_code", None) or 0) < 300
    big = ok and (int(environ.get("CONTENT_LENGTH") or 0) >= BIG_REQUEST
                  or "/export" in environ.get("PATH_INFO", ""))
    if big and worker.malloc_trim is not None:
        worker.malloc_trim(0)
    with worker.busy_lock:
        worker.retire |= big


def _post_fork(server, worker) -> None:
    worker.malloc_trim = _malloc_trim()
    from annotator.storage.jobs import RequestNote, busy_path

    conf = server.app.callable.config  # preloaded (worker.wsgi is set after this hook)
    worker.request_note = RequestNote(busy_path(conf["DATABASE_URL"], conf["DATA_DIR"]))


QUIET_PATHS = ("/jobs", "/background", "/health")  # polled: watching work, never slowed by it


def _pre_request(worker, req) -> None:
    """Tell background jobs that requests arrive (jobs.Pacer: they slow down meanwhile); the
    lead's page polling a job's progress does not count, or watching a job would slow it."""
    if req.method == "GET" and req.path.endswith(QUIET_PATHS):
        return
    worker.request_note.note()


def _when_ready(server) -> None:
    """The master is up: start the server's background process (background.py)."""
    conf = server.app.callable.config
    if conf.get("BACKGROUND_JOBS"):
        from annotator.services import background

        background.start(conf["DATABASE_URL"], conf["DATA_DIR"])


def _close_database(app) -> None:
    """Close this process's database connections (the pools and the checkpoint thread's).

    SQLite checkpoints the WAL and removes it when the last connection to the database
    closes; a process that exits with connections open leaves it. Measured: after the bench
    (imports of 44 MB, an export) the WAL stayed at 101 MB, and the next start read all of it
    to recover before its first answer: 1.06 s to the first 200, against 0.66-0.80 s with no
    WAL left over."""
    from annotator.storage.checkpoint import stop_checkpointers

    db = getattr(app, "extensions", {}).get("annotator.db")
    if db is not None:
        db.dispose()
    stop_checkpointers()


def _worker_exit(server, worker) -> None:
    _close_database(getattr(worker, "wsgi", None))


def _on_exit(server) -> None:
    """The master, once every worker has exited: close its own connections, then settle the
    SQLite WAL (checkpoint.settle: workers that closed at the same moment may have left it)."""
    from annotator.services import background

    background.stop()  # its job goes back to the queue; the next start resumes it
    app = getattr(server.app, "callable", None)
    _close_database(app)
    from annotator.storage.checkpoint import settle
    from annotator.storage.db import sqlite_file

    path = sqlite_file(getattr(app, "config", {}).get("DATABASE_URL", ""))
    if path:
        settle(path)


def _worker_class():
    """worker.ArrivalWorker (gthread that reads requests before a thread gets them), with the
    heartbeat file touched at most once a second.

    Profiled (py-spy on a worker answering one client): gthread touches its heartbeat file
    (os.utime) on every pass of its event loop, i.e. several times per request, ~10% of the
    worker's CPU; the master only checks it against the 30 s timeout.
    """
    import time

    from annotator.web.worker import ArrivalWorker

    class Worker(ArrivalWorker):
        _last_notify = 0.0

        def notify(self):
            now = time.monotonic()
            if now - self._last_notify >= 1.0:
                self._last_notify = now
                super().notify()

    return Worker


def run(host: str, port: int, workers: int, overrides: dict | None = None,
        access_log: bool = False) -> None:
    from gunicorn.app.base import BaseApplication

    from annotator.web.app import create_app
    from annotator.web.worker import THREADS

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", _worker_class())
            self.cfg.set("threads", THREADS)
            self.cfg.set("accesslog", "-" if access_log else None)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("preload_app", True)
            if os.path.isdir("/dev/shm"):  # the heartbeat file is touched on every event
                self.cfg.set("worker_tmp_dir", "/dev/shm")
            self.cfg.set("post_fork", _post_fork)
            self.cfg.set("pre_request", _pre_request)
            self.cfg.set("when_ready", _when_ready)
            self.cfg.set("post_request", _post_request)
            self.cfg.set("worker_exit", _worker_exit)
            self.cfg.set("on_exit", _on_exit)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 27 would put one control socket per user in ~/.gunicorn, which
                # several servers on one machine would fight over; we do not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            app = create_app({**(overrides or {}), "BACKGROUND_CHECKPOINT": True, "SERVING": True})
            from annotator.services.tokenize_job import kick_for_app

            kick_for_app(app)  # documents imported while no server ran (annotator import)
            # ... a write with the master's own pool: closed before the workers fork, or they
            # would inherit its connection and share one PostgreSQL socket (and SQLite file
            # handle) between processes (seen: "connection in transaction status INTRANS").
            _close_database(app)
            # Loaded here, once, and shared: each retired worker's successor would import
            # them again on its first export (13 ms measured). No spaCy, Kiwi or numpy.
            from annotator.core import exporters  # noqa: F401

            _fix_malloc_thresholds()  # inherited by the workers
            gc.collect()
            gc.freeze()
            return app

    from annotator.core.config import load_config
    from annotator.storage.inuse import holding
    from annotator.web import worker

    worker.REQUEST_TIMEOUT = float(load_config(overrides)["REQUEST_TIMEOUT"])  # forked with it
    # Held for as long as the server (master and workers) runs: maintenance (restore, a
    # schema upgrade) is refused meanwhile, and a server cannot start during it (inuse.py).
    with holding(load_config(overrides)["DATABASE_URL"], "annotator serve"):
        _Server().run()
