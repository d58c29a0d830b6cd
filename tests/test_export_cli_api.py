"""`annotator export` and GET /api/v1/projects/<pid>/export on a real database:
sources, statuses, majority, streaming, the alignment threshold, and no N+1."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from click.testing import CliRunner
from conftest import fixture_000
from sqlalchemy import event

from annotator.cli import main
from annotator.services.export_records import iter_records, majority_spans
from annotator.storage.models import Document, Project

ORG = lambda s, e: {"start": s, "end": e, "label": "ORG", "attributes": {}}  # noqa: E731
PERSON = lambda s, e: {"start": s, "end": e, "label": "PERSON", "attributes": {}}  # noqa: E731


@pytest.fixture
def setup(h):
    """A ko project with annotated-000 imported with its spans (user 'import'), one
    short document, and alice/bob/carol/dave annotating the short one."""
    lead = h.user("lena", "lead")
    users = {n: h.user(n) for n in ("alice", "bob", "carol", "dave")}
    p = h.project("News", language="ko")
    fx = fixture_000()
    spans = [{"start": s["start"], "end": s["end"], "label": s["label"],
              **({"attributes": {"stance": s["stance"]}} if "stance" in s else {})} for s in fx["spans"]]
    docs = h.docs(p, [{"id": fx["id"], "text": fx["text"], "spans": spans},
                      {"id": "short", "text": "메타는 알렉산드르 왕을 뽑았다. 구글도 놀랐다."}])
    short = docs[1]
    plan = {
        "alice": ([ORG(0, 2), PERSON(4, 11)], "submitted"),
        "bob": ([ORG(0, 2), PERSON(4, 11), ORG(18, 20)], "submitted"),
        "carol": ([ORG(0, 2)], "submitted"),
        "dave": ([ORG(18, 20)], "in_progress"),
    }
    for name, (sp, status) in plan.items():
        code, body = h.api(users[name]).put(f"/api/v1/documents/{short.id}/annotation",
                                            {"spans": sp, "version": 0, "status": status})
        assert code == 200, body
    code, body = h.api(users["dave"]).put(f"/api/v1/documents/{docs[0].id}/annotation",
                                          {"spans": [], "version": 0, "status": "skipped",
                                           "skip_reason": "too long"})
    assert code == 200, body
    return {"lead": lead, "users": users, "project": p, "docs": docs, "fixture": fx}


def run_cli(db_url, *args):
    res = CliRunner().invoke(main, ["--db", db_url, "export", *args], catch_exceptions=False)
    return res


def read_jsonl(path):
    return [json.loads(x) for x in open(path, encoding="utf8")]


def test_cli_all_sources_and_statuses(setup, db_url, tmp_path):
    p = setup["project"]
    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path / "a"))
    assert res.exit_code == 0, res.output
    rows = read_jsonl(tmp_path / "a" / "annotations.jsonl")
    who = sorted((r["id"], r["meta"]["annotator"]) for r in rows)
    # skipped (dave on 000) and in-progress (dave on short) are not exported
    assert who == sorted([(setup["fixture"]["id"], "import"), ("short", "alice"), ("short", "bob"),
                          ("short", "carol")])
    imported = next(r for r in rows if r["meta"]["annotator"] == "import")
    assert imported["text"] == setup["fixture"]["text"]
    assert len(imported["spans"]) == len(setup["fixture"]["spans"])
    assert all(s["token_start"] is not None for s in imported["spans"])
    assert {s["attributes"].get("stance") for s in imported["spans"] if s["label"] == "CLAIM"} <= \
        {"favor", "against", "neutral"}

    res = run_cli(db_url, "News", "--format", "jsonl", "--out", str(tmp_path / "b"), "--include-unfinished")
    assert res.exit_code == 0, res.output
    rows = read_jsonl(tmp_path / "b" / "annotations.jsonl")
    dave = [r for r in rows if r["meta"]["annotator"] == "dave"]
    assert len(dave) == 1 and dave[0]["id"] == "short" and dave[0]["meta"]["status"] == "in_progress"

    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path / "c"), "--source", "annotator:bob")
    rows = read_jsonl(tmp_path / "c" / "annotations.jsonl")
    assert [(r["meta"]["source"], len(r["spans"])) for r in rows] == [("annotator:bob", 3)]


def test_cli_majority(setup, db_url, tmp_path):
    p = setup["project"]
    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path), "--source", "majority")
    assert res.exit_code == 0, res.output
    [row] = read_jsonl(tmp_path / "annotations.jsonl")  # the import user is not an annotator
    # ORG(0,2): 3/3, PERSON(4,11): 2/3, ORG(18,20): 1/3 (dave's in-progress vote not counted)
    assert [(s["start"], s["end"], s["label"]) for s in row["spans"]] == [(0, 2, "ORG"), (4, 11, "PERSON")]
    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path / "u"), "--source", "majority",
                  "--include-unfinished")
    [row] = read_jsonl(tmp_path / "u" / "annotations.jsonl")
    # with dave: 4 annotators, PERSON 2/4 is not more than half
    assert [(s["start"], s["end"]) for s in row["spans"]] == [(0, 2)]


def test_majority_spans_unit():
    a = [ORG(0, 2)]
    b = [ORG(0, 2), {"start": 3, "end": 9, "label": "CLAIM", "attributes": {"stance": "favor"}}]
    c = [{"start": 3, "end": 9, "label": "CLAIM", "attributes": {"stance": "against"}}]
    assert majority_spans([a, b, c]) == [ORG(0, 2)]
    assert majority_spans([a, a]) == [ORG(0, 2)] and majority_spans([a, []]) == []


def test_cli_spacy_and_errors(setup, db_url, tmp_path):
    p = setup["project"]
    res = run_cli(db_url, str(p.id), "--format", "spacy", "--out", str(tmp_path / "s"), "--dev", "0")
    assert res.exit_code == 0, res.output
    # --dev 0: no (empty) dev.spacy; the config evaluates on train.spacy
    assert {f.name for f in (tmp_path / "s").iterdir()} == {"train.spacy", "config.cfg",
                                                            "export-report.json"}
    rep = json.loads((tmp_path / "s" / "export-report.json").read_text("utf8"))
    assert rep["records"] == 4 and rep["ok"] and rep["splits"] == {"train": 4}
    res = CliRunner().invoke(main, ["--db", db_url, "export", str(p.id), "--format", "jsonl",
                                    "--out", str(tmp_path / "x"), "--source", "annotator:nobody"])
    assert res.exit_code == 1 and "nobody" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["--db", db_url, "export", "no-such-project", "--format", "jsonl",
                                    "--out", str(tmp_path / "y")])
    assert res.exit_code == 1 and "no-such-project" in res.output
    res = run_cli(db_url, str(p.id), "--format", "spacy", "--provenance", "--out", str(tmp_path / "z"))
    assert res.exit_code == 1 and "jsonl only" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "z").exists()


def test_cli_provenance_on_request(setup, db_url, tmp_path):
    """Drawn by hand is said so; without the option, the lines carry no origin."""
    p = setup["project"]
    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path / "p"),
                  "--source", "annotator:bob", "--provenance")
    assert res.exit_code == 0, res.output
    [row] = read_jsonl(tmp_path / "p" / "annotations.jsonl")
    assert [s["origin"] for s in row["spans"]] == [{"source": "hand"}] * 3
    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path / "q"),
                  "--source", "annotator:bob")
    [row] = read_jsonl(tmp_path / "q" / "annotations.jsonl")
    assert not any("origin" in s for s in row["spans"])
    res = run_cli(db_url, str(p.id), "--format", "jsonl", "--out", str(tmp_path / "m"),
                  "--source", "majority", "--provenance")
    assert res.exit_code == 1 and "per annotator" in res.output


def _store_rule_based_tokens(h, doc_id):
    import spacy

    rb = spacy.blank("ko", config={"nlp": {"tokenizer": {"@tokenizers": "spacy.Tokenizer.v1"}}})
    with h.session() as s:
        d = s.get(Document, doc_id)
        d.tokens = [[t.idx, t.idx + len(t)] for t in rb(d.text) if not t.is_space]
        s.add(d)
        s.commit()


def test_stored_tokens_are_used_and_threshold_refuses(setup, h, db_url, tmp_path):
    p, docs = setup["project"], setup["docs"]
    _store_rule_based_tokens(h, docs[0].id)
    res = CliRunner().invoke(main, ["--db", db_url, "export", str(p.id), "--format", "spacy",
                                    "--out", str(tmp_path), "--source", "import"])
    assert res.exit_code == 1 and "min_aligned" in res.output
    rep = json.loads((tmp_path / "export-report.json").read_text("utf8"))
    assert not rep["ok"] and len(rep["misaligned"]) > 20
    assert not (tmp_path / "train.spacy").exists()
    res = run_cli(db_url, str(p.id), "--format", "spacy", "--out", str(tmp_path / "ok"), "--source", "import",
                  "--min-aligned", "0", "--dev", "0")  # one document: all of it to train
    assert res.exit_code == 0, res.output


def test_api_jsonl_streams(setup, h):
    api = h.api(setup["lead"])
    p = setup["project"]
    resp = api.client.get(f"/api/v1/projects/{p.id}/export?format=jsonl", headers=api.headers)
    assert resp.status_code == 200 and resp.mimetype == "application/x-ndjson"
    assert resp.is_streamed
    rows = [json.loads(x) for x in resp.get_data(as_text=True).splitlines()]
    assert sorted(r["meta"]["annotator"] for r in rows) == ["alice", "bob", "carol", "import"]
    resp = api.client.get(f"/api/v1/projects/{p.id}/export?source=majority", headers=api.headers)
    [row] = [json.loads(x) for x in resp.get_data(as_text=True).splitlines()]
    assert len(row["spans"]) == 2


def test_api_zip_formats_and_errors(setup, h):
    api = h.api(setup["lead"])
    p = setup["project"]
    # one annotated document: a spaCy export with a dev share would leave a split empty (refused,
    # see test_train_printed), so it trains on all of it
    for fmt, names, dev in (("spacy", {"train.spacy", "config.cfg"}, 0),
                            ("conll", {"train.conll", "dev.conll"}, 0.5),
                            ("hf", {"train.jsonl", "dev.jsonl", "tags.json"}, 0.5)):
        resp = api.client.get(f"/api/v1/projects/{p.id}/export?format={fmt}&dev={dev}&seed=1", headers=api.headers)
        assert resp.status_code == 200, resp.data[:300]
        z = zipfile.ZipFile(io.BytesIO(resp.data))
        got = {n.split("/", 1)[1] for n in z.namelist()}
        assert got == names | {"export-report.json"}
        rep = json.loads(z.read(f"project-{p.id}-all/export-report.json"))
        assert rep["records"] == 4 and rep["ok"]
    code, body = api.get(f"/api/v1/projects/{p.id}/export?format=xml")
    assert code == 400 and "format" in body["error"]
    code, body = api.get(f"/api/v1/projects/{p.id}/export?source=annotator:nobody")
    assert code == 404
    code, body = api.get(f"/api/v1/projects/{p.id}/export?format=spacy&dev=1.5")
    assert code == 422
    code, body = h.api(setup["users"]["alice"]).get(f"/api/v1/projects/{p.id}/export")
    assert code == 403
    code, body = api.get("/api/v1/projects/999/export")
    assert code == 404
    _store_rule_based_tokens(h, setup["docs"][0].id)
    code, body = api.get(f"/api/v1/projects/{p.id}/export?format=spacy&source=import")
    assert code == 422 and "min_aligned" in body["error"]
    assert body["details"] and body["details"][0]["reason"].endswith("inside a token")


def test_records_in_batches_without_n_plus_one(setup, h):
    p = setup["project"]
    extra = [{"id": f"d{i}", "text": f"문서 {i}: 메타는 좋다."} for i in range(25)]
    docs = h.docs(p, extra)
    api = h.api(setup["users"]["alice"])
    for d in docs[2:]:
        code, _ = api.put(f"/api/v1/documents/{d.id}/annotation",
                          {"spans": [ORG(len(d.text) - 7, len(d.text) - 5)], "version": 0, "status": "submitted"})
        assert code == 200
    engine = h.db.read_engine
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with h.db.session(write=False) as s:
        project = s.get(Project, p.id)
        event.listen(engine, "before_cursor_execute", count)
        try:
            recs = list(iter_records(s, project, "all", batch=10))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(recs) == 4 + 25
    selects = [st for st in statements if st.lstrip().upper().startswith("SELECT")]
    # 27 documents in batches of 10 -> 3 full batches (+1 empty probe), <= 3 queries each
    assert len(selects) <= 3 * 3 + 2, selects


def test_cli_out_defaults_to_export_dir(setup, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTATOR_EXPORT_DIR", str(tmp_path / "exports"))
    p = setup["project"]
    res = CliRunner().invoke(main, ["--db", db_url, "export", str(p.id), "--format", "hf",
                                    "--source", "annotator:alice"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "exports" / f"project-{p.id}-annotator-alice-hf"
    assert {f.name for f in out.iterdir()} == {"train.jsonl", "dev.jsonl", "tags.json", "export-report.json"}
