"""Under `annotator serve`, a worker retires after a big request (an import body of 4 MiB or
more, an export) and the gunicorn master forks a fresh one; small requests keep it.

Why (annotator/web/server.py, docs/speed.md): what such a request leaves in a worker (CPython
arenas pinned by a few long-lived objects, pages copied from the master, SQLite caches) is
not given back by any trim; a fresh fork of the preloaded app is. The real server, a real
SQLite file, workers seen through /proc.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest
from conftest import Helper
from sqlalchemy import func, select
from test_durability import SECRET, Client, Server

from annotator import create_app
from annotator.storage.db import migrate
from annotator.storage.models import Document
from annotator.web.server import BIG_REQUEST

pytestmark = pytest.mark.slow


def workers(server: Server) -> set[int]:
    pid = server.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    out = set()
    for c in children:
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes()
        except OSError:
            continue
        if b"tokenize_job" not in cmd and b"annotator.services.background" not in cmd:
            out.add(int(c))
    return out


def two_workers_other_than(server: Server, old: set[int]):
    """The two workers, once there are two and they are not ``old``; else None."""
    w = workers(server)
    return w if len(w) == 2 and w != old else None


def wait_for(pred, what: str, deadline_s: float = 60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {deadline_s} s: {what}")


def post_raw(server: Server, token: str, path: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("POST", path, body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path / 'annotator.db'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": str(tmp_path / "setup"), "SECRET_KEY": SECRET})
    h = Helper(app)
    server = Server(url, tmp_path)
    server.start()
    try:
        yield server, h
    finally:
        server.stop()
        app.extensions["annotator.db"].dispose()


def test_a_worker_retires_after_a_big_request_and_is_replaced(served):
    server, h = served
    lead = h.user("lead", "lead")
    token = h.token(lead)
    project = h.project("Big import")
    api = Client(server, token)
    first = wait_for(lambda: two_workers_other_than(server, set()), "two workers")

    # small requests (a small import among them) leave the workers alone
    status, _ = post_raw(server, token, f"/api/v1/projects/{project.id}/documents",
                         b'{"id": "small", "text": "a small document"}')
    assert status == 201
    for _ in range(10):
        assert api.get("/api/v1/me")[0] == 200
    assert workers(server) == first

    # a big import: answered in full, then its worker gives way to a fresh one
    text = "word " * 1700  # 8,500 bytes a document
    body = "\n".join(json.dumps({"id": f"d{i}", "text": text}) for i in range(600)).encode()
    assert len(body) >= BIG_REQUEST
    status, data = post_raw(server, token, f"/api/v1/projects/{project.id}/documents", body)
    assert status == 201, data
    after = wait_for(lambda: two_workers_other_than(server, first), "a retired worker replaced")
    assert len(after & first) == 1  # one retired, the other kept serving
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(Document)
                        .where(Document.project_id == project.id)) == 601

    # an export too (its answer streams to the end first)
    status, raw = http_get(server, token, f"/api/v1/projects/{project.id}/export?format=jsonl"
                                          "&source=all&tokens=false&include_unfinished=true")
    assert status == 200, raw[:200]
    wait_for(lambda: two_workers_other_than(server, after), "the exporting worker replaced")
    assert api.get("/api/v1/health")[0] == 200


def holders(db: Path) -> list[int]:
    """The processes with ``db`` (or its -wal, -shm) open; e.g. a background tokenizer job."""
    names = {str(db), f"{db}-wal", f"{db}-shm"}
    out = []
    for proc in Path("/proc").iterdir():
        try:
            if any(str(fd.readlink()) in names for fd in (proc / "fd").iterdir()):
                out.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return out


def http_get(server: Server, token: str, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def no_tokenizer_job(monkeypatch):
    """The server starts no background tokenizer: a job that outlived it would close the
    database last, and clean up after the server."""
    monkeypatch.setenv("ANNOTATOR_BACKGROUND_TOKENIZE", "false")


def test_a_clean_stop_leaves_no_wal_for_the_next_start(no_tokenizer_job, served, tmp_path):
    """Every process closes its connections on SIGTERM (server._close_database), so the last
    one checkpoints the WAL into the database and removes it; left behind, the next start
    read the whole WAL (101 MB after the bench) to recover before its first answer."""
    server, h = served
    lead = h.user("lead", "lead")
    token = h.token(lead)
    project = h.project("Written")
    h.db.dispose()  # the test's own connections: the server's must be the last ones
    body = "\n".join(json.dumps({"id": f"d{i}", "text": "word " * 400}) for i in range(300)).encode()
    status, data = post_raw(server, token, f"/api/v1/projects/{project.id}/documents", body)
    assert status == 201, data
    assert Client(server, token).get("/api/v1/health")[0] == 200
    wal = tmp_path / "annotator.db-wal"
    assert wal.exists() and wal.stat().st_size > 0  # the server writes through the WAL

    server.stop()
    assert holders(tmp_path / "annotator.db") == []
    assert server.proc.returncode == 0, server.tail()
    assert not wal.exists(), f"{wal.stat().st_size} bytes of WAL left behind"
    import sqlite3

    conn = sqlite3.connect(tmp_path / "annotator.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM documents WHERE project_id = ?",
                            (project.id,)).fetchone() == (300,)
    finally:
        conn.close()


def test_the_master_settles_a_wal_its_workers_left(tmp_path):
    """Workers that close at the same moment each see the other's connection, and neither
    removes the WAL (CI once found 1.3 MB left); the master, last, settles it
    (checkpoint.settle). Here a process exits with its connection open, as such a worker."""
    import subprocess
    import sys

    from annotator.storage.checkpoint import settle

    path = tmp_path / "annotator.db"
    subprocess.run([sys.executable, "-c", (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')\n"
        "c.execute('CREATE TABLE t (x TEXT)')\n"
        "c.executemany('INSERT INTO t VALUES (?)', [('w' * 200,)] * 2000)\n"
        "os._exit(0)\n"), str(path)], check=True)
    wal = tmp_path / "annotator.db-wal"
    assert wal.exists() and wal.stat().st_size > 100_000

    settle(str(path))
    assert not wal.exists()
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2000,)
    finally:
        conn.close()
