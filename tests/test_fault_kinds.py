"""faults.kind on the errors the drivers really raise, and what the app answers for them:
a read retried once on a fresh connection, a write answered 503 with Retry-After."""

from __future__ import annotations

import errno
import socket
import sqlite3
import threading

import pytest
from conftest import PG_URL
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError

from annotator.core import faults


def test_sqlite_full_is_a_full_disk(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("PRAGMA max_page_count = 3")
    conn.execute("CREATE TABLE t (x)")
    with pytest.raises(sqlite3.OperationalError) as got:
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 4000,)] * 20)
        conn.commit()
    assert faults.kind(got.value) == faults.DISK_FULL
    conn.close()


def test_sqlite_busy_past_the_timeout_is_unavailable(tmp_path):
    a = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    b = sqlite3.connect(tmp_path / "x.db", isolation_level=None, timeout=0.05)
    a.execute("CREATE TABLE t (x)")
    a.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as got:
        b.execute("BEGIN IMMEDIATE")
    assert faults.kind(got.value) == faults.UNAVAILABLE
    a.execute("ROLLBACK")
    a.close()
    b.close()


def test_enospc_is_a_full_disk_and_other_errors_are_bugs(tmp_path):
    assert faults.kind(OSError(errno.ENOSPC, "No space left on device")) == faults.DISK_FULL
    assert faults.kind(OSError(errno.EACCES, "Permission denied")) is None
    assert faults.kind(ValueError("no")) is None
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as got:
        conn.execute("INSERT INTO t VALUES (1)")
    assert faults.kind(got.value) is None
    conn.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'y.db'}")
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (x UNIQUE)"))
        c.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(IntegrityError) as wrapped:
        with engine.begin() as c:
            c.execute(text("INSERT INTO t VALUES (1)"))
    assert faults.kind(wrapped.value) is None
    engine.dispose()


def test_a_refused_postgres_connection_is_unavailable():
    psycopg = pytest.importorskip("psycopg")
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(psycopg.OperationalError) as got:
        psycopg.connect(f"host=127.0.0.1 port={port} dbname=x connect_timeout=2")
    assert faults.kind(got.value) == faults.UNAVAILABLE
    engine = create_engine(f"postgresql+psycopg://x@127.0.0.1:{port}/x")
    with pytest.raises(Exception) as wrapped:
        engine.connect()
    assert faults.kind(wrapped.value) == faults.UNAVAILABLE
    engine.dispose()


# --- the app: a lost connection in the middle of a request ---------------------------------

def terminate_on_next_checkout(engine, times: int = 1):
    """Terminate the PostgreSQL backend of the next ``times`` connections the app checks out
    (after the pool's pre-ping passed), as a restart or an administrator would mid-request."""
    killer = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    done = []
    lock = threading.Lock()

    def on_checkout(dbapi_conn, _record, _proxy):
        with lock:
            if len(done) >= times:
                return
            done.append(dbapi_conn.info.backend_pid)
        with killer.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dbapi_conn.info.backend_pid})

    event.listen(engine, "checkout", on_checkout)

    def stop():
        event.remove(engine, "checkout", on_checkout)
        killer.dispose()

    return done, stop


@pytest.mark.skipif(not PG_URL, reason="terminates a PostgreSQL backend")
def test_a_read_whose_connection_dies_is_retried_once_and_answers(app, h):
    alice = h.user("alice")
    project = h.project()
    doc = h.docs(project, [{"text": "Meta hired Alexandr Wang."}])[0]
    api = h.api(alice)
    db = app.extensions["annotator.db"]
    done, stop = terminate_on_next_checkout(db.read_engine)
    status, body = api.get(f"/api/v1/documents/{doc.id}")
    stop()
    assert len(done) == 1  # the request's first connection was terminated under it
    assert status == 200 and body["text"] == "Meta hired Alexandr Wang."


@pytest.mark.skipif(not PG_URL, reason="terminates PostgreSQL backends")
def test_a_write_whose_connection_dies_answers_503_with_retry_after(app, h):
    alice = h.user("alice")
    project = h.project()
    doc = h.docs(project, [{"text": "Meta hired Alexandr Wang."}])[0]
    client = app.test_client()
    token = h.token(alice)
    db = app.extensions["annotator.db"]
    done, stop = terminate_on_next_checkout(db.write_engine, times=2)
    resp = client.put(f"/api/v1/documents/{doc.id}/annotation",
                      json={"version": 0, "spans": [{"start": 0, "end": 4, "label": "ORG",
                                                     "attributes": {}}]},
                      headers={"Authorization": f"Bearer {token}"})
    stop()
    assert done
    assert resp.status_code == 503, resp.data
    body = resp.get_json()
    assert body["ok"] is False and body["status"] == 503 and "try again" in body["error"]
    assert resp.headers["Retry-After"] == str(faults.RETRY_AFTER_S)
    status, got = h.api(alice).get(f"/api/v1/documents/{doc.id}/annotation")
    assert status == 200 and got["version"] == 0  # nothing half-saved
