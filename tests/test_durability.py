"""The real server in its own processes (`annotator serve`: gunicorn master and workers) under
load, SIGKILL and online backup, on SQLite or on PostgreSQL (ANNOTATOR_TEST_DATABASE_URL).

Clients talk HTTP over loopback, one connection per request, so that a request the server
never answered can only be one whose fate the client does not know. Every test is bounded in
requests and in time. One server (and one database) serves the whole module; a test that
kills it starts it again.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from conftest import PG_URL, ROOT, Helper, reset_postgres
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from annotator import create_app
from annotator.services.annotations import find_annotation, history, spans_of
from annotator.storage.db import Database, migrate
from annotator.storage.models import Annotation, User

pytestmark = pytest.mark.slow

WORKERS = 2
CLIENTS = 16
SAVES_EACH = 8          # (a): 16 x 8 saves to 16 documents
GOLD_SAVES_EACH = 3     # (b): 16 x 3 acknowledged saves to one document's gold
DEADLINE_S = 180        # no test waits longer than this for its clients
TEXT = "word " * 200    # 1000 characters; a span [5k, 5k+4) is one word
SECRET = "durability-test-secret-not-for-production"


def span(k: int) -> dict:
    return {"start": 5 * k, "end": 5 * k + 4, "label": "PERSON", "attributes": {}}


def spans_for(who: int, n: int) -> list[dict]:
    """A different span list for every (client, save): words `who` (< 50) and 50 + n % 150."""
    return [span(who), span(50 + n % 150)]


def cli_env(work: Path) -> dict:
    env = {**os.environ, "ANNOTATOR_DATA_DIR": str(work / "data"), "ANNOTATOR_SECRET_KEY": SECRET,
           "ANNOTATOR_EXPORT_DIR": str(work / "exports"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("ANNOTATOR_DATABASE_URL", None)
    return env


def cli(work: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real `annotator` command in its own process."""
    return subprocess.run([sys.executable, "-m", "annotator.cli", *args], cwd=work,
                          env=cli_env(work), capture_output=True, text=True, timeout=timeout)


class Server:
    """`annotator serve --workers N` on a free loopback port, in its own process group."""

    def __init__(self, url: str, work: Path, env: dict | None = None):
        self.url, self.work, self.env = url, work, env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 90) -> None:
        self.starts += 1
        self.log = self.work / f"server-{self.starts}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "annotator.cli", "--db", self.url, "serve",
                 "--host", "127.0.0.1", "--port", "0", "--workers", str(WORKERS)],
                cwd=self.work, env={**cli_env(self.work), **self.env}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: master and workers
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
            log = self.log.read_text("utf-8", "replace")
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log)
            if found:
                self.port = int(found.group(1))
                try:
                    # answering is enough: 503 is a server saying its database is full
                    if Client(self, None).call("GET", "/api/v1/health")[0] in (200, 503):
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the server did not answer within {timeout} s:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-n:])

    def _wait_group_gone(self, pgid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _in_group(p, pgid)]
            if not alive:
                return
            time.sleep(0.05)
        raise AssertionError(f"processes of group {pgid} are still running")

    def kill(self) -> None:
        """SIGKILL to the whole process group: master and workers die at once, mid-request."""
        pgid = self.proc.pid
        os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._wait_group_gone(pgid, 30)

    def stop(self) -> None:
        if not self.running():
            return
        pgid = self.proc.pid
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
            self._wait_group_gone(pgid, 30)
        except (subprocess.TimeoutExpired, AssertionError):
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _in_group(proc_dir: Path, pgid: int) -> bool:
    try:
        fields = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and int(fields[2]) == pgid  # state, ppid, pgrp


class Client:
    """One user's HTTP client (Bearer token); a fresh loopback connection per request."""

    def __init__(self, server: Server, token: str | None):
        self.server, self.token = server, token

    def call(self, method: str, path: str, body=None) -> tuple[int, dict | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            headers = {"Connection": "close"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def get(self, path):
        return self.call("GET", path)

    def put(self, path, body):
        return self.call("PUT", path, body)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A fresh database and the real server on it, for the whole module."""
    work = tmp_path_factory.mktemp("served")
    if PG_URL:
        reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{work / 'annotator.db'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": str(work / "setup"), "SECRET_KEY": SECRET})
    server = Server(url, work)
    server.start()
    try:
        yield server, Helper(app)
    finally:
        server.stop()
        app.extensions["annotator.db"].dispose()


@pytest.fixture
def server(served) -> Server:
    srv, _h = served
    if not srv.running():  # an earlier test failed between a kill and its restart
        srv.start()
    return srv


@pytest.fixture
def h(served) -> Helper:
    return served[1]


@contextmanager
def scratch_postgres(suffix: str):
    """A second, empty PostgreSQL database beside ANNOTATOR_TEST_DATABASE_URL's, dropped after."""
    name = f"{make_url(PG_URL).database}_{suffix}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_threads(n: int, target) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S)
    assert not any(t.is_alive() for t in threads), f"clients still running after {DEADLINE_S} s"


def stored_history(h: Helper, doc_id: int, user_id: int) -> tuple[int, list[dict], list[dict]]:
    """(annotation version, its spans, every history row) straight from the database."""
    with h.session() as s:
        ann = find_annotation(s, doc_id, user_id)
        assert ann is not None, f"no annotation of document {doc_id} by user {user_id}"
        return ann.version, spans_of(s, ann.id), history(s, ann.id)


def user_id(h: Helper, name: str) -> int:
    with h.session() as s:
        return s.execute(select(User.id).where(User.username == name)).scalar_one()


# --- 3. Concurrency: 16 clients, no lost update --------------------------------------------

def test_sixteen_clients_saving_different_documents_lose_nothing(server, h):
    project = h.project("Sixteen documents")
    docs = h.docs(project, [{"id": f"d{i}", "text": TEXT} for i in range(CLIENTS)])
    users = [h.user(f"diff{i}") for i in range(CLIENTS)]
    clients = [Client(server, h.token(u)) for u in users]
    acked: dict[int, list[tuple[int, list]]] = {i: [] for i in range(CLIENTS)}
    failures: list = []

    def work(i: int) -> None:
        version = 0
        for n in range(SAVES_EACH):
            spans = spans_for(i, n)
            try:
                status, body = clients[i].put(f"/api/v1/documents/{docs[i].id}/annotation",
                                              {"spans": spans, "version": version})
            except OSError as e:
                failures.append((i, n, repr(e)))
                return
            if status != 200:
                failures.append((i, n, status, body))
                return
            assert body["spans"] == spans
            acked[i].append((body["version"], spans))
            version = body["version"]

    run_threads(CLIENTS, work)
    assert not failures, (failures[:3], server.tail())
    for i, u in enumerate(users):
        assert [v for v, _ in acked[i]] == list(range(1, SAVES_EACH + 1))
        version, spans, rows = stored_history(h, docs[i].id, u.id)
        # contiguous, no duplicates
        assert [r["version"] for r in rows] == list(range(1, SAVES_EACH + 1))
        assert {r["version"]: r["spans"] for r in rows} == dict(acked[i])
        assert version == SAVES_EACH and spans == acked[i][-1][1]
        assert clients[i].get(f"/api/v1/documents/{docs[i].id}/annotation")[1]["spans"] == spans


def test_sixteen_leads_saving_one_gold_with_versions_lose_nothing(server, h):
    """16 leads race for one annotation (the document's gold): each reads the version, saves
    on it, and on 409 reads again. Each version is acknowledged to exactly one of them."""
    project = h.project("One document")
    (doc,) = h.docs(project, [{"id": "only", "text": TEXT}])
    clients = [Client(server, h.token(h.user(f"gold_lead{i}", "lead"))) for i in range(CLIENTS)]
    acked: list[tuple[int, int, list]] = []
    conflicts = [0] * CLIENTS
    failures: list = []
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_S

    def work(i: int) -> None:
        rnd = random.Random(i)
        done = 0
        while done < GOLD_SAVES_EACH:
            if time.monotonic() > deadline:
                failures.append((i, "deadline"))
                return
            try:
                status, current = clients[i].get(f"/api/v1/documents/{doc.id}/annotation?user=gold")
                if status != 200:
                    failures.append((i, "read", status, current))
                    return
                spans = spans_for(i, done)
                status, body = clients[i].put(f"/api/v1/documents/{doc.id}/gold",
                                              {"spans": spans, "version": current["version"]})
            except OSError as e:
                failures.append((i, repr(e)))
                return
            if status == 200:
                assert body["version"] == current["version"] + 1 and body["spans"] == spans
                with lock:
                    acked.append((body["version"], i, spans))
                done += 1
            elif status == 409:
                conflicts[i] += 1
                time.sleep(rnd.uniform(0, 0.02))
            else:
                failures.append((i, "save", status, body))
                return

    run_threads(CLIENTS, work)
    assert not failures, (failures[:3], server.tail())
    total = CLIENTS * GOLD_SAVES_EACH
    versions = sorted(v for v, _i, _s in acked)
    assert versions == list(range(1, total + 1))  # no version acknowledged twice, none skipped
    assert sum(conflicts) > 0  # the clients really raced (else this test proves nothing)
    version, spans, rows = stored_history(h, doc.id, user_id(h, "gold"))
    assert [r["version"] for r in rows] == list(range(1, total + 1))
    assert {r["version"]: r["spans"] for r in rows} == {v: s for v, _i, s in acked}
    last = max(acked)
    assert version == total and spans == last[2]
    status, body = clients[0].get(f"/api/v1/documents/{doc.id}/annotation?user=gold")
    assert status == 200 and body["version"] == total and body["spans"] == last[2]


# --- 4. Crashes: SIGKILL mid-stream, backup while writing ------------------------------------

class Stream:
    """`n` annotators each saving their own document in a loop until stopped or cut off."""

    def __init__(self, server: Server, h: Helper, name: str, n: int = 4):
        project = h.project(name)
        self.docs = h.docs(project, [{"id": f"s{i}", "text": TEXT} for i in range(n)])
        self.users = [h.user(f"{name.lower().replace(' ', '_')}{i}") for i in range(n)]
        self.clients = [Client(server, h.token(u)) for u in self.users]
        self.acked: list[list[tuple[int, list]]] = [[] for _ in range(n)]
        self.in_flight = [False] * n
        self.cut_off: list = []   # connection errors (expected only after a kill)
        self.failures: list = []  # any answer but 200
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True)
                        for i in range(n)]

    def _work(self, i: int) -> None:
        version, n = 0, 0
        while not self.stop.is_set():
            spans = spans_for(i, n)
            self.in_flight[i] = True
            try:
                status, body = self.clients[i].put(
                    f"/api/v1/documents/{self.docs[i].id}/annotation",
                    {"spans": spans, "version": version})
            except (OSError, http.client.HTTPException) as e:  # killed mid-answer: not acknowledged
                self.cut_off.append((i, repr(e)))
                return
            self.in_flight[i] = False
            if status != 200:
                self.failures.append((i, status, body))
                return
            self.acked[i].append((body["version"], spans))
            version, n = body["version"], n + 1

    def start(self) -> Stream:
        for t in self.threads:
            t.start()
        return self

    def wait_for(self, acks: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while self.total() < acks:
            assert not self.failures, self.failures[:5]
            assert time.monotonic() < deadline, f"only {self.total()} saves in {DEADLINE_S} s"
            time.sleep(0.01)

    def total(self) -> int:
        return sum(len(a) for a in self.acked)

    def versions(self) -> list[int]:
        return [a[-1][0] if a else 0 for a in self.acked]

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(DEADLINE_S)
        assert not any(t.is_alive() for t in self.threads)


def integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def test_sigkill_mid_stream_loses_no_acknowledged_save(server, h):
    stream = Stream(server, h, "Killed").start()
    stream.wait_for(40)
    time.sleep(random.uniform(0, 0.05))
    in_flight = any(stream.in_flight)
    server.kill()
    stream.finish()
    assert not stream.failures, (stream.failures[:3], server.tail())  # no 5xx before the kill
    assert in_flight and stream.cut_off  # it really died under the clients' feet
    if not PG_URL:
        assert integrity(Path(make_url(server.url).database)) == ["ok"]
    server.start()  # the same database
    for i, (doc, user) in enumerate(zip(stream.docs, stream.users)):
        acked = dict(stream.acked[i])
        last = max(acked, default=0)
        version, spans, rows = stored_history(h, doc.id, user.id)
        # The save in flight at the kill may or may not have committed; nothing else is open.
        assert version in (last, last + 1)
        assert [r["version"] for r in rows] == list(range(1, version + 1))
        stored = {r["version"]: r["spans"] for r in rows}
        assert {v: stored[v] for v in acked} == acked  # every acknowledged save, as acknowledged
        assert spans == stored[version]
        # ...and the restarted server serves it and takes the next save.
        client = stream.clients[i]
        status, body = client.get(f"/api/v1/documents/{doc.id}/annotation")
        assert status == 200 and (body["version"], body["spans"]) == (version, spans)
        status, body = client.put(f"/api/v1/documents/{doc.id}/annotation",
                                  {"spans": [span(i)], "version": version})
        assert status == 200 and body["version"] == version + 1


def check_consistent(url: str) -> dict[int, int]:
    """A consistent snapshot: every annotation's version is its newest history row, versions
    are contiguous, and its spans are that row's spans. Returns {annotation id: version}."""
    database = Database(url)
    try:
        with database.session(write=False) as s:
            anns = s.exec(select(Annotation).order_by(Annotation.id)).all()
            assert anns
            for ann in anns:
                rows = history(s, ann.id)
                assert [r["version"] for r in rows] == list(range(1, ann.version + 1)), ann
                assert spans_of(s, ann.id) == rows[-1]["spans"], ann
            return {ann.id: ann.version for ann in anns}
    finally:
        database.dispose()


def versions_of(url: str, stream: Stream) -> list[int]:
    database = Database(url)
    try:
        with database.session(write=False) as s:
            out = []
            for doc, user in zip(stream.docs, stream.users):
                ann = find_annotation(s, doc.id, user.id)
                out.append(ann.version if ann else 0)
            return out
    finally:
        database.dispose()


def save_works(url: str, work: Path, doc_id: int, token: str) -> None:
    """The database takes a save through the real app (the token came along in the backup)."""
    app = create_app({"DATABASE_URL": url, "DATA_DIR": str(work / "check"), "SECRET_KEY": SECRET})
    try:
        c = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        current = c.get(f"/api/v1/documents/{doc_id}/annotation", headers=auth).get_json()
        resp = c.put(f"/api/v1/documents/{doc_id}/annotation", headers=auth,
                     json={"spans": [span(7)], "version": current["version"]})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["version"] == current["version"] + 1
    finally:
        app.extensions["annotator.db"].dispose()


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's backup; on PostgreSQL the pg_dump test below")
def test_backup_while_writing_is_a_consistent_snapshot_that_restores(server, h, tmp_path):
    stream = Stream(server, h, "Backed up").start()
    stream.wait_for(20)
    backups = []
    for k in range(3):
        before = stream.versions()
        path = tmp_path / f"backup-{k}.db"
        r = cli(server.work, "--db", server.url, "backup", str(path))
        assert r.returncode == 0, r.stderr
        assert "integrity ok" in r.stdout
        backups.append((path, before, stream.versions()))
    writes_during = stream.total()
    stream.wait_for(writes_during + 8)  # still writing after the last backup
    stream.finish()
    assert not stream.failures and not stream.cut_off, (stream.failures[:3], stream.cut_off[:3],
                                                         server.tail())

    for path, before, after in backups:
        assert integrity(path) == ["ok"]
        assert not path.with_name(path.name + "-wal").exists()  # one self-contained file
        url = f"sqlite:///{path}"
        check_consistent(url)
        # A snapshot from while it ran: at least what was acknowledged before it started,
        # at most what was acknowledged when it ended (plus a save committed in flight).
        for b, v, a in zip(before, versions_of(url, stream), after):
            assert b <= v <= a + 1

    # An existing file is kept unless --force.
    path = backups[0][0]
    r = cli(server.work, "--db", server.url, "backup", str(path))
    assert r.returncode == 1 and "already exists" in r.stderr and "--force" in r.stderr
    assert cli(server.work, "--db", server.url, "backup", str(path), "--force").returncode == 0

    # Restore: refused while the server runs on the target (naming it); into a new database
    # it works.
    r = cli(server.work, "--db", server.url, "restore", str(backups[-1][0]), "--yes")
    assert r.returncode == 1 and f"pid {server.proc.pid} (annotator serve)" in r.stderr, r.stderr
    restored = tmp_path / "restored" / "annotator.db"
    r = cli(server.work, "--db", str(restored), "restore", str(backups[-1][0]))
    assert r.returncode == 0, r.stderr
    url = f"sqlite:///{restored}"
    assert check_consistent(url) == check_consistent(f"sqlite:///{backups[-1][0]}")
    save_works(url, tmp_path, stream.docs[0].id, stream.clients[0].token)


@pytest.mark.skipif(not PG_URL or not shutil.which("pg_dump") or not shutil.which("pg_restore"),
                    reason="PostgreSQL with pg_dump and pg_restore")
def test_postgres_backup_is_pg_dump_while_writing(server, h, tmp_path):
    """On PostgreSQL `annotator backup` points to pg_dump, and the documented recipe gives a
    consistent snapshot while annotators save, which restores to a working database."""
    r = cli(server.work, "--db", server.url, "backup", str(tmp_path / "x.db"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "pg_dump" in lines[0]
    libpq = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)

    stream = Stream(server, h, "Dumped").start()
    stream.wait_for(20)
    dump = tmp_path / "annotator.dump"
    before = stream.versions()
    r = subprocess.run(["pg_dump", "-Fc", "-f", str(dump), libpq], capture_output=True, text=True,
                       timeout=120)
    after = stream.versions()
    assert r.returncode == 0, r.stderr
    stream.wait_for(stream.total() + 8)
    stream.finish()
    assert not stream.failures and not stream.cut_off, (stream.failures[:3], stream.cut_off[:3],
                                                         server.tail())

    with scratch_postgres("restored") as restored_url:
        target = make_url(restored_url).set(drivername="postgresql")
        target = target.render_as_string(hide_password=False)
        r = subprocess.run(["pg_restore", "--no-owner", "-d", target, str(dump)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        check_consistent(restored_url)
        for b, v, a in zip(before, versions_of(restored_url, stream), after):
            assert b <= v <= a + 1
        migrate(restored_url)  # already current: a no-op
        save_works(restored_url, tmp_path, stream.docs[0].id, stream.clients[0].token)


# --- 5. Several app processes: starting at once on a fresh database --------------------------

def test_processes_starting_at_once_on_a_fresh_database_all_succeed(tmp_path):
    """Several servers (here: `annotator init`, what `serve` runs first) migrating one empty
    database at the same moment: one migrates, the others wait and find it done."""
    fresh = scratch_postgres("fresh") if PG_URL else nullcontext(f"sqlite:///{tmp_path / 'f.db'}")
    with fresh as url:
        start_at_once(url, tmp_path)


def start_at_once(url: str, tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "annotator.cli", "--db", url, "init"],
                              cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=DEADLINE_S)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    database = Database(url)
    try:
        with database.session(write=False) as s:
            names = s.exec(select(User.username).where(User.role == "system")).all()
            assert sorted(names) == ["gold", "import"]
    finally:
        database.dispose()
