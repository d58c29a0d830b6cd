"""Other tools' files imported with their spans (Prodigy/spaCy JSONL, doccano JSONL, CoNLL
BIO, our own export): through the CLI, the API and the import page, all or nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import corpus_text

from annotator.cli import main

ART = corpus_text("001")  # emoji outside the BMP
SNIP = ART[:400]


def span(text, word, label, nth=0, **attrs):
    i = -1
    for _ in range(nth + 1):
        i = text.index(word, i + 1)
    return i, i + len(word), label, attrs


def lines(*objs):
    return ("\n".join(json.dumps(o, ensure_ascii=False) for o in objs) + "\n").encode("utf-8")


@pytest.fixture
def setup(h, db_url):
    lead = h.user("lena", "lead")
    p = h.project("News", language="ko")
    api = h.api(lead)

    def imported():
        """(external id, text, [(start, end, label, attributes)]) of every document."""
        code, page = api.get(f"/api/v1/projects/{p.id}/documents?per_page=500")
        out = []
        for d in page["items"]:
            _, doc = api.get(f"/api/v1/documents/{d['id']}")
            _, ann = api.get(f"/api/v1/documents/{d['id']}/annotation?user=import")
            out.append((doc["external_id"], doc["text"], doc["meta"],
                        [(s["start"], s["end"], s["label"], s["attributes"]) for s in ann["spans"]]))
        return out

    def cli(*args):
        return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    return lead, p, api, imported, cli


def test_doccano_jsonl_by_the_cli(setup, tmp_path, h):
    _lead, p, _api, imported, cli = setup
    a, b, _, _ = span(SNIP, "메타", "ORG")
    path = tmp_path / "doccano.jsonl"
    path.write_bytes(lines({"id": 7, "text": SNIP, "label": [[a, b, "ORG"]], "Comments": []},
                           {"text": "왕은", "entities": [{"id": 3, "label": "PERSON",
                                                          "start_offset": 0, "end_offset": 1}]}))
    res = cli("import", "News", str(path))
    assert res.exit_code == 0, res.output
    assert "Imported 2 documents" in res.output and "2 with annotations" in res.output
    docs = {d[0]: d for d in imported()}
    assert docs["7"][1] == SNIP and docs["7"][2] == {"Comments": []}
    assert docs["7"][3] == [(a, b, "ORG", {})]
    assert [x[3] for x in docs.values() if x[1] == "왕은"] == [[(0, 1, "PERSON", {})]]


def test_prodigy_jsonl_by_the_api_with_folded_stance(setup):
    _lead, p, api, imported, _cli = setup
    a, b, _, _ = span(SNIP, "메타", "ORG")
    rec = {"text": SNIP, "_input_hash": 1, "_task_hash": 2, "answer": "accept",
           "tokens": [{"text": SNIP[:3], "start": 0, "end": 3, "id": 0, "ws": False}],
           "spans": [{"start": a, "end": b, "label": "ORG", "token_start": 0, "token_end": 0},
                     {"start": a, "end": b + 3, "label": "CLAIM_favor"}]}
    code, body = api.post(f"/api/v1/projects/{p.id}/documents", raw=lines(rec))
    assert code == 201, body
    [(ext, text, meta, spans)] = imported()
    assert text == SNIP and meta == {"answer": "accept"}
    assert spans == [(a, b, "ORG", {}), (a, b + 3, "CLAIM", {"stance": "favor"})]


def test_conll_bio_by_the_import_page(setup, h, client):
    lead, p, _api, imported, _cli = setup
    import io

    data = ("-DOCSTART- -X- -X- O\n\n알렉산드르 -X- _ B-PERSON\n왕 -X- _ I-PERSON\n은 -X- _ O\n\n"
            "메타 NNP B-ORG\n가 _ O\n").encode()
    csrf = h.login(client, lead)
    resp = client.post(f"/projects/{p.id}/import", data={
        "csrf_token": csrf, "files": [(io.BytesIO(data), "news.conll")]},
        content_type="multipart/form-data")
    assert resp.status_code == 302, resp.data
    [(ext, text, meta, spans)] = imported()
    assert text == "알렉산드르 왕 은\n메타 가" and meta == {}
    assert [(text[s:e], lab) for s, e, lab, _ in spans] == [("알렉산드르 왕", "PERSON"), ("메타", "ORG")]


def test_our_own_export_imports_back_byte_for_byte(setup, h, tmp_path, db_url):
    _lead, p, api, imported, cli = setup
    spans = [span(ART, "메타", "ORG"), span(ART, "알렉산더 왕", "PERSON")]
    code, body = api.post(f"/api/v1/projects/{p.id}/documents", [{"id": "001", "text": ART, "spans": [
        {"start": s, "end": e, "label": lab} for s, e, lab, _ in spans]}])
    assert code == 201, body
    res = cli("export", "News", "--format", "jsonl", "--source", "import", "--out", str(tmp_path / "x"))
    assert res.exit_code == 0, res.output
    q = h.project("Again", language="ko")
    res = cli("import", str(q.id), str(tmp_path / "x" / "annotations.jsonl"))
    assert res.exit_code == 0, res.output
    code, page = api.get(f"/api/v1/projects/{q.id}/documents")
    assert code == 200 and page["total"] == 1
    did = page["items"][0]["id"]
    assert api.get(f"/api/v1/documents/{did}")[1]["text"] == ART
    got = api.get(f"/api/v1/documents/{did}/annotation?user=import")[1]["spans"]
    assert [(s["start"], s["end"], s["label"]) for s in got] == [(s, e, lab) for s, e, lab, _ in spans]


@pytest.mark.parametrize("content, name, fmt, where", [
    (lines({"text": "메타는", "label": [[0, 9, "ORG"]]}), "d.jsonl", "auto", "line 1"),
    (lines({"text": "메타는", "label": [[0, 2, "ORG"]]}, {"text": "왕", "label": [[0, 1, "NOPE"]]}),
     "d.jsonl", "auto", "line 2"),
    (b"\xed\x95\x9c B-ORG\n\xeb\xa9 O\n", "x.conll", "auto", "byte offset"),
    ("메타 B-ORG\n는 X-ORG\n".encode(), "x.conll", "auto", "line 2"),
    (lines({"text": "a", "_input_hash": 1, "spans": [{"start": 0, "end": 1, "label": "ORG"}]},
           {"text": "메타", "_input_hash": 2, "spans": [{"start": 1, "end": 0, "label": "ORG"}]}),
     "p.jsonl", "prodigy", "line 2"),
    (lines({"text": "a"}), "p.jsonl", "bogus", "is not one of"),
])
def test_bad_files_are_refused_whole_with_the_line(setup, h, tmp_path, content, name, fmt, where):
    _lead, _p, _api, _imported, cli = setup
    path = tmp_path / name
    path.write_bytes(content)
    before = h.counts()
    res = cli("import", "News", str(path), "--format", fmt)
    assert res.exit_code in (1, 2) and where in res.output, res.output
    assert "Traceback" not in res.output
    assert h.counts() == before


def test_api_names_an_unknown_format(setup, h):
    _lead, p, api, _imported, _cli = setup
    before = h.counts()
    code, body = api.post(f"/api/v1/projects/{p.id}/documents?format=bogus", raw=lines({"text": "a"}))
    assert code == 422 and body["details"][0]["field"] == "format" and "auto" in body["error"]
    assert h.counts() == before


# --- Prodigy answers: reject and ignore are not training data -----------------------------

def prodigy_records():
    """Four Prodigy records over the same text (ids tell them apart), each with one span."""
    a, b, _, _ = span(SNIP, "메타", "ORG")
    return (a, b), [{"id": ans, "text": SNIP, "_input_hash": i, "_task_hash": i, "answer": ans,
                     "spans": [{"start": a, "end": b, "label": "ORG"}]}
                    for i, ans in enumerate(["accept", "reject", "ignore", "accept"])]


def test_rejected_and_ignored_prodigy_spans_are_not_imported_nor_exported(setup, tmp_path):
    _lead, p, _api, imported, cli = setup
    (a, b), recs = prodigy_records()
    recs[3]["id"] = "accept-2"
    (tmp_path / "p.jsonl").write_bytes(lines(*recs))
    res = cli("import", "News", str(tmp_path / "p.jsonl"))
    assert res.exit_code == 0, res.output
    assert ("2 Prodigy records answered reject or ignore were imported without their spans "
            "(reject: 1, ignore: 1)") in res.output
    assert "Imported 4 documents" in res.output and "2 with annotations" in res.output
    docs = {ext: (meta, spans) for ext, _text, meta, spans in imported()}
    assert docs["accept"] == ({"answer": "accept"}, [(a, b, "ORG", {})])
    assert docs["accept-2"][1] == [(a, b, "ORG", {})]
    assert docs["reject"] == ({"answer": "reject"}, [])  # the text is still a document
    assert docs["ignore"] == ({"answer": "ignore"}, [])
    res = cli("export", "News", "--format", "jsonl", "--source", "import", "--no-tokens",
              "--out", str(tmp_path / "x"))
    assert res.exit_code == 0, res.output
    rows = [json.loads(ln) for ln in (tmp_path / "x" / "annotations.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == ["accept", "accept-2"]
    assert all(r["meta"].get("answer") != "reject" for r in rows)


def test_prodigy_answers_chooses_which_answers_keep_their_spans(setup, h):
    _lead, p, api, imported, _cli = setup
    (a, b), recs = prodigy_records()
    code, body = api.post(f"/api/v1/projects/{p.id}/documents?prodigy_answers=accept,reject",
                          raw=lines(*recs[:3]))
    assert code == 201 and body["with_spans"] == 2, body
    assert body["notes"] == ["1 Prodigy record answered ignore was imported without its spans "
                             "(ignore: 1); spans are kept for records answered accept, reject "
                             "(--prodigy-answers)."]
    spans = {ext: s for ext, _t, _m, s in imported()}
    assert spans == {"accept": [(a, b, "ORG", {})], "reject": [(a, b, "ORG", {})], "ignore": []}


def test_prodigy_answers_default_is_accept_through_the_api_too(setup):
    _lead, p, api, imported, _cli = setup
    _, recs = prodigy_records()
    code, body = api.post(f"/api/v1/projects/{p.id}/documents", raw=lines(*recs[:3]))
    assert code == 201 and body["with_spans"] == 1 and "reject: 1, ignore: 1" in body["notes"][0]


@pytest.mark.parametrize("value", ["accept,maybe", "", "accept,,reject", "ACCEPT"])
def test_an_unknown_prodigy_answer_option_is_refused(setup, h, tmp_path, value):
    _lead, p, api, _imported, cli = setup
    _, recs = prodigy_records()
    before = h.counts()
    code, body = api.post(f"/api/v1/projects/{p.id}/documents?prodigy_answers={value}",
                          raw=lines(*recs))
    assert code == 422 and body["details"] == [{"field": "prodigy_answers",
                                                "reason": "unknown answer"}], body
    (tmp_path / "p.jsonl").write_bytes(lines(*recs))
    res = cli("import", "News", str(tmp_path / "p.jsonl"), "--prodigy-answers", value)
    assert res.exit_code == 1 and res.output.startswith("Error: Unknown Prodigy answer"), res.output
    assert len(res.output.strip().splitlines()) == 1
    assert h.counts() == before


def test_an_answer_prodigy_never_gives_is_refused_with_its_line(setup, h):
    _lead, p, api, _imported, _cli = setup
    _, recs = prodigy_records()
    recs[2]["answer"] = "maybe"
    before = h.counts()
    code, body = api.post(f"/api/v1/projects/{p.id}/documents", raw=lines(*recs))
    assert code == 422 and body["details"][0] == {
        "line": 3, "field": "answer", "reason": "answer 'maybe' is not one of accept, reject, ignore"}
    assert h.counts() == before
