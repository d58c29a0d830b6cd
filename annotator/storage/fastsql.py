"""Hot-path SQL: a statement compiled once per dialect, run on the DBAPI cursor.

Profile (cProfile of 500 saves through the WSGI app, SQLite): SQLAlchemy spent ~7x more
CPU around each statement (compiled-cache lookup, execution context, CursorResult set-up)
than SQLite spent running it; a save runs about ten statements. A :class:`Statement` is
written once in portable SQL with ``:name`` parameters, compiled by SQLAlchemy for the
connection's dialect (so the parameter style, bind casts and type conversions are
SQLAlchemy's own), and then executed directly on the driver's cursor with the bind
processors applied by hand. Nothing here is SQLite-only; PostgreSQL gets its own compiled
form the first time it is used.

``UTF8(:name)`` in a statement stores a parameter given as UTF-8 ``bytes`` as text: SQLite
takes the bytes as they are (``CAST(? AS TEXT)``), PostgreSQL decodes them itself
(``convert_from``). Profiled on a 10,000-document import (SQLite): bound as ``str``, the
driver encoded each text again and kept the UTF-8 copy on the string (44 MB of fresh pages,
~11,000 page faults), though the importer had just encoded it for the hash.

``JSON_TEXT(column)`` reads a text column as two result columns: on SQLite the UTF-8
``bytes`` of its JSON string literal (``json_quote``) and its length in code points (the
text holds no NUL: nothing stores one); on PostgreSQL the text itself (``str``) and NULL.
Measured on a 10,000-document export (48 MB of text that goes out unchanged): decoding it
into ``str`` and orjson encoding it back cost ~100 ms of CPU (465 -> 360 ms in-process,
medians of 12 interleaved). On PostgreSQL ``to_json`` was slower than psycopg's decoding
plus orjson (534-652 ms against 312-371 ms for the same 10,000 texts), so there
``JSON_TEXT`` reads the text itself (and not its ``char_length``, which read every text a
second time: a 10,000-document export took 2.08 s instead of 1.06 s).

The transaction is still SQLAlchemy's: callers pass ``session.connection()`` (which begins
the transaction and fires the engine's BEGIN / BEGIN IMMEDIATE hooks) and commit through
the session.
"""

from __future__ import annotations

import re

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeEngine


class RawConnection:
    """A pooled driver connection outside any SQLAlchemy Session, for read-only look-ups.

    Profile (a save through the WSGI app): a Session of its own for the request's reads
    cost its construction, BEGIN, ROLLBACK and close, about as much as the look-ups. On
    SQLite (autocommit at the driver) each statement reads a consistent snapshot of its
    own; PostgreSQL's driver opens a transaction that the pool rolls back on return.
    """

    __slots__ = ("engine", "dialect", "dbapi_connection", "_pooled")

    def __init__(self, engine):
        self.engine = engine
        self.dialect = engine.dialect
        self._pooled = engine.raw_connection()
        self.dbapi_connection = self._pooled.dbapi_connection

    def close(self) -> None:
        self._pooled.close()

    def invalidate(self) -> None:
        """Drop the driver connection instead of returning it to the pool (it is broken)."""
        self._pooled.invalidate()


def _driver(conn):
    if isinstance(conn, RawConnection):
        return conn.dbapi_connection
    return conn.connection.dbapi_connection


def connection_of(source):
    """A Session's connection (beginning its transaction), or a RawConnection as it is.

    Statements bypass the Session, so its pending ORM changes are flushed first, as the
    Session's own queries would (autoflush)."""
    if isinstance(source, (RawConnection, Connection)):
        return source
    if source.autoflush and (source.new or source.dirty or source.deleted):
        source.flush()
    return source.connection()


def _announce(conn, cursor, sql: str, params, many: bool) -> None:
    """Tell the engine's ``before_cursor_execute`` listeners, as SQLAlchemy's own execution
    does (the query-count test listens there); nothing is done when nobody listens."""
    engine = conn.engine
    if engine.dispatch.before_cursor_execute:
        engine.dispatch.before_cursor_execute(conn if isinstance(conn, Connection) else None,
                                              cursor, sql, params, None, many)


# Portable markers -> each dialect's SQL (see the module docstring).
_MARKERS = {
    "UTF8": (re.compile(r"UTF8\(:(\w+)\)"),
             {"sqlite": r"CAST(:\1 AS TEXT)", "postgresql": r"convert_from(:\1, 'UTF8')"}),
    "JSON_TEXT": (re.compile(r"JSON_TEXT\((\w+)\)"),
                  {"sqlite": r"CAST(json_quote(\1) AS BLOB), length(\1)", "postgresql": r"\1, NULL"}),
}


def _dialect_sql(sql: str, dialect: str) -> str:
    for name, (pattern, forms) in _MARKERS.items():
        if name + "(" in sql:
            sql = pattern.sub(forms[dialect], sql)
    return sql


class Statement:
    """``Statement("SELECT ... WHERE id = :id", now=DateTime(timezone=True))``.

    Keyword arguments give the SQLAlchemy type of parameters that need converting (JSON,
    timestamps); the others are passed to the driver as they are. ``results`` names the
    type of result columns that need converting, by position.
    """

    __slots__ = ("sql", "types", "results", "_compiled")

    def __init__(self, sql: str, results: dict[int, TypeEngine] | None = None, **types: TypeEngine):
        self.sql, self.types, self.results = sql, types, results or {}
        self._compiled: dict[str, tuple] = {}

    def _for(self, dialect: Dialect) -> tuple:
        got = self._compiled.get(dialect.name)
        if got is None:
            sql = _dialect_sql(self.sql, dialect.name)
            stmt = text(sql).bindparams(*(bindparam(k, type_=t) for k, t in self.types.items()))
            compiled = stmt.compile(dialect=dialect)
            procs = {}
            for name, typ in self.types.items():
                proc = typ.dialect_impl(dialect).bind_processor(dialect)
                if proc is not None:
                    procs[name] = proc
            res = {}
            for pos, typ in self.results.items():
                proc = typ.dialect_impl(dialect).result_processor(dialect, None)
                if proc is not None:
                    res[pos] = proc
            order = tuple(compiled.positiontup) if compiled.positional else None
            got = self._compiled[dialect.name] = (compiled.string, order, procs, res)
        return got

    def _params(self, order, procs, params: dict):
        if procs:
            params = {k: (procs[k](v) if k in procs else v) for k, v in params.items()}
        return tuple(params[k] for k in order) if order is not None else params

    def cursor(self, conn: Connection, params: dict | None = None):
        """Execute; returns the DBAPI cursor (for rowcount and fetches)."""
        sql, order, procs, _ = self._for(conn.dialect)
        cur = _driver(conn).cursor()
        params = self._params(order, procs, params or {})
        _announce(conn, cur, sql, params, False)
        cur.execute(sql, params)
        return cur

    def many(self, conn: Connection, rows: list[dict], fixed: dict | None = None) -> None:
        """One statement for each row; ``fixed`` holds the parameters every row shares
        (converted once: a timestamp per row was ~2% of a 10,000-document import)."""
        sql, order, procs, _ = self._for(conn.dialect)
        cur = _driver(conn).cursor()
        if fixed:
            fixed = {k: (procs[k](v) if k in procs else v) for k, v in fixed.items()}
            procs = {k: p for k, p in procs.items() if k not in fixed}
        if fixed and order is not None:
            base = [fixed.get(k) for k in order]
            varying = [(i, k, procs.get(k)) for i, k in enumerate(order) if k not in fixed]
            params = []
            for r in rows:
                vals = base.copy()
                for i, k, proc in varying:
                    vals[i] = r[k] if proc is None else proc(r[k])
                params.append(tuple(vals))
        elif fixed:
            params = [self._params(order, procs, {**fixed, **r}) for r in rows]
        else:
            params = [self._params(order, procs, r) for r in rows]
        _announce(conn, cur, sql, params, True)
        cur.executemany(sql, params)
        cur.close()

    def _convert(self, row, res):
        if row is None or not res:
            return row
        row = list(row)
        for pos, proc in res.items():
            row[pos] = proc(row[pos])
        return tuple(row)

    def first(self, conn: Connection, params: dict | None = None):
        """The first row as a tuple (result types converted), or None."""
        cur = self.cursor(conn, params)
        row = cur.fetchone()
        cur.close()
        return self._convert(row, self._for(conn.dialect)[3])

    def all(self, conn: Connection, params: dict | None = None) -> list[tuple]:
        cur = self.cursor(conn, params)
        rows = cur.fetchall()
        cur.close()
        res = self._for(conn.dialect)[3]
        return [self._convert(r, res) for r in rows] if res else rows

    def rowcount(self, conn: Connection, params: dict | None = None) -> int:
        cur = self.cursor(conn, params)
        n = cur.rowcount
        cur.close()
        return n
