"""Training that works as printed (issue #13): the README's two commands export the demo
project and train a spaCy pipeline on it, and the result loads in a fresh process; an export
that could not train is refused with what to do, never written empty with exit 0."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT
from test_teams import spans_by

from annotator.cli import main

VENV_BIN = Path(sys.executable).parent
FEW_STEPS = ["--training.max_steps", "12", "--training.eval_frequency", "6"]


def readme_training_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    (block,) = [b for b in blocks if "spacy train" in b and "annotator export" in b]
    return [line for line in block.splitlines() if line.strip()]


def annotate_demo(h, names=("alice", "bob"), only=None):
    from annotator.services.users import get_user

    project = h.demo()
    h.tokenize(project)
    with h.session() as s:
        from sqlalchemy import select

        from annotator.storage.models import Document

        docs = list(s.execute(select(Document).where(Document.project_id == project.id)
                              .order_by(Document.id)).scalars())
        people = {n: get_user(s, n) for n in names}
    for name, user in people.items():
        api = h.api(user)
        for d in docs if only is None else docs[:only]:
            # as the page saves them: on token boundaries (it snaps a selection to tokens)
            starts, ends = {a for a, _ in d.tokens}, {b for _, b in d.tokens}
            spans = [sp for sp in spans_by(name, d.text) if sp["start"] in starts and sp["end"] in ends]
            status, body = api.put(f"/api/v1/documents/{d.id}/annotation",
                                   {"spans": spans, "version": 0, "status": "submitted"})
            assert status == 200, body
    return project


def run(command: str, cwd: Path, db_url: str, extra=()) -> subprocess.CompletedProcess:
    """One printed command, as a user in the checkout runs it (.venv/bin/ is this venv)."""
    command = command.replace(".venv/bin/", f"{VENV_BIN}/")
    env = {**os.environ, "ANNOTATOR_DATABASE_URL": db_url}
    return subprocess.run(command + "".join(f" {a}" for a in extra), shell=True, cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_readme_commands_train_the_demo_project_and_the_model_loads(h, db_url, tmp_path):
    annotate_demo(h)
    export, train = readme_training_commands()
    out = run(export, tmp_path, db_url)
    assert out.returncode == 0, out.stderr
    printed = out.stdout.split("Train it with:\n", 1)[1].strip()
    assert printed == train.replace(".venv/bin/python", os.path.relpath(sys.executable, tmp_path)) \
        or printed.endswith(train.split(" -m ", 1)[1]), (printed, train)
    report = json.loads((tmp_path / "demo-spacy" / "export-report.json").read_text())
    assert report["files"]["train.spacy"]["docs"] > 0 and report["files"]["dev.spacy"]["docs"] > 0
    trained = run(train, tmp_path, db_url, FEW_STEPS)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    check = subprocess.run(
        [sys.executable, "-c", "import spacy, json; nlp = spacy.load('demo-spacy/model/model-best'); "
         "doc = nlp('메타가 스케일 AI에 143억 달러를 투자했다.'); "
         "print(json.dumps({'pipes': nlp.pipe_names, 'tokens': len(doc)}))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    loaded = json.loads(check.stdout.strip().splitlines()[-1])
    assert "ner" in loaded["pipes"] and loaded["tokens"] > 5


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["--db", db_url, *args], catch_exceptions=False)


def test_nothing_to_train_on_is_refused_not_written_empty(h, cli, tmp_path):
    h.demo()
    result = cli("export", "Meta & Scale AI news", "--format", "spacy", "--source", "best", "--out", "x")
    assert result.exit_code == 1 and "Nothing to train on" in result.output, result.output
    assert not (tmp_path / "x" / "train.spacy").exists()
    report = json.loads((tmp_path / "x" / "export-report.json").read_text())
    assert report["ok"] is False and "Nothing to train on" in report["refused"]


def test_an_empty_dev_split_is_refused_with_what_to_do_and_dev_0_trains_on_all(h, cli, tmp_path):
    annotate_demo(h, only=1)  # one document: it falls in dev (seed 0) or in train, never both
    result = cli("export", "Meta & Scale AI news", "--format", "spacy", "--source", "best",
                 "--out", "x", "--dev", "0.2")
    assert result.exit_code == 1, result.output
    assert re.search(r"No document fell in the (training|dev) split", result.output), result.output
    assert not (tmp_path / "x" / "dev.spacy").exists() and not (tmp_path / "x" / "train.spacy").exists()
    result = cli("export", "Meta & Scale AI news", "--format", "spacy", "--source", "best",
                 "--out", "y", "--dev", "0")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "y" / "dev.spacy").exists()
    assert "--paths.dev y/train.spacy" in result.output and "config.cfg evaluates on train.spacy" in result.output


def test_a_component_without_training_examples_is_left_out_of_the_config(h, cli, tmp_path):
    """No CLAIM in the training split: no spancat in config.cfg (spaCy stopped with E143)."""
    from sqlalchemy import delete, select

    from annotator.storage.models import Annotation, Label, Span

    project = annotate_demo(h)
    with h.session() as s:
        claim = s.execute(select(Label.id).where(Label.project_id == project.id,
                                                 Label.name == "CLAIM")).scalar_one()
        s.execute(delete(Span).where(Span.label_id == claim))
        s.commit()
    result = cli("export", "Meta & Scale AI news", "--format", "spacy", "--source", "best", "--out", "x")
    assert result.exit_code == 0, result.output
    assert "spancat is left out of config.cfg" in result.output and "E143" in result.output
    cfg = (tmp_path / "x" / "config.cfg").read_text()
    assert "[components.ner]" in cfg and "[components.spancat]" not in cfg
    report = json.loads((tmp_path / "x" / "export-report.json").read_text())
    assert report["files"]["config.cfg"]["components"] == ["ner"]
    assert any("spancat is left out" in n for n in report["notes"])
    assert Annotation  # the annotations stay; only their CLAIM spans were removed
