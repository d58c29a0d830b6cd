"""`annotator backup` and `annotator restore` through the CLI, on real SQLite files.

These run the same with or without PostgreSQL: backup and restore are SQLite's (a PostgreSQL
URL gets one line pointing to pg_dump). Backups taken while the real server writes are in
test_durability.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from conftest import PG_URL
from test_worker_retire import wait_for

from annotator.cli import main
from annotator.services.users import create_user
from annotator.storage.db import Database, head_revision, migrate
from annotator.storage.inuse import exclusive, holders, holding


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ANNOTATOR_DATABASE_URL", raising=False)
    runner = CliRunner()

    def _run(db, *args):
        return runner.invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    return _run


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def make_db(path, *users: str):
    url = f"sqlite:///{path}"
    migrate(url)
    add_users(url, *users)
    return path


def add_users(url: str, *names: str) -> None:
    database = Database(url)
    try:
        with database.session() as s:
            for name in names:
                create_user(s, name, "annotator", "long-enough-pw")
            s.commit()
    finally:
        database.dispose()


def persons(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT username FROM users WHERE role != 'system' ORDER BY 1")
        return [r[0] for r in rows]
    finally:
        conn.close()


def pragma(path, name: str):
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(f"PRAGMA {name}")]
    finally:
        conn.close()


def test_backup_is_one_checked_file_and_keeps_an_existing_one(run, tmp_path):
    live = make_db(tmp_path / "live.db", "ana")
    out = tmp_path / "b.db"
    r = run(live, "backup", str(out))
    assert r.exit_code == 0, r.output
    assert f"to {out}" in r.output and "integrity ok" in r.output
    assert persons(out) == ["ana"] and pragma(out, "integrity_check") == ["ok"]
    assert pragma(out, "journal_mode") == ["delete"]  # self-contained: no -wal needed beside it
    assert [p.name for p in tmp_path.iterdir() if "b.db" in p.name] == ["b.db"]

    add_users(f"sqlite:///{live}", "ben")
    assert "already exists" in one_line_error(run(live, "backup", str(out)))
    assert persons(out) == ["ana"]  # untouched
    assert run(live, "backup", str(out), "--force").exit_code == 0
    assert persons(out) == ["ana", "ben"]

    r = run(live, "backup", str(tmp_path))  # click's own usage error
    assert r.exit_code == 2 and "is a directory" in r.output
    assert "live database itself" in one_line_error(run(live, "backup", str(live), "--force"))
    assert "does not exist" in one_line_error(run(live, "backup", str(tmp_path / "no" / "b.db")))
    r = run(tmp_path / "missing.db", "backup", str(tmp_path / "c.db"))
    assert "no database at" in one_line_error(r)
    assert not (tmp_path / "missing.db").exists()  # backing up does not create the source


@pytest.mark.parametrize("verb, tool", [("backup", "pg_dump"), ("restore", "pg_restore")])
def test_postgres_is_pointed_to_pg_dump_in_one_line(run, tmp_path, verb, tool):
    (tmp_path / "x.db").write_bytes(b"")
    url = "postgresql+psycopg://team:s3cret@db.example:5432/annotator"
    msg = one_line_error(run(url, verb, str(tmp_path / "x.db")))
    assert tool in msg and "postgresql://team:***@db.example:5432/annotator" in msg
    assert "s3cret" not in msg


def test_restore_replaces_only_with_yes_keeps_a_copy_and_checks_the_file(run, tmp_path):
    live = make_db(tmp_path / "live.db", "ana")
    backup = tmp_path / "b.db"
    assert run(live, "backup", str(backup)).exit_code == 0
    add_users(f"sqlite:///{live}", "late")

    assert "--yes" in one_line_error(run(live, "restore", str(backup)))
    assert persons(live) == ["ana", "late"]
    r = run(live, "restore", str(backup), "--yes")
    assert r.exit_code == 0, r.output
    assert persons(live) == ["ana"] and pragma(live, "integrity_check") == ["ok"]
    (copy,) = tmp_path.glob("live.db.pre-restore-*")
    assert f"Kept the previous database as {copy}" in r.output
    assert persons(copy) == ["ana", "late"]  # what was replaced can be restored in turn

    # Into a new place: no --yes needed, the folder is created.
    fresh = tmp_path / "new" / "annotator.db"
    assert run(fresh, "restore", str(backup)).exit_code == 0
    assert persons(fresh) == ["ana"]
    assert "database itself" in one_line_error(run(live, "restore", str(live), "--yes"))


def test_restore_refuses_what_is_not_an_intact_annotator_database(run, tmp_path):
    live = make_db(tmp_path / "live.db", "ana")
    before = live.read_bytes()
    (tmp_path / "notes.txt").write_text("not a database")
    r = run(live, "restore", str(tmp_path / "notes.txt"), "--yes")
    assert "not an SQLite database" in one_line_error(r)
    assert "no file at" in one_line_error(run(live, "restore", str(tmp_path / "nope.db"), "--yes"))

    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE things (x)")
    other.close()
    r = run(live, "restore", str(tmp_path / "other.db"), "--yes")
    assert "not an annotator database" in one_line_error(r)

    newer = tmp_path / "newer.db"
    assert run(live, "backup", str(newer)).exit_code == 0
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    assert "newer annotator" in one_line_error(run(live, "restore", str(newer), "--yes"))

    damaged = tmp_path / "damaged.db"
    assert run(live, "backup", str(damaged)).exit_code == 0
    data = bytearray(damaged.read_bytes())
    page = pragma(damaged, "page_size")[0]
    for n in range(2, len(data) // page):  # every page after the first: headers and cells
        data[n * page: n * page + 64] = b"\xa5" * 64
    damaged.write_bytes(bytes(data))
    msg = one_line_error(run(live, "restore", str(damaged), "--yes"))
    assert "integrity_check" in msg or "damaged" in msg
    assert live.read_bytes() == before and not list(tmp_path.glob("live.db.pre-restore-*"))


def test_restore_is_refused_while_a_process_has_the_database_open(run, tmp_path):
    live = make_db(tmp_path / "live.db", "ana")
    backup = tmp_path / "b.db"
    assert run(live, "backup", str(backup)).exit_code == 0
    with holding(f"sqlite:///{live}"):  # what `annotator serve` holds while it runs
        msg = one_line_error(run(live, "restore", str(backup), "--yes"))
    assert "annotator restore: refused" in msg and f"pid {os.getpid()} (" in msg
    assert run(live, "restore", str(backup), "--yes").exit_code == 0


# --- with real processes: the background tokenizing job and `annotator serve` ----------------

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="SQLite files and their lock; "
                                 "PostgreSQL's restore is pg_restore")
DEADLINE_S = 60


def make_docs(path, texts: list[str]):
    """An annotator database with one project of documents whose tokens are not stored yet."""
    from annotator.services.importing import import_records
    from annotator.services.projects import create_project

    url = f"sqlite:///{path}"
    migrate(url)
    database = Database(url)
    try:
        with database.session() as s:
            p = create_project(s, "P", language="en")
            import_records(s, p, list(enumerate([{"text": t} for t in texts], 1)))
            s.commit()
    finally:
        database.dispose()
    return path


def rows(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, text, tokens FROM documents ORDER BY id").fetchall()
    finally:
        conn.close()


def tokens_fit_their_texts(path) -> bool:
    """Every stored token list is the tokenizer's for that document's own text."""
    import json

    from annotator.core.nlp import get_tokenizer_boundaries

    return all(tokens is None or [tuple(t) for t in json.loads(tokens)]
               == [tuple(t) for t in get_tokenizer_boundaries(text, "en")]
               for _id, text, tokens in rows(path))


@contextmanager
def writes_held(path):
    """Hold SQLite's write lock: a job that wants to store tokens waits (with the database
    open) until the block ends; a deterministic 'job in the middle of its work'."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def cli_proc(tmp_path, *args) -> subprocess.Popen:
    from test_durability import cli_env

    return subprocess.Popen([sys.executable, "-m", "annotator.cli", *args], cwd=tmp_path,
                            env=cli_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def restore_cli(tmp_path, live, backup) -> subprocess.CompletedProcess:
    from test_durability import cli

    return cli(tmp_path, "--db", str(live), "restore", str(backup), "--yes", timeout=DEADLINE_S)


OLD_TEXTS = [f"old text number {i}, long ago." for i in range(60)]
NEW_TEXTS = [f"Another text {i} entirely: {'x' * i}" for i in range(60)]


@sqlite_only
def test_restore_is_refused_while_a_tokenizing_job_works_naming_it(tmp_path):
    live = make_docs(tmp_path / "live.db", OLD_TEXTS)
    backup = make_docs(tmp_path / "b.db", NEW_TEXTS)  # same document ids, other texts
    before = rows(live)
    with writes_held(live):
        job = cli_proc(tmp_path, "--db", str(live), "tokenize")
        wait_for(lambda: job.pid in dict(holders(live)), "the job holds the database")
        r = restore_cli(tmp_path, live, backup)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert (f"annotator restore: refused: {live} is open in 1 process of annotator: "
                f"pid {job.pid} (annotator tokenize). Stop it first.") in r.stderr
        assert rows(live) == before and not list(tmp_path.glob("live.db.pre-restore-*"))
    out = job.communicate(timeout=DEADLINE_S)[0]
    assert job.returncode == 0 and "Tokenized 60 documents" in out, out
    r = restore_cli(tmp_path, live, backup)
    assert r.returncode == 0, r.stderr
    assert [(i, t) for i, t, _ in rows(live)] == [(i, t) for i, t, _ in rows(backup)]
    assert tokens_fit_their_texts(live)


@sqlite_only
def test_a_job_does_not_start_while_a_restore_runs(tmp_path):
    live = make_docs(tmp_path / "live.db", OLD_TEXTS)
    with exclusive(f"sqlite:///{live}", "annotator restore"):
        job = cli_proc(tmp_path, "--db", str(live), "tokenize")
        out = job.communicate(timeout=DEADLINE_S)[0]
    assert job.returncode == 1 and out.count("\n") == 1, out
    assert "is being restored or migrated right now" in out and f"pid {os.getpid()}" in out
    assert all(tokens is None for _i, _t, tokens in rows(live))


@sqlite_only
def test_restore_is_refused_while_serve_and_its_background_job_have_it_open(tmp_path):
    from test_durability import Server

    live = make_docs(tmp_path / "live.db", OLD_TEXTS)  # imported while no server ran:
    backup = make_docs(tmp_path / "b.db", NEW_TEXTS)   # the server queues a job at start
    before = rows(live)
    server = Server(f"sqlite:///{live}", tmp_path)
    try:
        server.start()
        with writes_held(live):  # the job stays in the middle of its work
            jobs = wait_for(lambda: [pid for pid, role in holders(live)
                                     if role == "the server's background jobs"], "a job runs")
            r = restore_cli(tmp_path, live, backup)
            assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
            assert (f"is open in 2 processes of annotator: pid {min(server.proc.pid, jobs[0])} "
                    in r.stderr)
            assert f"pid {server.proc.pid} (annotator serve)" in r.stderr
            assert f"pid {jobs[0]} (the server's background jobs)" in r.stderr
            assert rows(live) == before and not list(tmp_path.glob("live.db.pre-restore-*"))
        server.stop()  # its background process stops with it: nothing holds the database
    finally:
        server.stop()
    assert holders(live) == []
    r = restore_cli(tmp_path, live, backup)
    assert r.returncode == 0, r.stderr
    assert [(i, t) for i, t, _ in rows(live)] == [(i, t) for i, t, _ in rows(backup)]
    assert tokens_fit_their_texts(live)  # no tokens of the old texts in the restored ones


def test_a_schema_upgrade_is_refused_while_the_database_is_open_but_a_current_one_is_not(
        run, tmp_path):
    old = old_database(tmp_path / "old.db")
    with holding(f"sqlite:///{old}"):  # an older server still running on it
        msg = one_line_error(run(old, "init"))
        assert "Upgrading the schema to" in msg and f"pid {os.getpid()} (" in msg
        assert revision(old) == "0001"
        live = make_db(tmp_path / "live.db")
        with holding(f"sqlite:///{live}"):
            assert run(live, "init").exit_code == 0  # nothing to do: nobody is disturbed
    assert run(old, "init").exit_code == 0 and revision(old) == head_revision()


def revision(path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()


def old_database(old):
    """A database at the first schema revision, as an older annotator left it."""
    from alembic import command
    from alembic.config import Config

    from annotator.storage.db import MIGRATIONS, make_engine

    engine = make_engine(f"sqlite:///{old}", immediate=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    engine.dispose()
    sqlite3.connect(old).execute("PRAGMA journal_mode=DELETE").close()
    return old


def test_restore_migrates_an_older_backup(run, tmp_path):
    old = old_database(tmp_path / "old.db")
    target = tmp_path / "annotator.db"
    r = run(target, "restore", str(old))
    assert r.exit_code == 0, r.output
    assert f"migrated from schema 0001 to {head_revision()}" in r.output
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    assert conn.execute("SELECT count(*) FROM users WHERE username = 'gold'").fetchone()[0] == 1
    conn.close()
