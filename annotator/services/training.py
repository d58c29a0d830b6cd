"""Training a spaCy pipeline on a project's annotations, scoring it on held-out text, and
predicting with it (issue 12). Plain records in (the exporters' input), files and plain data
out: no Flask, no database. Only the background process and ``annotator train`` import it.

- **Examples.** Each document is cut at line breaks into examples of at least ``CUT_CHARS``
  characters (never inside a span), so that one long annotated article still leaves text to
  score on, and a long document is not one giant example. Tokens are the project's (the
  stored ones, as the annotators saw them), spans placed on them as the ``spacy`` export
  does (exporters/docbin.py: an entity that does not fall on tokens is *missing*, never
  stretched).
- **Held out.** A stable hash of (document, example) puts ``dev_share`` of the examples in the
  held-out set (at least one), which is never trained on; scores are exact-match precision,
  recall and F1 per label on it, a CLAIM's stance as accuracy over the CLAIMs found.
- **Components.** ``ner`` for the entity labels; ``spancat`` (the clause suggester) for the span
  labels such as CLAIM, with the stance in the group label (``CLAIM_favor``) as the export
  writes it, only from ``MIN_SPAN_KIND`` such spans: with fewer it is left out, and the scores
  say why (spaCy also refuses a component without labels: E143).
- **Learning curve.** The same training on 25, 50 and 75 % of the training examples, scored on
  the same held-out set, beside the final model's 100 %: whether more annotation still helps.
- **Atomic.** Everything is written into a temporary directory beside ``out_dir`` and renamed
  to it at the end: a failed or stopped training leaves nothing.
- **Predicting.** Greedy entities, each with its probability from a beam search (the share of
  the beam's parses that contain it); a document's *uncertainty* is the mean over every entity
  the beam considered of 1 - |2p - 1| (1 for a coin toss, 0 when the model is sure either way),
  so the queue can hand out the documents the model knows least about.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from annotator.core.config import env_setting
from annotator.core.errors import AnnotatorError
from annotator.core.exporters._common import LabelSet, prepare

MIN_ENTITY_SPANS = 20  # fewer: nothing worth learning, nor a held-out score worth reading
MIN_EXAMPLES = 4  # at least three to learn from and one to score on
MIN_SPAN_KIND = 10  # spans of kind "span" (CLAIM) before a span categorizer is trained
CUT_CHARS = 300  # an example is at least this long (cut at the line break after it)
# epochs at most; not stopped before MIN_EPOCHS, then after PATIENCE epochs without a better
# held-out score (ties go to the later epoch: a held-out set of a few examples ties often)
MIN_EPOCHS, PATIENCE = 15, 8  # at most ANNOTATOR_TRAIN_MAX_EPOCHS (60)
BATCH_EXAMPLES = 8  # examples per update at most; fewer on a small set (about 8 updates an epoch)
BEAM_WIDTH = 16
SPANS_KEY = "sc"
CURVE = (0.25, 0.5, 0.75, 1.0)


class TrainingError(AnnotatorError):
    """Training cannot run (too little data); the message says what it needs."""


@dataclass
class Example:
    key: str  # document key and the example's offset in it: stable across runs
    record: dict  # an exporter record of the example's text alone (offsets from its start)


# --- examples ------------------------------------------------------------------------------

def _cuts(text: str, spans: list[dict]) -> list[int]:
    """Offsets where the text may be cut: after a line break that no span crosses."""
    inside = sorted((s["start"], s["end"]) for s in spans)
    out, i = [], 0
    for pos, ch in enumerate(text):
        if ch != "\n":
            continue
        while i < len(inside) and inside[i][1] <= pos:
            i += 1
        if not any(a <= pos < b for a, b in inside[i:i + 50]):
            out.append(pos + 1)
    return out


def examples(records: Iterable[dict]) -> list[Example]:
    """The records cut into examples (see the module's docstring)."""
    out = []
    for rec in records:
        doc = rec["document"]
        text, spans = doc["text"], list(rec.get("spans") or ())
        tokens = rec.get("tokens")
        key = str(doc.get("external_id") or doc.get("id"))
        start = 0
        bounds = _cuts(text, spans) + [len(text)]
        for cut in bounds:
            if cut - start < CUT_CHARS and cut != len(text):
                continue
            if cut <= start:
                continue
            piece = text[start:cut]
            if piece.strip():
                ex_spans = [{**s, "start": s["start"] - start, "end": s["end"] - start}
                            for s in spans if start <= s["start"] and s["end"] <= cut]
                ex_tokens = None if tokens is None else [
                    [a - start, b - start] for a, b in tokens if start <= a and b <= cut]
                out.append(Example(f"{key}@{start}", {
                    "document": {"id": doc.get("id"), "external_id": f"{key}@{start}", "text": piece},
                    "spans": ex_spans, "tokens": ex_tokens, "source": rec.get("source")}))
            start = cut
    return out


def _held_out(key: str, seed: int, share: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < share


def split(exs: list[Example], dev_share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Train and held-out examples, by a stable hash; at least one of each."""
    dev = [e for e in exs if _held_out(e.key, seed, dev_share)]
    train = [e for e in exs if not _held_out(e.key, seed, dev_share)]
    if not dev and len(train) > 1:
        pick = min(train, key=lambda e: hashlib.sha256(f"{seed}:{e.key}".encode()).digest())
        train.remove(pick)
        dev.append(pick)
    if not train and len(dev) > 1:
        train.append(dev.pop())
    return train, dev


def counts(exs: list[Example], labelset: LabelSet) -> dict[str, int]:
    out: dict[str, int] = {name: 0 for name in labelset.by_name}
    for e in exs:
        for s in e.record["spans"]:
            out[s["label"]] = out.get(s["label"], 0) + 1
    return out


def check_enough(exs: list[Example], labelset: LabelSet) -> None:
    n_entities = sum(n for label, n in counts(exs, labelset).items()
                     if label in labelset.entity_labels)
    if n_entities < MIN_ENTITY_SPANS or len(exs) < MIN_EXAMPLES:
        raise TrainingError(
            f"training needs at least {MIN_ENTITY_SPANS} entity spans in at least {MIN_EXAMPLES} "
            f"examples (a document gives one per {CUT_CHARS} characters or so); this project has "
            f"{n_entities} entity spans in {len(exs)} examples from gold, majority or imported "
            f"annotations: annotate (or settle into gold) more documents first")


# --- spaCy ---------------------------------------------------------------------------------

def _docs(nlp, exs: list[Example], labelset: LabelSet, lang: str, words):
    from annotator.core.exporters.docbin import build_doc

    out = []
    for e in exs:  # labels the pipeline does not learn (a left-out spancat's) are dropped
        rec = {**e.record, "spans": [x for x in e.record["spans"] if x["label"] in labelset.by_name]}
        p = prepare(rec, labelset, lang, words)
        out.append(build_doc(nlp.vocab, p, labelset))
    return out


def _blank(lang: str, words, labelset: LabelSet, with_spancat: bool):
    from spacy.util import load_model_from_config
    from thinc.api import Config

    from annotator.core import nlp as _nlp
    from annotator.core.exporters.docbin import make_config

    _nlp.register_tokenizer()
    config = Config().from_str(make_config(lang, words, True, with_spancat))
    return load_model_from_config(config, auto_fill=True, validate=True)


def _fit(nlp_factory, train_docs, dev_docs, labelset: LabelSet, seed: int, max_epochs: int,
         pace: Callable[[], None], tick: Callable[[float], None]):
    """Train a fresh pipeline on ``train_docs``; keep the epoch that scored best held out.
    Returns (nlp, scores)."""
    from spacy.training import Example as SpacyExample
    from spacy.util import fix_random_seed, minibatch

    fix_random_seed(seed)
    nlp = nlp_factory()
    train = [SpacyExample(_copy_words(nlp, d), d) for d in train_docs]
    optimizer = nlp.initialize(lambda: train)
    rng = random.Random(seed)
    best, best_bytes, stale = None, None, 0
    size = max(1, min(BATCH_EXAMPLES, len(train) // 8))
    for epoch in range(max_epochs):
        rng.shuffle(train)
        losses: dict = {}
        for batch in minibatch(train, size=size):
            nlp.update(batch, drop=0.2, sgd=optimizer, losses=losses)
            pace()
        scores = evaluate(nlp, dev_docs, labelset)
        if best is None or scores["overall"]["f"] >= best["overall"]["f"]:
            best, best_bytes, stale = scores, nlp.to_bytes(), 0
        else:
            stale += 1
        tick((epoch + 1) / max_epochs)
        if stale >= PATIENCE and epoch + 1 >= MIN_EPOCHS:
            break
    nlp.from_bytes(best_bytes)
    return nlp, {**best, "epochs": epoch + 1}  # the passes made


def _copy_words(nlp, doc):
    """The reference doc's tokens without its annotations (what the model is given)."""
    from spacy.tokens import Doc

    return Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": round(p, 3), "r": round(r, 3), "f": round(f, 3), "support": tp + fn,
            "predicted": tp + fp}


def _spans_of(doc, labelset: LabelSet) -> set[tuple[int, int, str, str]]:
    """(start_char, end_char, label, group label) of the entities and span-kind spans."""
    out = {(e.start_char, e.end_char, e.label_, e.label_) for e in doc.ents}
    for sp in doc.spans.get(SPANS_KEY, ()):
        label, _attrs = ungroup(labelset, sp.label_)
        out.add((sp.start_char, sp.end_char, label, sp.label_))
    return out


def evaluate(nlp, gold_docs, labelset: LabelSet) -> dict:
    """Exact-match precision, recall and F1 per label on the held-out docs, micro overall;
    ``stance`` (or another enumerated attribute): accuracy over the matched span-kind spans."""
    tally: dict[str, list[int]] = {name: [0, 0, 0] for name in labelset.by_name}
    same_group = matched_groups = 0
    predicted = nlp.pipe([_copy_words(nlp, d) for d in gold_docs])
    for gold, pred in zip(gold_docs, predicted):
        g, p = _spans_of(gold, labelset), _spans_of(pred, labelset)
        g3 = {(a, b, lab): grp for a, b, lab, grp in g}
        p3 = {(a, b, lab): grp for a, b, lab, grp in p}
        for key in p3:
            tally.setdefault(key[2], [0, 0, 0])[0 if key in g3 else 1] += 1
        for key, grp in g3.items():
            if key not in p3:
                tally.setdefault(key[2], [0, 0, 0])[2] += 1
            elif key[2] in labelset.span_labels:
                matched_groups += 1
                same_group += p3[key] == grp
    labels = {name: _prf(*c) for name, c in tally.items() if sum(c)}
    overall = _prf(*(sum(c[i] for c in tally.values()) for i in range(3)))
    out = {"labels": labels, "overall": overall}
    if matched_groups:
        out["attributes_accuracy"] = round(same_group / matched_groups, 3)
    return out


def ungroup(labelset: LabelSet, group: str) -> tuple[str, dict]:
    """``CLAIM_favor`` -> ("CLAIM", {"stance": "favor"}): the inverse of LabelSet.group_label."""
    for name in sorted(labelset.by_name, key=len, reverse=True):
        if group != name and not group.startswith(name + "_"):
            continue
        rest, attrs = group[len(name) + 1:], {}
        for attr, spec in labelset.by_name[name]["attributes"].items():
            values = spec.get("values") if isinstance(spec, dict) else None
            for v in sorted(values or (), key=len, reverse=True):
                if rest == str(v) or rest.startswith(f"{v}_"):
                    attrs[attr] = v
                    rest = rest[len(str(v)) + 1:]
                    break
        return name, attrs
    return group, {}


# --- the whole run ---------------------------------------------------------------------------

def train(records: Iterable[dict], labels: Sequence, lang: str, words: Sequence[str], out_dir,
          *, seed: int = 0, dev_share: float = 0.2, curve: Sequence[float] = CURVE,
          max_epochs: int | None = None, pace: Callable[[], None] | None = None,
          progress: Callable[..., None] | None = None) -> dict:
    """Train, score and save a pipeline in ``out_dir`` (``model/``, ``scores.json``); returns
    the scores (see the module's docstring). Raises TrainingError when there is too little."""
    import spacy

    started = time.monotonic()
    max_epochs = max_epochs or env_setting("TRAIN_MAX_EPOCHS")
    pace = pace or (lambda: None)
    progress = progress or (lambda fraction, message=None: None)
    labelset = LabelSet(labels)
    exs = examples(records)
    check_enough(exs, labelset)
    train_exs, dev_exs = split(exs, dev_share, seed)
    span_kind = sum(n for label, n in counts(train_exs, labelset).items()
                    if label in labelset.span_labels)
    with_spancat = bool(labelset.span_labels) and span_kind >= MIN_SPAN_KIND
    left_out = []
    if labelset.span_labels and not with_spancat:
        left_out.append(f"spancat ({', '.join(labelset.span_labels)}): {span_kind} spans to learn "
                        f"from, needs {MIN_SPAN_KIND}")
    if not with_spancat:  # score and train what the pipeline has
        labelset = LabelSet([lab for lab in labelset.labels if lab["kind"] == "entity"])

    def factory():
        return _blank(lang, words, labelset, with_spancat)

    probe = factory()
    train_docs = _docs(probe, train_exs, labelset, lang, words)
    dev_docs = _docs(probe, dev_exs, labelset, lang, words)
    shares = sorted({s for s in curve if 0 < s < 1}) + [1.0]
    order = list(range(len(train_docs)))
    random.Random(seed).shuffle(order)
    points, final = [], None
    for i, share in enumerate(shares):
        n = max(1, round(len(order) * share))
        docs = [train_docs[j] for j in order[:n]]

        def tick(f, i=i, share=share):
            progress((i + f) / len(shares), f"training on {round(share * 100)} % of "
                                            f"{len(train_docs)} examples")

        nlp, scores = _fit(factory, docs, dev_docs, labelset, seed, max_epochs, pace, tick)
        points.append({"share": share, "examples": n, "f": scores["overall"]["f"]})
        if share == 1.0:
            final = (nlp, scores)
    nlp, scores = final
    result = {
        **scores, "curve": points, "train_examples": len(train_docs), "dev_examples": len(dev_docs),
        "spans": counts(exs, LabelSet(labels)), "components": list(nlp.pipe_names),
        "left_out": left_out, "seed": seed, "spacy": spacy.__version__,
        "seconds": round(time.monotonic() - started, 1)}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        nlp.to_disk(tmp / "model")
        (tmp / "scores.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


# --- using a trained model ---------------------------------------------------------------------

def load(model_dir):
    """A trained pipeline, in any process (our tokenizer and suggester registered first)."""
    import spacy

    from annotator.core import nlp as _nlp

    _nlp.register_tokenizer()
    return spacy.load(model_dir)


def predict(nlp, texts: Sequence[str], labels: Sequence, tokens: Sequence | None = None) -> list[dict]:
    """Per text ``{"spans": [{start, end, label, attributes, score}], "uncertainty"}`` (code
    points). ``tokens``: each text's stored token boundaries (None: the model's tokenizer)."""
    from spacy.tokens import Doc

    from annotator.core import nlp as _nlp

    labelset = LabelSet(labels)
    docs = []
    for i, text in enumerate(texts):
        bounds = tokens[i] if tokens is not None and tokens[i] is not None else None
        if bounds is None:
            docs.append(nlp.make_doc(text))
        else:
            toks = _nlp.doc_tokens(text, _nlp.normalise_boundaries(text, bounds, split_scripts=False))
            docs.append(Doc(nlp.vocab, words=[text[a:b] for a, b, _ in toks],
                            spaces=[ws for _, _, ws in toks]))
    docs = list(nlp.pipe(docs))
    scored = [{} for _ in docs]
    if "ner" in nlp.pipe_names and docs:
        ner = nlp.get_pipe("ner")
        scored = ner.scored_ents(ner.beam_parse(docs, beam_width=BEAM_WIDTH))
    out = []
    for doc, beam in zip(docs, scored):
        spans = [{"start": e.start_char, "end": e.end_char, "label": e.label_, "attributes": {},
                  "score": round(float(beam.get((e.start, e.end, e.label_), 0.0)), 3)}
                 for e in doc.ents]
        group = doc.spans.get(SPANS_KEY)
        if group is not None:
            group_scores = group.attrs.get("scores")
            for k, sp in enumerate(group):
                label, attrs = ungroup(labelset, sp.label_)
                score = float(group_scores[k]) if group_scores is not None else 1.0
                spans.append({"start": sp.start_char, "end": sp.end_char, "label": label,
                              "attributes": attrs, "score": round(score, 3)})
        probs = [p for p in beam.values() if p > 0.0]
        uncertainty = sum(1 - abs(2 * p - 1) for p in probs) / len(probs) if probs else 0.0
        out.append({"spans": spans, "uncertainty": round(uncertainty, 4)})
    return out

