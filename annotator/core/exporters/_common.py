"""Shared pieces of the exporters: label set, record preparation (tokens +
span alignment), the deterministic train/dev split and the export report.

Pure Python: no spaCy import here (only the ``spacy`` exporter needs it).
"""
from __future__ import annotations

import bisect
import hashlib
import operator
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotator.core import nlp as _nlp

_SIDE = (operator.itemgetter(0), operator.itemgetter(1))


class ExportError(Exception):
    """An export that cannot be produced faithfully (unknown label, bad
    offsets, too many spans that do not align with tokens, ...).

    ``report`` holds the export report when one was built."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------
class LabelSet:
    """``labels`` as given to ``export``: ``[{"name", "kind", "attributes"}]``
    (plain names are accepted and mean kind ``entity``)."""

    def __init__(self, labels: Iterable[Any]):
        self.labels: list[dict] = []
        for lab in labels:
            if isinstance(lab, str):
                lab = {"name": lab, "kind": "entity", "attributes": {}}
            lab = {"name": lab["name"], "kind": lab.get("kind", "entity"),
                   "attributes": dict(lab.get("attributes") or {})}
            if lab["kind"] not in ("entity", "span"):
                raise ExportError(f"label {lab['name']!r}: kind must be 'entity' or 'span', not {lab['kind']!r}")
            self.labels.append(lab)
        self.by_name = {lab["name"]: lab for lab in self.labels}
        self.entity_labels = [lab["name"] for lab in self.labels if lab["kind"] == "entity"]
        self.span_labels = [lab["name"] for lab in self.labels if lab["kind"] == "span"]
        # BIO tag inventory for conll/hf: O, then B-/I- per entity label in label-set order.
        self.bio_tags = ["O"] + [f"{p}-{n}" for n in self.entity_labels for p in ("B", "I")]

    def kind(self, name: str) -> str:
        return self.by_name[name]["kind"]

    def group_label(self, label: str, attributes: dict) -> str:
        """Label for ``doc.spans``: the name plus the values of its enumerated
        attributes, in definition order (``CLAIM`` + stance favor ->
        ``CLAIM_favor``)."""
        parts = [label]
        for attr, spec in self.by_name[label]["attributes"].items():
            if isinstance(spec, dict) and spec.get("values") and attributes.get(attr) is not None:
                parts.append(str(attributes[attr]))
        return "_".join(parts)


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------
def doc_key(document: dict) -> str:
    """Stable document key: external id when there is one, else the DB id."""
    ext = document.get("external_id")
    return str(ext if ext not in (None, "") else document.get("id"))


def split_of(document: dict, dev: float, seed: int) -> str:
    """``"dev"`` or ``"train"``, decided by a hash of the document key and the
    seed: stable across runs and databases, and every annotation of one
    document lands in the same split (no leakage)."""
    if dev <= 0:
        return "train"
    h = hashlib.sha1(f"{seed}:{doc_key(document)}".encode()).digest()
    return "dev" if int.from_bytes(h[:8], "big") / 2.0**64 < dev else "train"


@dataclass
class PreparedSpan:
    start: int
    end: int
    label: str
    attributes: dict
    kind: str
    token_start: int | None = None  # index into Prepared.toks (incl. whitespace tokens)
    token_end: int | None = None  # inclusive
    problem: str | None = None  # None when aligned
    origin: dict | None = None  # provenance, when the export asked for it

    @property
    def aligned(self) -> bool:
        return self.problem is None


@dataclass
class Prepared:
    record: dict
    text: str
    boundaries: list  # non-whitespace tokens (start, end)
    toks: list  # all tokens (start, end, ws) incl. whitespace tokens, as in the spaCy Doc
    spans: list = field(default_factory=list)

    @property
    def document(self) -> dict:
        return self.record["document"]

    def token_text(self, i: int) -> str:
        s, e, _ = self.toks[i]
        return self.text[s:e]

    def is_space(self, i: int) -> bool:
        s, e, _ = self.toks[i]
        return self.text[s:e].isspace()

    def covering(self, start: int, end: int) -> list[int]:
        """Indices of tokens overlapping [start, end)."""
        starts = [t[0] for t in self.toks]
        i = max(0, bisect.bisect_right(starts, start) - 1)
        out = []
        while i < len(self.toks) and self.toks[i][0] < end:
            if self.toks[i][1] > start:
                out.append(i)
            i += 1
        return out


def prepare(record: dict, labelset: LabelSet, lang: str, words: Sequence[str]) -> Prepared:
    """Tokens and span alignment for one record.

    Uses ``record["tokens"]`` when present (what the web app stored), after a
    cheap validity check; computes them with ``nlp.get_tokenizer_boundaries``
    otherwise.  Raises ``ExportError`` for spans with impossible offsets or
    labels outside the label set: those are data errors, not alignment
    problems."""
    document = record["document"]
    text = document["text"]
    tokens = record.get("tokens")
    if tokens is None:
        boundaries = _nlp.get_tokenizer_boundaries(text, lang, words)
    else:
        boundaries = _nlp.normalise_boundaries(text, tokens, split_scripts=False)
    toks = _nlp.doc_tokens(text, boundaries)
    n_toks = len(toks)

    def at(offset: int, side: int) -> int | None:
        # the token starting (side 0) or ending (side 1) at offset, by bisection: building
        # offset -> index maps of every token cost more than the rest of prepare (profiled)
        i = bisect.bisect_left(toks, offset, key=_SIDE[side])
        return i if i < n_toks and toks[i][side] == offset else None

    prepared = Prepared(record, text, boundaries, toks)
    n = len(text)
    where = f"document {doc_key(document)!r} ({record.get('source') or record.get('annotator')})"
    for sp in record.get("spans") or ():
        start, end, label = sp["start"], sp["end"], sp["label"]
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= n):
            raise ExportError(f"{where}: span {start}-{end} {label} is outside the text (length {n})")
        if label not in labelset.by_name:
            raise ExportError(f"{where}: span {start}-{end} has label {label!r}, not in the label set "
                              f"{sorted(labelset.by_name)}")
        attrs = dict(sp.get("attributes") or {})
        ps = PreparedSpan(start, end, label, attrs, labelset.kind(label), origin=sp.get("origin"))
        ts, te = at(start, 0), at(end, 1)
        if ts is None or te is None:
            bad = []
            if ts is None:
                bad.append("start")
            if te is None:
                bad.append("end")
            ps.problem = " and ".join(bad) + " inside a token"
        else:
            ps.token_start, ps.token_end = ts, te
        prepared.spans.append(ps)
    # Entity-kind spans may not overlap within one annotation.
    ents = sorted((s for s in prepared.spans if s.kind == "entity"), key=lambda s: (s.start, -s.end))
    reach = None
    for s in ents:
        if reach is not None and s.start < reach.end:
            for x in (reach, s):
                x.problem = "overlaps another entity span" if x.problem is None else \
                    x.problem + "; overlaps another entity span"
        if reach is None or s.end > reach.end:
            reach = s
    return prepared


def missing_token_ranges(p: Prepared) -> list[tuple[int, int]]:
    """Merged [start, end) token-index ranges covering entity spans that could
    not be placed in ``doc.ents``: their tokens are marked missing (unknown),
    never outside and never stretched into an entity."""
    idx = sorted({i for s in p.spans if s.kind == "entity" and not s.aligned for i in p.covering(s.start, s.end)})
    out: list[tuple[int, int]] = []
    for i in idx:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def bio_tags(p: Prepared) -> list[str]:
    """BIO tag per token of ``p.toks`` (whitespace tokens included, tagged
    ``O``); tokens of misaligned/overlapping entity spans get ``"-"``
    (missing)."""
    tags = ["O"] * len(p.toks)
    for s in p.spans:
        if s.kind == "entity" and s.aligned:
            tags[s.token_start] = "B-" + s.label
            for i in range(s.token_start + 1, s.token_end + 1):
                tags[i] = "I-" + s.label
    for a, b in missing_token_ranges(p):
        for i in range(a, b):
            tags[i] = "-"
    return tags


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
class Report:
    """Counts per label, every span that did not align (document, offsets,
    text, label, covering tokens), files written.  Memory grows only with the
    number of problems, not with the number of documents."""

    def __init__(self, fmt: str, labelset: LabelSet, lang: str, min_aligned: float | None):
        self.fmt = fmt
        self.labelset = labelset
        self.lang = lang
        self.min_aligned = min_aligned
        self.records = 0
        # Distinct documents, counted as changes of document between consecutive
        # records (records of one document come together, as iter_records yields
        # them): a set of keys would grow with N.
        self.documents = 0
        self._last_doc = None
        self.per_label = OrderedDict((name, {"total": 0, "aligned": 0}) for name in labelset.by_name)
        self.problems: list[dict] = []
        self.not_exported: dict[str, int] = {}
        self.splits: dict[str, int] = {}
        self.files: dict[str, dict] = {}
        self.notes: list[str] = []

    def add(self, p: Prepared, split: str | None = None) -> None:
        self.records += 1
        document = p.document
        key = doc_key(document)
        if key != self._last_doc:
            self.documents += 1
            self._last_doc = key
        if split:
            self.splits[split] = self.splits.get(split, 0) + 1
        for s in p.spans:
            c = self.per_label[s.label]
            c["total"] += 1
            if s.aligned:
                c["aligned"] += 1
                continue
            self.problems.append({
                "document_id": document.get("id"),
                "external_id": document.get("external_id"),
                "source": p.record.get("source"),
                "annotator": p.record.get("annotator"),
                "start": s.start, "end": s.end, "label": s.label,
                "text": p.text[s.start:s.end],
                "reason": s.problem,
                "tokens": [{"start": p.toks[i][0], "end": p.toks[i][1], "text": p.token_text(i)}
                           for i in p.covering(s.start, s.end)],
            })

    def count_not_exported(self, label: str, n: int = 1) -> None:
        self.not_exported[label] = self.not_exported.get(label, 0) + n

    def failing_labels(self) -> list[str]:
        if self.min_aligned is None:
            return []
        return [name for name, c in self.per_label.items()
                if c["total"] and c["aligned"] / c["total"] < self.min_aligned]

    def to_dict(self) -> dict:
        total = sum(c["total"] for c in self.per_label.values())
        aligned = sum(c["aligned"] for c in self.per_label.values())
        labels = OrderedDict()
        for name, c in self.per_label.items():
            labels[name] = dict(c, rate=(c["aligned"] / c["total"]) if c["total"] else None)
        failing = self.failing_labels()
        return {
            "format": self.fmt,
            "lang": self.lang,
            "ok": not failing,
            "min_aligned": self.min_aligned,
            "records": self.records,
            "documents": self.documents,
            "spans": total,
            "aligned": aligned,
            "aligned_rate": (aligned / total) if total else None,
            "labels": labels,
            "failing_labels": failing,
            "misaligned": self.problems,
            "not_exported": self.not_exported,
            "splits": self.splits,
            "files": self.files,
            "notes": self.notes,
        }

    def failure_message(self) -> str:
        parts = []
        for name in self.failing_labels():
            c = self.per_label[name]
            parts.append(f"{name} {c['aligned']}/{c['total']} ({c['aligned'] / c['total']:.1%})")
        return (f"export refused: spans aligned with tokens below min_aligned={self.min_aligned} for "
                + ", ".join(parts) + f"; {len(self.problems)} span(s) listed in export-report.json "
                "(fix the annotations or the tokenizer/word list, or lower min_aligned)")
