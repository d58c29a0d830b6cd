"""One writer at a time on a SQLite file, queued by the kernel instead of by SQLite's busy sleeps.

Profile (bench_server, 8 clients saving at once into one SQLite file through 2 worker
processes): most of the p99 was time asleep, not work. A writer that finds the database
locked sleeps in SQLite's busy handler for 1, 2, 5, 10, 15, 20, 25, ... ms before it looks
again, so a lock held for half a millisecond can cost a waiter 10+ ms. Here every write
transaction first takes an exclusive ``flock`` on ``<database>-writelock`` (one thread per
process at a time, then one process at a time); a waiter is woken the moment the holder
commits or rolls back. SQLite's own locking (BEGIN IMMEDIATE, busy_timeout) stays as the
second wall for any writer that does not use this module.

The lock is released in the connection's ``commit``/``rollback``, after SQLite has
finished, via a ``sqlite3.Connection`` subclass given to ``sqlite3.connect(factory=...)``.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading


class _ProcessLock:
    """The lock file of one database in this process: a thread lock, then the file lock."""

    def __init__(self, path: str):
        self.path = path
        self.pid = os.getpid()
        self.threads = threading.Lock()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, timeout: float) -> None:
        if not self.threads.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked (waited for the write lock)")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


_locks: dict[str, _ProcessLock] = {}
_locks_guard = threading.Lock()


def process_lock(path: str) -> _ProcessLock:
    """This process's lock for ``path`` (a fresh one after a fork: file locks are per process)."""
    with _locks_guard:
        lock = _locks.get(path)
        if lock is None or lock.pid != os.getpid():
            lock = _locks[path] = _ProcessLock(path)
        return lock


def connection_factory(db_path: str, timeout: float):
    """A ``sqlite3.Connection`` class whose write transactions hold ``db_path-writelock``."""
    lock_path = db_path + "-writelock"

    class WriteLockedConnection(sqlite3.Connection):
        _held = None

        def begin_write(self, begin_sql: str) -> None:
            """Take the lock, then BEGIN; the lock is released when the transaction ends."""
            lock = process_lock(lock_path)
            lock.acquire(timeout)
            self._held = lock
            try:
                self.execute(begin_sql)
            except BaseException:
                self._release()
                raise

        def _release(self) -> None:
            lock, self._held = self._held, None
            if lock is not None:
                lock.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._release()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

    return WriteLockedConnection
