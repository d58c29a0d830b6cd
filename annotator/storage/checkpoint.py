"""WAL checkpoints off the request path, for the server's SQLite connections.

Profile (10,000-document import, 44 MB): SQLite's automatic checkpoint runs inside the
COMMIT that pushes the WAL past 1,000 pages, copying the WAL into the database and
fsyncing both: 0.25-0.3 s of that request's 0.6 s on this machine. The same happens to
one save in every couple of hundred, which is what its p99 sees. The server therefore
turns the automatic checkpoint off on its connections (``PRAGMA wal_autocheckpoint=0``)
and runs a PASSIVE checkpoint from one background thread per process whenever the WAL
has grown. PASSIVE never waits for readers or writers; a busy or failed checkpoint is
simply tried again on the next tick. Commands (``annotator import`` etc.) keep SQLite's
automatic checkpoint, and SQLite checkpoints when the last connection closes.
"""

from __future__ import annotations

import os
import sqlite3
import threading

TICK_S = 0.5

_started: dict[str, tuple[int, threading.Thread, threading.Event]] = {}
_guard = threading.Lock()


def _run(db_path: str, stop: threading.Event) -> None:
    wal = db_path + "-wal"
    seen = None
    conn = None
    try:
        while not stop.wait(TICK_S):
            try:
                stamp = os.stat(wal).st_mtime_ns
            except OSError:
                continue
            if stamp == seen:
                continue  # nothing written since the last checkpoint
            try:
                if conn is None:
                    conn = sqlite3.connect(db_path, timeout=0.1, isolation_level=None,
                                           check_same_thread=False)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                seen = stamp
            except sqlite3.Error:
                pass  # busy or locked: next tick
    finally:
        if conn is not None:
            conn.close()


def ensure_checkpointer(db_path: str) -> None:
    """Start this process's checkpoint thread for ``db_path`` (once per process: a forked
    worker starts its own)."""
    pid = os.getpid()
    with _guard:
        if db_path in _started and _started[db_path][0] == pid:
            return
        stop = threading.Event()
        thread = threading.Thread(target=_run, args=(db_path, stop), name="wal-checkpoint", daemon=True)
        _started[db_path] = (pid, thread, stop)
    thread.start()


def stop_checkpointers(timeout: float = 2.0) -> None:
    """Stop this process's checkpoint threads and close their connections (a clean exit:
    SQLite checkpoints and removes the WAL when the last connection to it closes)."""
    pid = os.getpid()
    with _guard:
        mine = [(path, t, ev) for path, (p, t, ev) in _started.items() if p == pid]
        for path, _, _ in mine:
            del _started[path]
    for _, _, stop in mine:
        stop.set()
    for _, thread, _ in mine:
        thread.join(timeout)


def settle(db_path: str) -> None:
    """Fold the WAL into the database and remove it, once this is the last process using it
    (the server's master, after its workers have exited).

    Each worker closes its connections on the way out, and SQLite removes the WAL when the
    last connection closes; but two workers that close at the same moment each still see
    the other's connection, and neither removes it (seen in CI: 1.3 MB left behind). One
    connection opened and closed after they are all gone settles it. Busy (another process
    still has the database open, e.g. a command): left as it is, which is safe."""
    if not os.path.exists(db_path + "-wal"):
        return
    try:
        conn = sqlite3.connect(db_path, timeout=1.0, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        pass
