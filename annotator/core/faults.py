"""What a database failure means for the person who sent the request: one place that tells a
full disk and a lost connection apart from a bug.

``kind(exc)`` reads an exception (SQLAlchemy's wrapper, the driver's own, or an OSError) and
answers ``"disk_full"``, ``"unavailable"`` or ``None`` (anything else: a bug, answered 500).
Pure: no Flask, no database; the driver modules are looked at only when already imported.

- disk full: SQLite ``SQLITE_FULL`` ("database or disk is full", also what ``max_page_count``
  answers), PostgreSQL SQLSTATE ``53100`` (``disk_full``), an ``OSError`` with ``ENOSPC``
  or ``EDQUOT``;
- unavailable: a connection that was lost or refused (SQLAlchemy marks it
  ``connection_invalidated``; PostgreSQL class ``08`` and ``57P01``-``57P03``, the server
  shutting down or terminating the backend; psycopg's ``OperationalError`` with no SQLSTATE,
  which is how a refused connection arrives), the pool timing out, and SQLite's ``SQLITE_BUSY``
  after the busy timeout or ``SQLITE_CANTOPEN`` (the file cannot be opened).
"""

from __future__ import annotations

import errno
import sqlite3

DISK_FULL = "disk_full"
UNAVAILABLE = "unavailable"

_SQLITE_FULL = getattr(sqlite3, "SQLITE_FULL", 13)
_SQLITE_BUSY = getattr(sqlite3, "SQLITE_BUSY", 5)
_SQLITE_CANTOPEN = getattr(sqlite3, "SQLITE_CANTOPEN", 14)
_PG_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03")

RETRY_AFTER_S = 5  # what a 503 tells the client to wait


def _chain(exc: BaseException, context: bool):
    """The exception and what it wraps (SQLAlchemy's ``.orig``, ``__cause__``; with
    ``context``, also what was being handled when it was raised), once each."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([getattr(e, "orig", None), e.__cause__] + ([e.__context__] if context else []))


def kind(exc: BaseException) -> str | None:
    """A full disk anywhere in the chain explains the rest (say, a rollback that failed after
    it); a lost connection counts only where it caused the error, so that a bug met while
    retrying after one is still a bug."""
    if any(_kind_of_one(e) == DISK_FULL for e in _chain(exc, context=True)):
        return DISK_FULL
    for e in _chain(exc, context=False):
        if _kind_of_one(e) == UNAVAILABLE:
            return UNAVAILABLE
    return None


def _kind_of_one(e: BaseException) -> str | None:
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None:
            primary = code & 0xFF
            if primary == _SQLITE_FULL:
                return DISK_FULL
            if primary in (_SQLITE_BUSY, _SQLITE_CANTOPEN):
                return UNAVAILABLE
        elif "database or disk is full" in str(e):
            return DISK_FULL
        elif "database is locked" in str(e):  # our write lock's wait ran out (writelock.py)
            return UNAVAILABLE
        return None
    if isinstance(e, OSError) and not isinstance(e, ConnectionError):
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return DISK_FULL
        return None
    state = getattr(e, "sqlstate", None)  # psycopg
    if state is not None or type(e).__module__.startswith("psycopg"):
        if state == "53100":
            return DISK_FULL
        if state and (state.startswith("08") or state in _PG_UNAVAILABLE_STATES):
            return UNAVAILABLE
        if state is None and type(e).__name__ in ("OperationalError", "InterfaceError"):
            return UNAVAILABLE  # refused, reset, closed: no SQLSTATE travels with those
        return None
    module = type(e).__module__
    if module.startswith("sqlalchemy"):
        if getattr(e, "connection_invalidated", False):
            return UNAVAILABLE
        if type(e).__name__ == "TimeoutError":  # the pool had no connection to give
            return UNAVAILABLE
    return None


def message(k: str) -> str:
    if k == DISK_FULL:
        return ("The database's disk is full, so this change was not saved; whoever runs the "
                "server must free space on the database's volume.")
    return (f"The database cannot be reached right now (connection lost or refused); try again "
            f"in {RETRY_AFTER_S} seconds.")


STATUS = {DISK_FULL: 507, UNAVAILABLE: 503}
