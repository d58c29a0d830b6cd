"""The CLI through click's runner: commands do their job; user errors are one line, exit 1."""

import json

import pytest
from click.testing import CliRunner

from annotator.cli import main


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def _run(*args, input=None):
        return runner.invoke(main, ["--db", db_url, *args], input=input, catch_exceptions=False)
    return _run


def one_line_error(result):
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_users_and_tokens(run):
    assert run("init").exit_code == 0
    assert run("users", "add", "lena", "--role", "lead", "--password", "long-enough-pw").exit_code == 0
    r = run("users", "add", "ali", "--role", "annotator", input="secret-pw-1\nsecret-pw-1\n")
    assert r.exit_code == 0, r.output
    listing = run("users", "list").output
    assert "lena\tlead\tactive" in listing and "ali\tannotator" in listing and "import" not in listing
    token = run("users", "token", "lena").output.strip().splitlines()[-1]
    assert token.startswith("ann_") and len(token) > 30
    assert "already exists" in one_line_error(run("users", "add", "lena", "--password", "long-enough-pw"))
    assert "at least 8" in one_line_error(run("users", "add", "x", "--password", "short"))
    assert "does not exist" in one_line_error(run("users", "token", "nobody"))
    assert "pseudo-user" in one_line_error(run("users", "token", "import"))
    assert "Revoked 1" in run("users", "token", "lena", "--revoke").output


def test_projects_and_import_all_or_nothing(run, tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps([{"name": "GENE", "kind": "entity", "hotkey": "g"}]))
    assert "Created project 'Bio'" in run("projects", "create", "Bio", "--language", "en",
                                          "--labels", str(labels)).output
    assert run("projects", "create", "News", "--language", "ko", "--k", "3").exit_code == 0
    (tmp_path / "a.txt").write_bytes("메타는\r\n좋다 😀\n".encode())
    (tmp_path / "b.jsonl").write_text('{"id": "j1", "text": "first"}\n{"id": "j2", "text": "second"}\n')
    (tmp_path / "c.csv").write_text("id,text,source\nc1,\"hello, world\",wire\n")
    r = run("import", "News", str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl"), str(tmp_path / "c.csv"))
    assert "Imported 4 documents" in r.output, r.output
    assert "News\tko\tk=3\t4 documents" in run("projects", "list").output
    # One bad line refuses the whole import and names it.
    (tmp_path / "bad.jsonl").write_text('{"id": "n1", "text": "fine"}\n["not an object"]\n')
    msg = one_line_error(run("import", "News", str(tmp_path / "bad.jsonl")))
    assert "line 2" in msg and "object" in msg
    assert "4 documents" in run("projects", "list").output
    (tmp_path / "nocol.csv").write_text("body\nhello\n")
    assert "no 'text' column" in one_line_error(run("import", "News", str(tmp_path / "nocol.csv")))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    assert "byte offset 3" in one_line_error(run("import", "News", str(tmp_path / "latin1.txt")))
    assert "No project" in one_line_error(run("import", "Nope", str(tmp_path / "a.txt")))
    bad_labels = tmp_path / "bad.json"
    bad_labels.write_text('[{"name": "A"}, {"name": "A"}]')
    assert "duplicate label" in one_line_error(run("projects", "create", "X", "--labels", str(bad_labels)))


def test_imported_text_is_stored_exactly(run, tmp_path, h):
    from sqlalchemy import select

    from annotator.storage.models import Document

    run("projects", "create", "Exact", "--language", "ko")
    raw = "메타는\r\n  두 칸\u00a0NBSP 😀 e\u0301 \u1106\u1161"  # CRLF, NBSP, emoji, combining, NFD Hangul
    (tmp_path / "x.txt").write_bytes(raw.encode())
    assert run("import", "Exact", str(tmp_path / "x.txt")).exit_code == 0
    with h.session() as s:
        (doc,) = s.execute(select(Document)).scalars().all()
    assert doc.text == raw
