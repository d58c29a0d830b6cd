"""Run the app on gunicorn (a production WSGI server), several worker processes, one database.

Settings, each measured with bench/bench_server.py (docs/speed.md):

- ``preload_app``: the app is imported once in the master, and the workers fork with it
  loaded, so they start at once (cold start) and share those pages (idle memory).
- ``gc.freeze()`` after loading: the objects of the loaded app are moved out of the
  garbage collector's reach. Collections no longer walk (and write to) them, so the
  workers' copies of those pages stay shared, and a request that allocates many objects
  (an import) is not slowed by full collections over the whole app.
- ``gthread`` workers with 2 threads each: keep-alive connections, and a long request (an
  export) leaves the other thread free. With 4 threads the 8-client save p99 was higher
  (more threads of one process waiting for the GIL), with 1 an export stalls its worker.
- no access log by default (``--access-log`` turns it on): measured 0.05-0.25 ms of CPU
  per request (up to a fifth of a health check) on the shared 2-core machine.
- no control socket: one fixed path shared by every gunicorn on the machine.
- the workers' heartbeat files in /dev/shm, touched at most once a second (gthread touches
  its file on every pass of its event loop; see ``_worker_class``).
- SQLite WAL checkpoints in a background thread (checkpoint.py), not inside a commit.
- glibc's mmap threshold raised to 8 MiB in each worker at fork (``_raise_mmap_threshold``).
- after a request with a large body or a large answer (an import, an export) the worker
  hands the freed heap back to the system (glibc ``malloc_trim``): measured, a worker that
  had parsed a 44 MB import stayed at 146 MB PSS without it, 47 MB with it (30 MB idle).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

BIG_REQUEST = 4 << 20  # bytes


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _post_request(worker, req, environ, resp) -> None:
    big = int(environ.get("CONTENT_LENGTH") or 0) >= BIG_REQUEST or "/export" in environ.get("PATH_INFO", "")
    if big and worker.malloc_trim is not None:
        worker.malloc_trim(0)


def _post_fork(server, worker) -> None:
    worker.malloc_trim = _malloc_trim()
    _raise_mmap_threshold()


def _raise_mmap_threshold(size: int = 8 << 20) -> None:
    """Make glibc serve allocations below ``size`` from the heap, as it does by itself after
    it has freed one such block (its dynamic mmap threshold), and trim the heap's top only
    past twice that: one 8 MiB block, allocated and freed.

    Profiled (page faults per 1 MiB read of a 44 MB import body): a fresh worker mapped and
    unmapped the server's 1 MiB read buffers afresh, 18,000-19,000 faults for the body
    against 3,000-4,000 in a worker that had already served an import; the whole request
    47,000 -> 27,000 faults, 0.36-0.40 -> ~0.30-0.38 s. ``malloc_trim`` after big requests
    still gives everything back."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        libc.free(libc.malloc(size))
    except (OSError, AttributeError):
        pass


def _worker_class():
    """gthread, with the heartbeat file touched at most once a second.

    Profiled (py-spy on a worker answering one client): gthread touches its heartbeat file
    (os.utime) on every pass of its event loop, i.e. several times per request, ~10% of the
    worker's CPU; the master only checks it against the 30 s timeout.
    """
    import time

    from gunicorn.workers.gthread import ThreadWorker

    class Worker(ThreadWorker):
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

    from . import create_app

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", _worker_class())
            self.cfg.set("threads", 2)
            self.cfg.set("accesslog", "-" if access_log else None)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("preload_app", True)
            if os.path.isdir("/dev/shm"):  # the heartbeat file is touched on every event
                self.cfg.set("worker_tmp_dir", "/dev/shm")
            self.cfg.set("post_fork", _post_fork)
            self.cfg.set("post_request", _post_request)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 27 would put one control socket per user in ~/.gunicorn, which
                # several servers on one machine would fight over; we do not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            app = create_app({**(overrides or {}), "BACKGROUND_CHECKPOINT": True, "SERVING": True})
            from .tokenize_job import kick_for_app

            kick_for_app(app)  # documents imported while no server ran (annotator import)
            gc.collect()
            gc.freeze()
            return app

    from .backup import serving
    from .config import load_config

    # Held for as long as the server (master and workers) runs: `annotator restore` checks it.
    with serving(load_config(overrides)["DATABASE_URL"]):
        _Server().run()
