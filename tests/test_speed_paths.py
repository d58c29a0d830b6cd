"""The fast paths of issue 7 do the same thing as the slow ones they replace.

Speed itself is measured in bench/ (bench/run_all.py), never asserted here.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from conftest import PG_URL, ROOT

from annotator.cli import main
from annotator.core import nlp
from annotator.core.errors import AnnotatorError
from annotator.services.importing import decode_upload, parse_json_or_jsonl, parse_upload
from annotator.storage.db import Database, json_dumps, json_loads, migrate

# --- import parsing -------------------------------------------------------------------

def _slow(data: bytes):
    return parse_json_or_jsonl(decode_upload(data, "up")[0], "up")


def _outcome(fn, data: bytes):
    try:
        return ("ok", fn(data))
    except AnnotatorError as e:
        return ("error", e.status, e.message, e.details)


@pytest.mark.parametrize("data", [
    '{"text": "메타는 😀 a\\u00a0b", "id": 1}\n{"text": "x"}\n'.encode(),
    b'\xef\xbb\xbf{"text": "bom"}\r\n\r\n{"text": "crlf"}\r\n',
    b'[{"text": "a list"}, {"text": "of two"}]',
    b'{"text": "ok"}\n{"text": broken}\n{"text": "ok"}\n{bad\n',
    b'{"text": "bad utf-8 \xff here"}\n',
    b"\n  \n",
    b"",
    b'{"text": "lone \\ud800 surrogate"}\n',
    b'{"text": "nul \\u0000 char"}\n',
])
def test_bytes_parser_gives_what_the_str_parser_gives(data):
    assert _outcome(lambda d: parse_upload(d, "up", ".jsonl", "ours")[0], data) == _outcome(_slow, data)


# --- JSON columns ---------------------------------------------------------------------

def test_json_columns_round_trip_what_orjson_refuses():
    for value in ({"big": 2**70}, {"n": [1, 2.5, None, "메타 😀"]}, {1: "int key"}):
        assert json_loads(json_dumps(value)) == json.loads(json.dumps(value))
    assert json_loads('{"x": NaN}')["x"] != json_loads('{"x": NaN}')["x"]  # NaN, as json reads it


# --- tokens: stored boundaries are checked and expanded as before -----------------------

def _ref_is_clean(text, spans):
    prev = 0
    for s, e in spans:
        if s < prev or e <= s or e > len(text):
            return False
        if s > prev and not text[prev:s].isspace():
            return False
        if re.search(r"\s", text[s:e]):
            return False
        prev = e
    return prev == len(text) or text[prev:].isspace()


def _ref_doc_tokens(text, boundaries):
    out, prev = [], 0
    for s, e in boundaries:
        if s > prev:
            nlp._ws_run(text, prev, s, out)
        out.append((s, e, False))
        prev = e
    if prev < len(text):
        nlp._ws_run(text, prev, len(text), out)
    return out


def test_boundary_check_and_token_expansion_match_the_token_by_token_versions():
    rng = random.Random(7)
    alphabet = "ab 메\n\u00a0😀\r\t"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        if rng.random() < 0.5:
            spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        else:
            pts = sorted(rng.randint(0, len(text)) for _ in range(2 * rng.randint(0, 4)))
            spans = [(pts[i], pts[i + 1]) for i in range(0, len(pts), 2)]
            if spans and rng.random() < 0.3:
                spans.reverse()
        clean = _ref_is_clean(text, spans)
        assert nlp._is_clean(text, spans) == clean, (text, spans)
        if clean:
            assert nlp.doc_tokens(text, spans) == _ref_doc_tokens(text, spans), (text, spans)


# --- SQLite writers queue on the file lock ----------------------------------------------

@pytest.mark.skipif(bool(PG_URL), reason="the writer file lock is SQLite's")
def test_concurrent_writers_queue_and_a_rollback_releases_the_lock(tmp_path):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path}/w.db"
    migrate(url)
    db = Database(url)
    errors: list[str] = []

    def writer(k: int) -> None:
        try:
            for i in range(40):
                with db.session() as s:
                    s.execute(text("INSERT INTO users (username, role, active, created_at) "
                                   "VALUES (:u, 'annotator', 1, '2026-01-01 00:00:00')"),
                              {"u": f"w{k}-{i}"})
                    s.commit()
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session() as s:  # a failed transaction rolls back and lets go of the lock
        s.execute(text("SELECT 1"))
        s.rollback()
    done = threading.Event()

    def other():
        with db.session() as s:
            s.execute(text("UPDATE users SET active = active"))
            s.commit()
        done.set()

    threading.Thread(target=other).start()
    assert done.wait(5), "the write lock was still held after a rollback"
    with db.session(write=False) as s:
        assert s.execute(text("SELECT count(*) FROM users WHERE username LIKE 'w%'")).scalar() == 160
    db.dispose()


@pytest.mark.skipif(bool(PG_URL), reason="WAL checkpoints are SQLite's")
def test_background_checkpoint_copies_the_wal_into_the_database(tmp_path):
    from sqlalchemy import text

    path = tmp_path / "c.db"
    migrate(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}", background_checkpoint=True)
    with db.session() as s:
        assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        for i in range(300):
            s.execute(text("INSERT INTO users (username, role, active, created_at) "
                           "VALUES (:u, 'annotator', 1, '2026-01-01 00:00:00')"), {"u": f"{i:04d}" + "x" * 40})
        s.execute(text("CREATE TABLE filler (x TEXT)"))
        s.execute(text("INSERT INTO filler VALUES (:x)"), [{"x": "y" * 4000} for _ in range(300)])
        s.commit()
    before = path.stat().st_size
    deadline = time.monotonic() + 10
    while path.stat().st_size < before + 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.stat().st_size >= before + 1_000_000, "nothing was checkpointed"
    db.dispose()


# --- background tokenizing --------------------------------------------------------------

def test_tokenize_command_stores_the_tokens_the_exporters_would_compute(h, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    ko = h.project("Korean", language="ko")
    en = h.project("English", language="en")
    texts = {"k1": "메타는 알렉산드르 왕을 뽑았다.\r\n구글도 놀랐다 😀", "k2": "Scale AI는  148억 달러"}
    h.docs(ko, [{"id": k, "text": t} for k, t in texts.items()])
    h.docs(en, [{"id": "e1", "text": "Meta paid $14.8B for\u00a0Scale AI."}])
    runner = CliRunner()
    res = runner.invoke(main, ["--db", db_url, "tokenize", "Korean"], catch_exceptions=False)
    assert res.exit_code == 0 and "Tokenized 2 documents" in res.output, res.output
    res = runner.invoke(main, ["--db", db_url, "tokenize"], catch_exceptions=False)
    assert "Tokenized 1 documents" in res.output, res.output  # only the English one was left
    res = runner.invoke(main, ["--db", db_url, "tokenize"], catch_exceptions=False)
    assert "Tokenized 0 documents" in res.output, res.output
    lead = h.api(h.user("lead", "lead"))
    for project, lang in ((ko, "ko"), (en, "en")):
        status, listing = lead.get(f"/api/v1/projects/{project.id}/documents")
        for item in listing["items"]:
            status, doc = lead.get(f"/api/v1/documents/{item['id']}")
            assert [tuple(t) for t in doc["tokens"]] == nlp.get_tokenizer_boundaries(doc["text"], lang)


def test_a_kicked_job_leaves_when_another_one_is_waiting(tmp_path):
    from annotator.services import tokenize_job

    data = str(tmp_path / "data")
    os.makedirs(data)
    wait_path, _run_path = tokenize_job.lock_paths(data, "sqlite:///nowhere.db")
    holder = tokenize_job._flock(wait_path, blocking=True)
    try:
        assert tokenize_job.run_job("sqlite:///nowhere.db", data, wait=False) == 0
    finally:
        os.close(holder)


def test_the_web_process_never_loads_spacy_kiwi_or_numpy(tmp_path):
    """Import, read, save and export (without tokens) in a fresh interpreter; the heavy
    libraries stay out of it (spaCy ~1 s and ~100 MB, Kiwi ~4 s and ~0.5 GB). Only opening a
    document whose tokens no background job has stored yet tokenizes it in the web process."""
    url = PG_URL or f"sqlite:///{tmp_path}/web.db"
    code = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})
from conftest import Api, reset_postgres
from annotator import create_app
from annotator.storage.db import migrate
url = {url!r}
if url.startswith("postgresql"):
    reset_postgres(url)
migrate(url)
app = create_app({{"DATABASE_URL": url, "DATA_DIR": {str(tmp_path / 'data')!r}, "SECRET_KEY": "t"}})
from annotator.services.users import create_token, create_user
with app.extensions["annotator.db"].session() as s:
    u = create_user(s, "lead", "lead", "password-1"); s.commit(); tok = create_token(s, u); s.commit()
api = Api(app.test_client(), tok)
assert api.post("/api/v1/projects", {{"name": "K", "language": "ko"}})[0] == 201
body = "\\n".join(json.dumps({{"id": f"d{{i}}", "text": "메타는 알렉산드르 왕을 뽑았다 😀"}}, ensure_ascii=False)
                 for i in range(3)).encode()
assert api.post("/api/v1/projects/1/documents", raw=body)[0] == 201
import subprocess  # the tokens, as `annotator serve`'s background job stores them: another process
subprocess.run([sys.executable, "-m", "annotator.cli", "--db", url, "tokenize"], check=True,
               capture_output=True)
code, doc = api.get("/api/v1/documents/1")
assert code == 200 and doc["tokens"], doc
assert api.put("/api/v1/documents/1/annotation", {{"spans": [{{"start": 0, "end": 2, "label": "ORG",
               "attributes": {{}}}}], "version": 0, "status": "submitted"}})[0] == 200
assert api.get("/api/v1/documents/1/annotation")[0] == 200
assert api.get("/api/v1/projects/1/next")[0] in (200, 204)
resp = api.client.get("/api/v1/projects/1/export?format=jsonl&tokens=false", headers=api.headers)
line = json.loads(resp.data.splitlines()[0])
assert resp.status_code == 200 and "tokens" not in line and line["spans"][0]["end"] == 2, resp.data[:300]
print(json.dumps(sorted(m for m in ("spacy", "kiwipiepy", "numpy", "thinc") if m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


HOSTILE_TEXT = ("".join(chr(c) for c in range(1, 32)) + ' "quoted" back\\slash \x7f \u2028\u2029 '
                "</script> 메타 😀 e\u0301 \U0001F468\u200D\U0001F469 end")


def test_export_without_tokens_is_byte_exact_for_any_text(h):
    """The text is quoted by the database (fastsql JSON_TEXT), never decoded on the way: the
    line must be what orjson writes for the same text, control characters, quotes,
    backslashes, U+2028 and astral characters included, and span ends are checked against
    the length in code points."""
    import orjson

    lead = h.api(h.user("lead", "lead"))
    p = h.project("Bytes", language="en")
    n = len(HOSTILE_TEXT)
    (doc,) = h.docs(p, [{"id": "x", "text": HOSTILE_TEXT}])
    assert doc.text == HOSTILE_TEXT
    spans = [{"start": n - 3, "end": n, "label": "ORG", "attributes": {}}]
    alice = h.api(h.user("alice"))
    assert alice.put(f"/api/v1/documents/{doc.id}/annotation",
                     {"spans": spans, "version": 0, "status": "submitted"})[0] == 200
    resp = lead.client.get(f"/api/v1/projects/{p.id}/export?format=jsonl&tokens=false", headers=lead.headers)
    assert resp.status_code == 200, resp.data[:300]
    (line,) = resp.data.splitlines()
    assert b'"text":' + orjson.dumps(HOSTILE_TEXT) + b',"spans":' in line
    assert orjson.loads(line)["text"] == HOSTILE_TEXT
    assert orjson.loads(line)["spans"] == spans


def test_export_without_tokens(h):
    lead = h.api(h.user("lead", "lead"))
    alice = h.api(h.user("alice"))
    p = h.project("Plain", language="ko")
    (doc,) = h.docs(p, [{"id": "x", "text": "메타는 😀 스케일 AI를", "meta": {"src": "t"}}])
    spans = [{"start": 6, "end": 9, "label": "ORG", "attributes": {}},
             {"start": 0, "end": 2, "label": "ORG", "attributes": {}}]
    assert alice.put(f"/api/v1/documents/{doc.id}/annotation",
                     {"spans": spans, "version": 0, "status": "submitted"})[0] == 200
    resp = lead.client.get(f"/api/v1/projects/{p.id}/export?format=jsonl&tokens=false", headers=lead.headers)
    assert resp.status_code == 200
    (line,) = [json.loads(x) for x in resp.data.decode().splitlines()]
    assert line == {"id": "x", "text": doc.text,
                    "spans": sorted(spans, key=lambda s: s["start"]),
                    "meta": {"src": "t", "document_id": doc.id, "external_id": "x", "annotator": "alice",
                             "source": "annotator:alice", "status": "submitted"}}
    full = lead.client.get(f"/api/v1/projects/{p.id}/export?format=jsonl", headers=lead.headers)
    (with_tokens,) = [json.loads(x) for x in full.data.decode().splitlines()]
    assert [(s["start"], s["end"]) for s in with_tokens["spans"]] == [(s["start"], s["end"]) for s in line["spans"]]
    assert with_tokens["tokens"] and line["text"] == with_tokens["text"]
    status, body = lead.get(f"/api/v1/projects/{p.id}/export?format=spacy&tokens=false")
    assert status == 400 and body["error"] == "'tokens=false' is only for format=jsonl."


# --- the bulk import path: a body of over 1 MiB, several INSERT batches ----------------

def _big_upload(n: int, tail: list[dict] = ()) -> tuple[list[dict], bytes]:
    from annotator.services.importing import BATCH

    assert n > 2 * BATCH  # several batches, the last one partial
    records = [{"id": f"d{i}", "text": f"메타 {i}번 😀 Scale\tAI\n" + "가나다 " * 90,
                "meta": {"n": i, "emoji": "👍🏽"}} for i in range(n)]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in [*records, *tail]).encode()
    assert len(body) > (1 << 20)  # annotator/web/request.py's large-body read
    return records, body


def test_a_large_import_stores_every_text_as_text(h, db_url):
    """Texts go to the database as UTF-8 bytes (fastsql's UTF8()): they must come back as
    the same text, of SQL type text, with the hash of that text."""
    import hashlib

    lead = h.api(h.user("lead", "lead"))
    p = h.project("Bulk")
    records, body = _big_upload(1_201)
    status, out = lead.post(f"/api/v1/projects/{p.id}/documents", raw=body)
    assert status == 201 and out["imported"] == 1_201, out
    import gc

    assert gc.isenabled()
    with h.session() as s:
        from sqlalchemy import text as sql

        kind = "typeof(text)" if db_url.startswith("sqlite") else "pg_typeof(text)::text"
        rows = s.execute(sql(f"SELECT external_id, text, {kind}, content_hash FROM documents "
                             "WHERE project_id = :p ORDER BY id"), {"p": p.id}).all()
    assert [r[0] for r in rows] == [r["id"] for r in records]  # in upload order
    assert [r[1] for r in rows] == [r["text"] for r in records]
    assert {r[2] for r in rows} == {"text"}
    assert all(r[3] == hashlib.sha256(r[1].encode()).hexdigest() for r in rows)
    status, doc = lead.get(f"/api/v1/projects/{p.id}/documents?per_page=1")
    assert doc["items"][0]["length"] == len(records[0]["text"])


def test_a_refusal_after_written_batches_leaves_nothing(h):
    """Batches are written as soon as they are checked; a bad record after them must still
    leave the project as it was (the request's transaction is rolled back)."""
    lead = h.api(h.user("lead", "lead"))
    p = h.project("Bulk")
    _records, body = _big_upload(1_100, tail=[{"id": "d3", "text": "again"}, {"text": ""}])
    status, out = lead.post(f"/api/v1/projects/{p.id}/documents", raw=body)
    assert status == 422, out
    assert {d.get("line") for d in out["details"]} == {1_101, 1_102}, out["details"]
    status, docs = lead.get(f"/api/v1/projects/{p.id}/documents")
    assert docs["total"] == 0
    import gc

    assert gc.isenabled()
    status, out = lead.post(f"/api/v1/projects/{p.id}/documents", raw=_big_upload(1_100)[1])
    assert status == 201 and out["imported"] == 1_100  # and the same ids go in afterwards


@pytest.mark.skipif(not PG_URL, reason="TOAST compression is PostgreSQL's")
def test_postgresql_compresses_documents_with_lz4_where_it_can(h):
    """Migration 0004: pglz made a 10,000-document import ~1.7x slower than lz4."""
    from sqlalchemy import text as sql

    with h.session() as s:
        has_lz4 = "lz4" in (s.execute(sql("SELECT enumvals FROM pg_settings "
                                          "WHERE name = 'default_toast_compression'")).scalar() or [])
        got = dict(s.execute(sql("SELECT attname, attcompression FROM pg_attribute WHERE attrelid = "
                                 "'documents'::regclass AND attname IN ('text', 'tokens', 'meta')")).all())
    assert got == ({"text": "l", "tokens": "l", "meta": ""} if has_lz4 else
                   {"text": "", "tokens": "", "meta": ""})
