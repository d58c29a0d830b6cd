"""Token boundaries on the page are the export's, computed on first open and stored; the
project word list changes them (cleared for the project, recomputed on the next open)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from annotator.cli import main
from annotator.storage.models import Document, Project

TEXT = "알렉산더왕대표는 말했다. 메타는 투자했다."  # Kiwi glues 알렉산더왕 without the word
OTHER = "메타슈퍼인텔리전스를 만들었다"


def words_of(text, tokens):
    return [text[a:b] for a, b in tokens]


@pytest.fixture
def ko(h):
    lead = h.user("lena", "lead")
    ann = h.user("ann")
    p = h.project("Korean", language="ko")
    docs = h.docs(p, [{"id": "a", "text": TEXT}, {"id": "b", "text": OTHER}])
    return lead, ann, p, docs


def stored_tokens(h, did):
    with h.session() as s:
        return s.execute(select(Document.tokens).where(Document.id == did)).scalar_one()


def test_import_does_not_tokenize_first_open_does_and_stores(h, ko):
    _lead, ann, _p, docs = ko
    assert stored_tokens(h, docs[0].id) is None  # import stays fast: no analyser in it
    code, doc = h.api(ann).get(f"/api/v1/documents/{docs[0].id}")
    assert code == 200
    words = words_of(TEXT, doc["tokens"])
    assert words[:3] == ["알렉산더왕", "대표", "는"] and "메타" in words and words[words.index("메타") + 1] == "는"
    assert stored_tokens(h, docs[0].id) == doc["tokens"]
    assert stored_tokens(h, docs[1].id) is None  # only the opened one


def test_next_document_comes_with_tokens(h, ko):
    _lead, ann, p, _docs = ko
    code, doc = h.api(ann).get(f"/api/v1/projects/{p.id}/next")
    assert code == 200 and doc["tokens"] and words_of(doc["text"], doc["tokens"])[0] != doc["text"]


def test_adding_a_word_clears_and_recomputes_the_projects_tokens(h, ko):
    lead, ann, p, docs = ko
    api = h.api(ann)
    for d in docs:
        assert api.get(f"/api/v1/documents/{d.id}")[0] == 200
    code, body = api.post(f"/api/v1/projects/{p.id}/words", {"words": ["알렉산더"]})
    assert code == 200, body
    assert body == {"words": ["알렉산더"], "added": ["알렉산더"]}
    assert stored_tokens(h, docs[0].id) is None and stored_tokens(h, docs[1].id) is None
    _, doc = api.get(f"/api/v1/documents/{docs[0].id}")
    assert words_of(TEXT, doc["tokens"])[:3] == ["알렉산더", "왕", "대표"]
    # adding it again changes nothing and keeps the stored tokens
    code, body = api.post(f"/api/v1/projects/{p.id}/words", {"words": ["알렉산더"]})
    assert code == 200 and body["added"] == [] and stored_tokens(h, docs[0].id) == doc["tokens"]
    # the lead replaces the list; annotators may only add
    assert api.put(f"/api/v1/projects/{p.id}/words", {"words": []})[0] == 403
    code, body = h.api(lead).put(f"/api/v1/projects/{p.id}/words", {"words": ["메타슈퍼인텔리전스"]})
    assert code == 200 and body == {"words": ["메타슈퍼인텔리전스"]}
    _, doc = api.get(f"/api/v1/documents/{docs[1].id}")
    assert words_of(OTHER, doc["tokens"])[:2] == ["메타슈퍼인텔리전스", "를"]
    assert api.get(f"/api/v1/projects/{p.id}/words")[1] == {"words": ["메타슈퍼인텔리전스"]}


@pytest.mark.parametrize("body, field", [
    ({"words": "알렉산더"}, "words"),
    ({"words": None}, "words"),
    ({"words": ["두 단어"]}, "words[0]"),
    ({"words": ["ok", ""]}, "words[1]"),
    ({"words": ["ok", 3]}, "words[1]"),
    ({"words": ["x" * 101]}, "words[0]"),
    ({"words": ["a\u0000b"]}, "words[0]"),
    ({"word": ["a"]}, "word"),
    ({"words": ["a"], "extra": 1}, "extra"),
])
def test_bad_word_lists_are_refused_whole(h, ko, body, field):
    _lead, ann, p, docs = ko
    api = h.api(ann)
    api.get(f"/api/v1/documents/{docs[0].id}")
    before = h.counts(), stored_tokens(h, docs[0].id)
    code, err = api.post(f"/api/v1/projects/{p.id}/words", body)
    assert code == 422 and err["ok"] is False and err["status"] == 422
    assert err["details"][0]["field"] == field, err
    assert (h.counts(), stored_tokens(h, docs[0].id)) == before
    with h.session() as s:
        assert (s.get(Project, p.id).settings or {}).get("user_words") is None


def test_page_tokens_are_the_exports_tokens(h, ko, tmp_path, db_url):
    lead, ann, p, docs = ko
    h.api(ann).post(f"/api/v1/projects/{p.id}/words", {"words": ["알렉산더"]})
    _, doc = h.api(ann).get(f"/api/v1/documents/{docs[0].id}")
    i = TEXT.index("알렉산더")
    code, body = h.api(ann).put(f"/api/v1/documents/{docs[0].id}/annotation", {
        "spans": [{"start": i, "end": i + 4, "label": "PERSON"}], "version": 0, "status": "submitted"})
    assert code == 200, body
    res = CliRunner().invoke(main, ["--db", db_url, "export", str(p.id), "--format", "jsonl",
                                    "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (rec,) = [json.loads(x) for x in (tmp_path / "out" / "annotations.jsonl").open(encoding="utf8")]
    exported = [[t["start"], t["end"]] for t in rec["tokens"] if not rec["text"][t["start"]:t["end"]].isspace()]
    assert exported == doc["tokens"]
    assert rec["spans"][0]["token_start"] is not None


def test_cli_words_and_tokenize(h, ko, db_url):
    _lead, _ann, p, docs = ko
    run = lambda *a: CliRunner().invoke(main, ["--db", db_url, *a], catch_exceptions=False)  # noqa: E731
    res = run("projects", "words", "Korean", "--add", "알렉산더", "--add", "메타슈퍼인텔리전스")
    assert res.exit_code == 0 and res.output.split() == ["메타슈퍼인텔리전스", "알렉산더"]
    res = run("projects", "words", str(p.id), "--remove", "메타슈퍼인텔리전스")
    assert res.output.split() == ["알렉산더"]
    res = run("projects", "words", "Korean", "--add", "두 단어")
    assert res.exit_code == 1 and "no spaces" in res.output and "Traceback" not in res.output
    res = run("tokenize", "Korean")
    assert res.exit_code == 0 and "Tokenized 2 documents" in res.output
    assert words_of(TEXT, stored_tokens(h, docs[0].id))[:3] == ["알렉산더", "왕", "대표"]
    assert "Tokenized 0 documents" in run("tokenize", "Korean").output


def test_under_serve_the_page_is_told_tokens_are_pending(app, h, ko):
    """`annotator serve` leaves tokenizing to the background job (annotator.services.tokenize_job):
    the answer comes at once, without tokens, and says so."""
    _lead, ann, _p, docs = ko
    app.config.update(SERVING=True, BACKGROUND_TOKENIZE=True)
    code, doc = h.api(ann).get(f"/api/v1/documents/{docs[0].id}")
    assert code == 200 and doc["tokens"] is None and doc["tokens_pending"] is True
    app.config.update(BACKGROUND_TOKENIZE=False)  # off: nothing will come but `annotator tokenize`
    code, doc = h.api(ann).get(f"/api/v1/documents/{docs[1].id}")
    assert code == 200 and doc["tokens"] is None and "tokens_pending" not in doc
    assert stored_tokens(h, docs[1].id) is None  # the web process did not tokenize it
    app.config.update(SERVING=False)  # tests and scripts: the first open computes them
    code, doc = h.api(ann).get(f"/api/v1/documents/{docs[1].id}")
    assert doc["tokens"] and "tokens_pending" not in doc
