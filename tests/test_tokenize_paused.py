"""The background tokenizing job on a full disk: it stops writing (one line in the log, no
traceback), says so on the lead's page and at GET /api/v1/background, waits, and resumes by
itself when space returns; nothing half-written, no tokens of another text.

Two ways to fill the database, both with the job in its own process: a small tmpfs under the
real server (needs root to mount; the server's own kicked job), and SQLite's max_page_count
(ANNOTATOR_SQLITE_MAX_PAGES, no root; `annotator tokenize`). SQLite only: on PostgreSQL the
job retries the same way, but filling its disk takes a tablespace on a tmpfs.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from conftest import PG_URL
from test_backup import DEADLINE_S, make_docs, rows, tokens_fit_their_texts
from test_durability import Client, Server, cli_env
from test_worker_retire import wait_for

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="fills an SQLite database (a file on a "
                                "tmpfs, or its page cap)")

TEXTS = [f"Document {i} says: " + " ".join(f"word{i}x{j}" for j in range(40)) for i in range(600)]
PAUSED = "background tokenizing paused: the database's disk is full"
RESUMED = "background tokenizing resumed"


def integrity(path) -> list:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def paused(get) -> dict | None:
    """What GET /api/v1/background says about a paused job, or None."""
    status, body = get("/api/v1/background")
    assert status == 200, body
    return body["tokenizing"] if body["tokenizing"]["paused"] else None


def stored(path) -> int:
    return sum(tokens is not None for _i, _t, tokens in rows(path))


def test_a_job_on_a_capped_database_pauses_shows_it_and_resumes_when_pages_are_freed(
        app, h, tmp_path):
    lead, ann = h.user("lena", "lead"), h.user("ann")
    p = h.project("P", language="en")
    h.docs(p, [{"text": t} for t in TEXTS])
    path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE filler (b BLOB)")  # what the operator will delete
    conn.execute("INSERT INTO filler VALUES (zeroblob(1000000))")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")  # no free pages left: the database is as full as its cap
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()

    env = {**cli_env(tmp_path), "ANNOTATOR_SQLITE_MAX_PAGES": str(pages)}
    assert env["ANNOTATOR_DATA_DIR"] == app.config["DATA_DIR"]  # where the page looks
    job = subprocess.Popen([sys.executable, "-m", "annotator.cli", "--db", path, "tokenize"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        api = h.api(lead)
        status = wait_for(lambda: paused(api.get), "the job says it is paused")
        assert status["reason"] == "disk_full"
        assert "Background tokenizing is paused: the database's disk is full (since " in \
            status["message"]
        client = app.test_client()
        h.login(client, lead)
        page = client.get(f"/projects/{p.id}").get_data(as_text=True)
        assert 'data-testid="background-paused"' in page
        assert "It resumes by itself when space is freed." in page
        assert h.api(ann).get("/api/v1/background")[0] == 403  # the lead's business
        assert stored(path) < len(TEXTS) and tokens_fit_their_texts(path)

        conn = sqlite3.connect(path, isolation_level=None)  # the operator frees space
        conn.execute("DROP TABLE filler")
        conn.close()
        out = job.communicate(timeout=DEADLINE_S)[0]
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0 and f"Tokenized {len(TEXTS)} documents" in out, out
    assert out.count(PAUSED) == 1 and out.count(RESUMED) == 1 and "Traceback" not in out, out
    assert stored(path) == len(TEXTS) and tokens_fit_their_texts(path)
    assert integrity(path) == ["ok"]
    assert api.get("/api/v1/background")[1]["tokenizing"] == {"paused": False}


@pytest.fixture
def small_tmpfs(tmp_path):
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
                       capture_output=True, text=True, check=False)
    if r.returncode:
        pytest.skip(f"mounting a tmpfs is not permitted here ({r.stderr.strip()}); the "
                    f"page-cap test shows the same without root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_the_servers_job_on_a_full_tmpfs_pauses_and_resumes_when_space_is_freed(
        small_tmpfs, tmp_path):
    from annotator.services.users import create_token, create_user
    from annotator.storage.db import Database

    db = make_docs(small_tmpfs / "annotator.db", TEXTS)  # imported while no server ran
    url = f"sqlite:///{db}"
    database = Database(url)
    try:
        with database.session() as s:
            token = create_token(s, create_user(s, "lena", "lead", "long-enough-pw"))
            s.commit()
    finally:
        database.dispose()
    filler = small_tmpfs / "filler"  # leave 128 KiB: less than the tokens need
    with open(filler, "wb") as f:
        f.write(b"\0" * (free_bytes(small_tmpfs) - (128 << 10)))

    server = Server(url, tmp_path)
    try:
        server.start()  # it kicks a job for the documents without tokens
        client = Client(server, token)
        assert wait_for(lambda: paused(client.get), "the job says it is paused")["reason"] \
            == "disk_full"
        assert stored(db) < len(TEXTS) and tokens_fit_their_texts(db)

        filler.unlink()  # the operator frees space
        wait_for(lambda: stored(db) == len(TEXTS), "every document has its tokens")
        wait_for(lambda: client.get("/api/v1/background")[1]["tokenizing"] == {"paused": False},
                 "the notice is gone")
    finally:
        server.stop()
    log = server.log.read_text("utf-8", "replace")
    assert log.count(PAUSED) == 1 and log.count(RESUMED) == 1, log
    assert "Traceback" not in log, log
    assert tokens_fit_their_texts(db) and integrity(db) == ["ok"]
