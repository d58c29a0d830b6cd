"""Training (annotator/services/training.py, learn.py): the pure parts, then `annotator train` on the
demo corpus with article 000 as gold, its predictions served as suggestions, the model loaded
in a fresh process, and a failed training that leaves the previous version suggesting.
Real spaCy, a real database, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from annotator.cli import main
from annotator.core.exporters._common import LabelSet
from annotator.services.projects import LABEL_SETS
from annotator.services.training import (
    CUT_CHARS,
    MIN_ENTITY_SPANS,
    TrainingError,
    check_enough,
    examples,
    split,
    ungroup,
)

FIXTURE = Path(__file__).parent / "fixtures" / "annotated-000.jsonl"
LABELS = [{"name": lab["name"], "kind": lab["kind"], "attributes": lab.get("attributes", {})}
          for lab in LABEL_SETS["news"]]


def gold_record() -> dict:
    rec = json.loads(FIXTURE.read_text(encoding="utf-8").splitlines()[0])
    spans = [{"start": s["start"], "end": s["end"], "label": s["label"],
              "attributes": {"stance": s["stance"]} if s.get("stance") else {}} for s in rec["spans"]]
    return {"document": {"id": 1, "external_id": rec["id"], "text": rec["text"]}, "spans": spans}


def test_examples_are_cut_at_line_breaks_never_inside_a_span():
    rec = gold_record()
    exs = examples([rec])
    assert len(exs) >= 4
    text = rec["document"]["text"]
    assert "".join(e.record["document"]["text"] for e in exs) == text  # nothing lost or repeated
    kept = sum(len(e.record["spans"]) for e in exs)
    assert kept == len(rec["spans"])  # every span in exactly one example
    offset = 0
    for e in exs:
        piece = e.record["document"]["text"]
        assert len(piece) >= CUT_CHARS or e is exs[-1]
        for s in e.record["spans"]:
            assert piece[s["start"]:s["end"]] == text[offset + s["start"]:offset + s["end"]]
        offset += len(piece)
    train, dev = split(exs, 0.2, seed=0)
    assert dev and train and not {e.key for e in train} & {e.key for e in dev}
    assert split(exs, 0.2, seed=0) == (train, dev)  # stable


def test_too_little_to_learn_from_says_how_much_is_needed():
    rec = gold_record()
    rec["spans"] = [s for s in rec["spans"] if s["label"] == "PERSON"][:5]
    with pytest.raises(TrainingError) as e:
        check_enough(examples([rec]), LabelSet(LABELS))
    assert f"needs at least {MIN_ENTITY_SPANS} entity spans" in e.value.message
    assert "this project has 5 entity spans" in e.value.message


@pytest.mark.parametrize("group, expected", [
    ("CLAIM_favor", ("CLAIM", {"stance": "favor"})), ("CLAIM", ("CLAIM", {})),
    ("ORG", ("ORG", {})),
])
def test_a_span_group_label_comes_back_as_label_and_stance(group, expected):
    assert ungroup(LabelSet(LABELS), group) == expected


# --- the whole way: `annotator train` -------------------------------------------------------

@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    # what these tests hold is the path from gold to stored suggestions, not the model's
    # quality: 6 passes over the examples instead of up to 60
    monkeypatch.setenv("ANNOTATOR_TRAIN_MAX_EPOCHS", "6")
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["--db", db_url, *args], catch_exceptions=False)


@pytest.mark.slow
def test_train_on_the_demo_with_article_000_as_gold_then_suggest_and_fail_safely(
        h, run, tmp_path):
    from annotator.storage.models import Document, ModelVersion, Prediction, Project

    project = h.demo()
    h.settings(project, control_share=0.0)
    h.tokenize(project)
    lead = h.user("lena", "lead", member_of=[project])
    rec = gold_record()
    with h.session() as s:
        docs = {d.external_id: d for d in s.execute(
            select(Document).where(Document.project_id == project.id)).scalars()}
    gold_doc = docs[rec["document"]["external_id"]]
    status, body = h.api(lead).put(f"/api/v1/documents/{gold_doc.id}/gold",
                                   {"version": 0, "spans": rec["spans"]})
    assert status == 200, body

    r = run("train", project.name)
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"Trained version 1 of {project.name!r} in " in out and "1 gold documents" in out
    for label in ("PERSON", "ORG", "overall", "learning curve"):
        assert label in out, out
    assert "left out: spancat (CLAIM)" in out  # 7 CLAIMs in the article: too few to learn
    assert "Version 1 suggests now: predictions stored for 5 documents." in out
    assert "  suggests " in out  # which labels it learned well enough to suggest

    with h.session() as s:
        version = s.execute(select(ModelVersion)).scalar_one()
        assert s.get(Project, project.id).settings["model"] == 1
        scores = version.scores
        stored = {p.document_id: p.spans for p in s.execute(select(Prediction)).scalars()}
    assert {"PERSON", "ORG"} <= set(scores["labels"]) and 0 <= scores["overall"]["f"] <= 1
    assert scores["epochs"] <= 6  # ANNOTATOR_TRAIN_MAX_EPOCHS
    assert [c["share"] for c in scores["curve"]] == [0.25, 0.5, 0.75, 1.0]
    assert (Path(version.path) / "model" / "meta.json").exists()
    assert (Path(version.path) / "scores.json").exists()

    # the other articles' stored predictions are served as suggestions of source "model"
    other = docs["001_4ed2aa76a0e07e7d"]
    text = other.text
    spans = stored[other.id]
    assert spans and all(0 <= s["start"] < s["end"] <= len(text) and 0 <= s["score"] <= 1
                         for s in spans)
    from annotator.services.learn import offered_labels

    offered = offered_labels(scores)
    assert all(s["offered"] == (s["label"] in offered) for s in spans)
    alice = h.api(h.user("alice2", member_of=[project]))
    status, got = alice.get(f"/api/v1/documents/{other.id}/suggestions")
    assert status == 200, got
    model_items = [g for g in got["items"] if g["source"] == "model"]
    assert all(g["version"] == "v1" for g in model_items)
    assert {(g["start"], g["end"], g["label"]) for g in model_items} <= {
        (s["start"], s["end"], s["label"]) for s in spans if s["offered"]}
    assert bool(model_items) == bool(offered)

    # the saved model loads in a fresh process and predicts what was stored
    code = ("import json, sys; from annotator.services.training import load, predict; "
            "nlp = load(sys.argv[1]); print(json.dumps(predict(nlp, [sys.argv[2]], json.loads("
            "sys.argv[3]), [json.loads(sys.argv[4])])[0]['spans']))")
    fresh = subprocess.run([sys.executable, "-c", code, str(Path(version.path) / "model"), text,
                            json.dumps(LABELS), json.dumps(other.tokens)],
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == [{k: v for k, v in s.items() if k != "offered"}
                                        for s in spans]

    # a training that fails (the gold is gone: nothing to learn from) says why, exit 1, and
    # leaves version 1 suggesting
    with h.session() as s:
        from annotator.storage.models import Annotation, User

        gold_user = s.execute(select(User).where(User.username == "gold")).scalar_one()
        s.delete(s.execute(select(Annotation).where(Annotation.user_id == gold_user.id)).scalar_one())
        s.commit()
    r = run("train", project.name)
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error: ")]
    assert lines and "training failed: training needs at least 20 entity spans" in lines[0]
    assert "(version 1 stays the one that suggests)" in lines[0]
    with h.session() as s:
        assert s.get(Project, project.id).settings["model"] == 1
        assert [v.number for v in s.execute(select(ModelVersion)).scalars()] == [1]
    assert sorted(p.name for p in Path(version.path).parent.iterdir()) == ["v1"]  # nothing half-made


def test_a_label_suggests_only_once_learned_well_enough():
    from annotator.services.learn import offered_labels

    scores = {"labels": {"ORG": {"p": 0.9, "predicted": 10}, "PERSON": {"p": 0.95, "predicted": 3},
                         "MONEY": {"p": 0.5, "predicted": 40}}}
    assert offered_labels(scores) == {"ORG"}
    assert offered_labels({}) == set()
