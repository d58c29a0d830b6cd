"""Background work (jobs.py, background.py): queued in the database, run by the server's one
background process, which is the server's own child: stopping the server stops its job, which
goes back to the queue, and the next start resumes it. Real processes, a real SQLite file.

A job is kept slow on purpose by making the server look busy (the file the web workers touch
on each request, dated in the future): it then works a fifth of the time (jobs.Pacer).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PG_URL
from test_backup import make_docs, rows
from test_durability import Server, cli_env
from test_worker_retire import wait_for

from annotator.storage.db import Database
from annotator.storage.jobs import Pacer, busy_path, claim, enqueue, requeue_orphans

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="processes on one SQLite file")

TEXTS = [f"Document {i} says: " + " ".join(f"word{i}x{j}" for j in range(60)) for i in range(1500)]


def jobs(path) -> list[dict]:
    conn = sqlite3.connect(path)
    try:
        cols = ("id", "kind", "state", "progress", "owner", "message", "error")
        return [dict(zip(cols, r)) for r in conn.execute(
            f"SELECT {', '.join(cols)} FROM jobs ORDER BY id")]
    finally:
        conn.close()


def tokenized(path) -> int:
    return sum(t is not None for _i, _t, t in rows(path))


def look_busy(url: str, data_dir: str, seconds: float = 3600) -> None:
    """Make jobs believe requests keep arriving (until a real request touches the file)."""
    path = busy_path(url, data_dir)
    Path(path).touch()
    future = time.time() + seconds
    os.utime(path, (future, future))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def background_of(server: Server) -> list[int]:
    """The server's background processes (children of any of the master's threads: one that
    died is started again by a thread of the master's)."""
    pid = server.proc.pid
    out = []
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += (task / "children").read_text().split()
        except OSError:
            pass
    for c in children:
        try:
            if b"annotator.services.background" in Path(f"/proc/{c}/cmdline").read_bytes():
                out.append(int(c))
        except OSError:
            pass
    return out


@pytest.mark.slow
@sqlite_only
def test_the_server_owns_its_background_process_and_a_restart_resumes_the_job(tmp_path):
    db = make_docs(tmp_path / "annotator.db", TEXTS)  # imported while no server ran
    url, data = f"sqlite:///{db}", str(tmp_path / "data")
    look_busy(url, data)  # before the start: the job is slow from its first document
    server = Server(url, tmp_path)
    server.start()
    try:
        look_busy(url, data)  # the start's own health checks touched it
        found = wait_for(lambda: background_of(server), "the server's background process")
        assert len(found) == 1
        child = found[0]
        assert os.getpgid(child) == server.proc.pid  # in the server's group, not a session of its own
        wait_for(lambda: tokenized(db) > 0, "the job stores tokens")
        running = [j for j in jobs(db) if j["kind"] == "tokenize" and j["state"] == "running"]
        assert running and running[0]["owner"].endswith(f":{child}"), jobs(db)
        server.stop()
        assert not alive(child), "the background process outlived its server"
    finally:
        server.stop()
    done_before = tokenized(db)
    assert 0 < done_before < len(TEXTS), "the job was stopped in the middle"
    queued = [j for j in jobs(db) if j["kind"] == "tokenize"]
    assert [j["state"] for j in queued][-1] == "queued", queued  # back in the queue
    assert queued[-1]["progress"] > 0

    os.unlink(busy_path(url, data))  # idle now: the job runs flat out
    server.start()
    try:
        wait_for(lambda: tokenized(db) == len(TEXTS), "the restarted server resumed the job", 120)
        wait_for(lambda: jobs(db)[-1]["state"] == "done", "the job is done")
    finally:
        server.stop()
    from test_backup import tokens_fit_their_texts

    assert tokens_fit_their_texts(db)


@sqlite_only
def test_a_job_whose_process_died_goes_back_to_the_queue(tmp_path):
    """SIGKILL (no chance to requeue): the next start of this machine's background process
    finds the job running under a dead pid and queues it again."""
    db = make_docs(tmp_path / "annotator.db", TEXTS[:50])
    url, _data = f"sqlite:///{db}", str(tmp_path / "data")
    database = Database(url)
    try:
        with database.session() as s:
            enqueue(s, "tokenize")
            s.commit()
        code = ("import os, sys, time; from annotator.storage.db import Database; "
                "from annotator.storage.jobs import claim; d = Database(sys.argv[1]); "
                "print(claim(d, f'{os.uname().nodename}:{os.getpid()}').id, flush=True); "
                "time.sleep(60)")
        proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                                text=True, env=cli_env(tmp_path))
        job_id = int(proc.stdout.readline())
        assert jobs(db)[0]["state"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert claim(database, "someone-else:1") is None  # running, heartbeat fresh: not stale yet
        assert requeue_orphans(database) == 1
        assert [(j["id"], j["state"]) for j in jobs(db)] == [(job_id, "queued")]
        # a job that takes its process down every time (out of memory, say) fails the third time
        for _attempt in (2, 3):
            proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                                    text=True, env=cli_env(tmp_path))
            assert int(proc.stdout.readline()) == job_id
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            requeue_orphans(database)
        (job,) = jobs(db)
        assert job["state"] == "failed" and "died 3 times" in job["error"], job
        assert claim(database, "someone-else:1") is None
    finally:
        database.dispose()


@pytest.mark.slow
@sqlite_only
def test_the_server_starts_its_background_process_again_when_it_dies(tmp_path):
    db = make_docs(tmp_path / "annotator.db", TEXTS[:400])
    url, data = f"sqlite:///{db}", str(tmp_path / "data")
    look_busy(url, data)
    server = Server(url, tmp_path)
    server.start()
    try:
        look_busy(url, data)
        (first,) = wait_for(lambda: background_of(server), "the background process")
        wait_for(lambda: tokenized(db) > 0, "the job stores tokens")
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer would
        os.unlink(busy_path(url, data))
        second = wait_for(lambda: [p for p in background_of(server) if p != first],
                          "a new background process", 30)
        assert len(second) == 1
        wait_for(lambda: tokenized(db) == 400, "the job resumed and finished", 120)
        # -9, or no code: gunicorn's arbiter reaps any child of the master, and when it is first
        # the supervisor's wait() finds none (ECHILD) and cannot know how it ended
        assert re.search(r"the background process exited( \(-9\))?; starting it again",
                         server.log.read_text()), server.log.read_text()
    finally:
        server.stop()


def test_a_busy_server_slows_a_job_to_its_share(tmp_path):
    """Pacer: idle, no pause; while requests arrive, four times the work in sleep."""
    path = tmp_path / "busy"
    path.touch()
    idle = Pacer(str(path))
    os.utime(path, (0, 0))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.3:
        idle.pace()
    assert idle.slept == 0
    busy = Pacer(str(path))
    start = time.monotonic()
    worked = 0.0
    while time.monotonic() - start < 1.0:
        os.utime(path)  # a request now
        t = time.monotonic()
        while time.monotonic() - t < 0.01:
            pass
        worked += time.monotonic() - t
        busy.pace()
    share = worked / (time.monotonic() - start)
    assert 0.1 < share < 0.3, share
    assert busy.slept > 0.5


def test_the_queue_is_in_the_database(app, h):
    """The web process only queues: the import's tokenize job is a row, not a process, and a
    second queued one is not added while one waits."""
    from annotator.services.tokenize_job import kick_for_app

    p = h.project("P", language="en")
    h.docs(p, [{"text": "One text."}])
    app.config.update(SERVING=True, BACKGROUND_TOKENIZE=True)
    kick_for_app(app)
    kick_for_app(app)
    with h.session() as s:
        from sqlmodel import select

        from annotator.storage.models import Job

        found = s.execute(select(Job)).scalars().all()
    assert [(j.kind, j.state) for j in found] == [("tokenize", "queued")]
