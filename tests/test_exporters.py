"""Exporters on real annotated articles: alignment (Korean tokenizer vs
rule-based), nothing silently lost, round trip, golden outputs, streaming
DocBin, and (slow) training a spaCy model on the export and loading it fresh.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 pytest tests/test_exporters.py -k golden``.
"""
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from annotator.core import formats, nlp
from annotator.core.exporters import EXPORTERS, ExportError, export, iter_jsonl
from annotator.core.exporters._common import split_of
from annotator.core.exporters.docbin import StreamingDocBin

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("annotated-*.jsonl"))
GOLDEN = ROOT / "tests" / "golden"

LABELS = [
    {"name": "PERSON", "kind": "entity", "attributes": {}},
    {"name": "ORG", "kind": "entity", "attributes": {}},
    {"name": "MONEY", "kind": "entity", "attributes": {}},
    {"name": "CLAIM", "kind": "span",
     "attributes": {"stance": {"values": ["favor", "against", "neutral"], "required": True}}},
]


def to_records(parsed, tokens=None, source="gold"):
    recs = []
    for i, d in enumerate(parsed, start=1):
        recs.append({
            "document": {"id": i, "external_id": d["id"], "text": d["text"], "meta": d["meta"]},
            "source": source, "annotator": "gold" if source == "gold" else source.split(":")[1],
            "status": "submitted", "spans": d["spans"],
            "tokens": tokens(d["text"]) if tokens else None,
        })
    return recs


def fixture_docs():
    return [d for p in FIXTURES for d in formats.parse_jsonl(p.read_bytes(), LABELS)]


def rule_based_tokens(text):
    import spacy

    rb = spacy.blank("ko", config={"nlp": {"tokenizer": {"@tokenizers": "spacy.Tokenizer.v1"}}})
    return [(t.idx, t.idx + len(t)) for t in rb(text) if not t.is_space]


def misaligned_by_hand(docs, tokens):
    """Independent of the exporter: spans whose start or end is not a token boundary."""
    out = set()
    for d in docs:
        b = tokens(d["text"])
        starts, ends = {s for s, _ in b}, {e for _, e in b}
        for s in d["spans"]:
            if s["start"] not in starts or s["end"] not in ends:
                out.add((d["id"], s["start"], s["end"], s["label"]))
    return out


# ---------------------------------------------------------------------------
# alignment
# ---------------------------------------------------------------------------
def test_fixtures_are_real_and_cover_all_labels():
    docs = fixture_docs()
    assert len(docs) >= 2
    labels = {s["label"] for d in docs for s in d["spans"]}
    assert labels == {"PERSON", "ORG", "MONEY", "CLAIM"}
    for d in docs:
        corpus = ROOT / "annotator" / "data" / "corpus" / f"{d['id']}.txt"
        with open(corpus, encoding="utf8", newline="") as f:
            assert f.read() == d["text"]


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_korean_tokenizer_aligns_every_fixture_span(fmt, tmp_path):
    docs = fixture_docs()
    report = export(to_records(docs), LABELS, fmt, tmp_path)
    assert report["ok"] and report["misaligned"] == []
    n = sum(len(d["spans"]) for d in docs)
    assert report["spans"] == n and report["aligned"] == n
    for name, c in report["labels"].items():
        assert c["rate"] == 1.0, name
    assert json.loads((tmp_path / "export-report.json").read_text("utf8")) == report
    assert misaligned_by_hand(docs, lambda t: nlp.get_tokenizer_boundaries(t, "ko")) == set()


def test_rule_based_tokenizer_export_fails_and_lists_every_misaligned_span(tmp_path):
    docs = fixture_docs()
    expected = misaligned_by_hand(docs, rule_based_tokens)
    assert len(expected) > 20  # about half the entity mentions
    with pytest.raises(ExportError) as err:
        export(to_records(docs, rule_based_tokens), LABELS, "spacy", tmp_path)
    assert "min_aligned=0.99" in str(err.value) and "PERSON" in str(err.value)
    report = json.loads((tmp_path / "export-report.json").read_text("utf8"))
    assert report == err.value.report and report["ok"] is False
    listed = {(m["external_id"], m["start"], m["end"], m["label"]) for m in report["misaligned"]}
    assert listed == expected
    for m in report["misaligned"]:
        text = next(d["text"] for d in docs if d["id"] == m["external_id"])
        assert m["text"] == text[m["start"]:m["end"]]
        assert m["tokens"] and m["tokens"][0]["start"] <= m["start"] and m["tokens"][-1]["end"] >= m["end"]
        assert any(t["start"] < m["start"] or t["end"] > m["end"] for t in m["tokens"])
    # no data files left behind, only the report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export-report.json"]
    for name in ("PERSON", "ORG"):
        assert report["labels"][name]["rate"] < 0.99


def test_rule_based_below_threshold_allowed_marks_missing_never_stretches(tmp_path):
    import spacy  # noqa: F401
    from spacy.tokens import DocBin

    docs = fixture_docs()
    bad = misaligned_by_hand(docs, rule_based_tokens)
    report = export(to_records(docs, rule_based_tokens), LABELS, "spacy", tmp_path, min_aligned=0)
    assert report["ok"] and len(report["misaligned"]) == len(bad)
    vocab = nlp.make_nlp("ko").vocab
    got = [d for split in ("train", "dev") for d in DocBin().from_disk(tmp_path / f"{split}.spacy").get_docs(vocab)]
    assert len(got) == len(docs)
    by_text = {d["text"]: d for d in docs}
    for doc in got:
        src = by_text[doc.text]
        gold = {(s["start"], s["end"], s["label"]) for s in src["spans"] if s["label"] != "CLAIM"}
        ents = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
        assert ents <= gold, "an entity was stretched or invented"
        lost = {g for g in gold if (src["id"],) + g in bad}
        assert ents == gold - lost
        for s, e, _ in lost:
            span = doc.char_span(s, e, alignment_mode="expand")
            assert all(t.ent_iob_ == "" for t in span), "tokens of a misaligned span must be missing"
    # conll and hf mark the same tokens missing
    export(to_records(docs, rule_based_tokens), LABELS, "conll", tmp_path / "c", min_aligned=0)
    conll = (tmp_path / "c" / "train.conll").read_text("utf8") + (tmp_path / "c" / "dev.conll").read_text("utf8")
    assert " -\n" in conll
    export(to_records(docs, rule_based_tokens), LABELS, "hf", tmp_path / "h", min_aligned=0)
    rows = [json.loads(x) for f in ("train.jsonl", "dev.jsonl") for x in open(tmp_path / "h" / f, encoding="utf8")]
    assert any(-100 in r["ner_tags"] for r in rows)


# ---------------------------------------------------------------------------
# jsonl
# ---------------------------------------------------------------------------
def test_jsonl_round_trip_byte_exact(tmp_path):
    docs = fixture_docs()
    export(to_records(docs), LABELS, "jsonl", tmp_path)
    raw = (tmp_path / "annotations.jsonl").read_bytes()
    assert "메타가 선택한 남자".encode() in raw  # not \u-escaped
    again = formats.parse_jsonl(raw, LABELS)
    assert len(again) == len(docs)
    for a, b in zip(docs, again):
        assert b["text"].encode("utf8") == a["text"].encode("utf8")
        assert b["id"] == a["id"]
        def key(s):
            return (s["start"], s["end"], s["label"], json.dumps(s["attributes"], sort_keys=True))
        assert sorted(map(key, b["spans"])) == sorted(map(key, a["spans"]))
        assert b["meta"]["annotator"] == "gold" and b["meta"]["status"] == "submitted"


def test_jsonl_token_indices_point_at_the_span(tmp_path):
    docs = fixture_docs()
    export(to_records(docs), LABELS, "jsonl", tmp_path)
    for line in open(tmp_path / "annotations.jsonl", encoding="utf8"):
        rec = json.loads(line)
        toks = rec["tokens"]
        assert "".join(t["text"] + (" " if t["ws"] else "") for t in toks) == rec["text"]
        assert [t["id"] for t in toks] == list(range(len(toks)))
        for s in rec["spans"]:
            assert toks[s["token_start"]]["start"] == s["start"]
            assert toks[s["token_end"]]["end"] == s["end"]


def test_iter_jsonl_streams_and_matches_file(tmp_path):
    docs = fixture_docs()
    export(to_records(docs), LABELS, "jsonl", tmp_path)
    report = {}
    lines = list(iter_jsonl(to_records(docs), LABELS, report=report))
    assert "".join(lines) == (tmp_path / "annotations.jsonl").read_text("utf8")
    assert report["records"] == len(docs) and report["aligned"] == report["spans"]

    def gen():
        yield to_records(docs)[0]
        raise RuntimeError("the second record must not be pulled before the first line is sent")

    it = iter_jsonl(gen(), LABELS)
    assert json.loads(next(it))["id"] == docs[0]["id"]


def test_data_errors_raise_export_error(tmp_path):
    docs = fixture_docs()[:1]
    recs = to_records(docs)
    recs[0]["spans"] = recs[0]["spans"] + [{"start": 0, "end": 2, "label": "PLACE", "attributes": {}}]
    with pytest.raises(ExportError, match="PLACE"):
        export(recs, LABELS, "jsonl", tmp_path)
    recs = to_records(docs)
    recs[0]["spans"] = [{"start": 5, "end": 10 ** 6, "label": "ORG", "attributes": {}}]
    with pytest.raises(ExportError, match="outside the text"):
        export(recs, LABELS, "spacy", tmp_path)
    with pytest.raises(ExportError, match="unknown export format"):
        export([], LABELS, "xml", tmp_path)
    assert not any(p.name.endswith(".part") or p.name.startswith(".docbin") for p in tmp_path.iterdir())


def test_overlapping_entities_are_reported_not_exported(tmp_path):
    docs = fixture_docs()[:1]
    recs = to_records(docs)
    recs[0]["spans"].append({"start": 12, "end": 14, "label": "ORG", "attributes": {}})  # inside 알렉산드르 왕
    with pytest.raises(ExportError):
        export(recs, LABELS, "spacy", tmp_path)
    rep = json.loads((tmp_path / "export-report.json").read_text("utf8"))
    assert {(m["start"], m["end"]) for m in rep["misaligned"]} == {(12, 19), (12, 14)}
    assert all("overlaps" in m["reason"] for m in rep["misaligned"])


# ---------------------------------------------------------------------------
# spacy
# ---------------------------------------------------------------------------
def test_spacy_docbin_content(tmp_path):
    from spacy.tokens import DocBin

    docs = fixture_docs()
    report = export(to_records(docs), LABELS, "spacy", tmp_path, dev=0.5, seed=1)
    assert report["splits"] == {"train": 1, "dev": 1}
    vocab = nlp.make_nlp("ko").vocab
    seen = 0
    for split in ("train", "dev"):
        got = list(DocBin().from_disk(tmp_path / f"{split}.spacy").get_docs(vocab))
        assert report["files"][f"{split}.spacy"]["docs"] == len(got)
        for doc in got:
            seen += 1
            src = next(d for d in docs if d["text"] == doc.text)
            assert split_of({"external_id": src["id"]}, 0.5, 1) == split
            ents = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
            assert ents == {(s["start"], s["end"], s["label"]) for s in src["spans"] if s["label"] != "CLAIM"}
            claims = {(s.start_char, s.end_char, s.label_) for s in doc.spans["sc"]}
            assert claims == {(s["start"], s["end"], "CLAIM_" + s["attributes"]["stance"])
                              for s in src["spans"] if s["label"] == "CLAIM"}
    assert seen == len(docs)
    cfg = (tmp_path / "config.cfg").read_text("utf8")
    assert '@tokenizers = "annotator.KoreanTokenizer.v1"' in cfg
    from thinc.api import Config

    parsed = Config().from_str(cfg, interpolate=False)
    assert parsed["nlp"]["pipeline"] == ["tok2vec", "ner", "spancat"]
    assert parsed["nlp"]["lang"] == "ko" and parsed["paths"]["vectors"] is None
    assert parsed["components"]["spancat"]["suggester"]["@misc"] == nlp.CLAUSE_SUGGESTER


def test_split_is_stable_and_close_to_fraction():
    ids = [{"external_id": f"doc-{i}"} for i in range(4000)]
    first = [split_of(d, 0.2, 0) for d in ids]
    assert first == [split_of(d, 0.2, 0) for d in ids]
    assert 0.17 < first.count("dev") / len(ids) < 0.23
    assert first != [split_of(d, 0.2, 1) for d in ids]
    assert {split_of(d, 0, 0) for d in ids} == {"train"}


def test_streaming_docbin_equals_docbin(tmp_path):
    import srsly
    from spacy.tokens import DocBin, Span

    n = nlp.make_nlp("ko")
    texts = [d["text"] for d in fixture_docs()]
    docs = []
    for i in range(5):
        doc = n(texts[i % len(texts)][i * 50:i * 50 + 400])
        doc.set_ents([Span(doc, 1, 2, label="ORG")])
        doc.spans["sc"] = [Span(doc, 0, 3, label="CLAIM_favor")]
        doc.cats = {"x": float(i)}
        docs.append(doc)
    ref = DocBin(store_user_data=False)
    sdb = StreamingDocBin(tmp_path / "s.spacy")
    for doc in docs:
        ref.add(doc)
        sdb.add(doc)
        assert sdb.span_groups_bytes(doc) == doc.spans.to_bytes()
    sdb.close()
    assert [p.name for p in tmp_path.iterdir()] == ["s.spacy"]
    a = srsly.msgpack_loads(zlib.decompress(ref.to_bytes()))
    b = srsly.msgpack_loads(zlib.decompress((tmp_path / "s.spacy").read_bytes()))
    assert a == b
    back = list(DocBin().from_disk(tmp_path / "s.spacy").get_docs(n.vocab))
    assert [d.text for d in back] == [d.text for d in docs]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in back] == \
        [[(e.start, e.end, e.label_) for e in d.ents] for d in docs]


# ---------------------------------------------------------------------------
# golden files
# ---------------------------------------------------------------------------
def docbin_summary(path):
    from spacy.tokens import DocBin

    vocab = nlp.make_nlp("ko").vocab
    out = []
    for doc in DocBin().from_disk(path).get_docs(vocab):
        out.append(json.dumps({
            "text": doc.text,
            "tokens": [[t.text, t.whitespace_, t.ent_iob_ + ("-" + t.ent_type_ if t.ent_type_ else "")] for t in doc],
            "ents": [[e.start_char, e.end_char, e.label_] for e in doc.ents],
            "spans": {k: [[s.start_char, s.end_char, s.label_] for s in g] for k, g in doc.spans.items()},
        }, ensure_ascii=False) + "\n")
    return "".join(out)  # one doc per line


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_golden(fmt, tmp_path):
    parsed = formats.parse_jsonl((GOLDEN / "input.jsonl").read_bytes(), LABELS)
    export(to_records(parsed), LABELS, fmt, tmp_path, dev=0.5, seed=3, min_aligned=0)  # g1 train, g2 dev
    produced = {}
    for p in sorted(tmp_path.iterdir()):
        if p.suffix == ".spacy":
            produced[p.name + ".json"] = docbin_summary(p)
        else:
            produced[p.name] = p.read_text("utf8")
    gdir = GOLDEN / fmt
    if os.environ.get("UPDATE_GOLDEN"):
        gdir.mkdir(parents=True, exist_ok=True)
        for old in gdir.iterdir():
            old.unlink()
        for name, content in produced.items():
            (gdir / name).write_text(content, encoding="utf8", newline="")
    expected = {p.name: p.read_text("utf8") for p in sorted(gdir.iterdir())}
    assert sorted(produced) == sorted(expected)
    for name in expected:
        assert produced[name] == expected[name], f"{fmt}/{name} differs from the golden file"
    report = json.loads(produced["export-report.json"])
    assert [m["text"] for m in report["misaligned"]] == ["Bloom"]


# ---------------------------------------------------------------------------
# training (slow): export -> spacy train -> spacy.load in a fresh process
# ---------------------------------------------------------------------------
def _entry_point_installed(cwd) -> bool:
    """Asked in a fresh interpreter away from the repo, as `spacy train` will see it (a
    stray annotator.egg-info in the working directory must not count as installed)."""
    code = ("import importlib.metadata as m, sys; "
            f"sys.exit(0 if any(e.name == {nlp.KOREAN_TOKENIZER!r} "
            "for e in m.entry_points(group='spacy_tokenizers')) else 1)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env).returncode == 0


@pytest.mark.slow
def test_train_on_export_and_load_in_fresh_process(tmp_path):
    if not _entry_point_installed(tmp_path):
        reason = ("package 'annotator' is not installed in this interpreter, so the spacy_tokenizers "
                  "entry point for annotator.KoreanTokenizer.v1 is missing (pip install -e .)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path / "export"
    report = export(to_records(fixture_docs()), LABELS, "spacy", out, dev=0.5, seed=1)
    dev = "dev.spacy" if report["files"]["dev.spacy"]["docs"] else "train.spacy"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-m", "spacy", "train", "config.cfg", "--output", str(tmp_path / "model"),
         "--paths.train", "train.spacy", "--paths.dev", dev,
         "--training.max_steps", "20", "--training.eval_frequency", "10"],
        cwd=out, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    model = tmp_path / "model" / "model-last"
    assert (model / "tokenizer").is_file()
    code = (
        "import json, sys, spacy\n"
        "assert not any(m.startswith('annotator') for m in sys.modules)\n"
        f"nlp = spacy.load({str(model)!r})\n"
        "text = '메타는  알렉산드르 왕에게\\u00a0143억 달러를 썼다. 이는 대담한 베팅이다 😀'\n"
        "doc = nlp(text)\n"
        "print(json.dumps({'text_ok': doc.text == text, 'tokens': [t.text for t in doc],\n"
        "                  'pipe': nlp.pipe_names, 'tok': type(nlp.tokenizer).__module__,\n"
        "                  'sc': 'sc' in doc.spans}, ensure_ascii=False))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["text_ok"] and got["tok"] == "annotator.core.nlp"
    assert got["tokens"][:2] == ["메타", "는"]
    assert got["pipe"] == ["tok2vec", "ner", "spancat"] and got["sc"]
