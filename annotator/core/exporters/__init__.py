"""Training-ready exports over plain records (no Flask, no database).

A *record* is one exported annotation::

    {"document": {"id": 12, "external_id": "000_ce84...", "text": "...", "meta": {...}},
     "source": "annotator:alice",      # or "gold", "majority", "import"
     "annotator": "alice",             # or "gold" / "majority"
     "status": "submitted",
     "spans": [{"start": 0, "end": 2, "label": "ORG", "attributes": {}}, ...],
     "tokens": [(0, 2), (2, 3), ...] or None}   # stored token boundaries, else computed

and ``labels`` is the project's label set
(``[{"name", "kind": "entity"|"span", "attributes": {...}}]``).

Entry points for the CLI / API::

    report = export(records, labels, "spacy", out_dir, lang="ko", words=(...))
    for line in iter_jsonl(records, labels, lang="ko", words=(...)): ...

Every exporter streams: records are consumed one at a time, memory does not
grow with their number.  Nothing is silently lost: spans that do not align
with tokens are kept (jsonl: offsets with null token indices) or marked
missing (spacy/conll/hf), and listed in ``export-report.json``; below
``min_aligned`` (per label) the export raises :class:`ExportError` and leaves
only the report behind.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotator.core.exporters._common import ExportError, LabelSet, Report, prepare, split_of
from annotator.core.exporters.conll import ConllExporter
from annotator.core.exporters.docbin import SpacyExporter
from annotator.core.exporters.hf import HfExporter
from annotator.core.exporters.jsonl import FILENAME as _JSONL_FILE
from annotator.core.exporters.jsonl import JsonlExporter, plain_line
from annotator.core.exporters.jsonl import dumps as _jsonl_dumps

__all__ = ["EXPORTERS", "ExportError", "export", "iter_jsonl", "REPORT_FILE"]

EXPORTERS = {
    "jsonl": JsonlExporter,
    "spacy": SpacyExporter,
    "conll": ConllExporter,
    "hf": HfExporter,
}

REPORT_FILE = "export-report.json"


@dataclass
class ExportContext:
    labelset: LabelSet
    lang: str
    words: tuple
    dev: float
    seed: int
    report: Report


def export(records: Iterable[dict], labels: Sequence[Any], fmt: str, out_dir, lang: str = "ko",
           words: Sequence[str] = (), dev: float = 0.2, seed: int = 0,
           min_aligned: float | None = 0.99, tokens: bool = True) -> dict:
    """Write ``fmt`` (one of ``EXPORTERS``) into ``out_dir`` and return the
    report (also written to ``out_dir/export-report.json``).

    Files: jsonl -> ``annotations.jsonl``; spacy -> ``train.spacy``,
    ``dev.spacy``, ``config.cfg``; conll -> ``train.conll``, ``dev.conll``;
    hf -> ``train.jsonl``, ``dev.jsonl``, ``tags.json``.  The train/dev split
    (``dev`` fraction, ``seed``) is by document, stable across runs.

    Raises ``ExportError`` for an unknown format, a span outside its text or
    with a label outside ``labels``, or when for some label the share of
    spans aligned with tokens is below ``min_aligned`` (``None`` disables the
    check); data files are then removed and only the report stays.
    """
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {sorted(EXPORTERS)}")
    if not 0 <= dev < 1:
        raise ExportError(f"dev must be in [0, 1), not {dev!r}")
    if not tokens and fmt != "jsonl":
        raise ExportError(f"only jsonl can be written without tokens, not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not tokens:
        return _export_plain_jsonl(records, LabelSet(labels), lang, out)
    labelset = LabelSet(labels)
    words = tuple(words or ())
    report = Report(fmt, labelset, lang, min_aligned)
    ctx = ExportContext(labelset, lang, words, dev, seed, report)
    exporter = EXPORTERS[fmt](out, ctx)
    try:
        for record in records:
            p = prepare(record, labelset, lang, words)
            split = split_of(p.document, dev, seed) if exporter.split else None
            report.add(p, split)
            exporter.add(p, split)
    except BaseException:
        exporter.abort()
        raise
    failing = report.failing_labels()
    refusal = None if failing else getattr(exporter, "refusal", lambda: None)()
    if failing or refusal:
        exporter.abort()
    else:
        report.files.update(exporter.close())
    result = report.to_dict()
    if refusal:
        result["ok"] = False
        result["refused"] = refusal
    _write_report(out / REPORT_FILE, result)
    if failing:
        raise ExportError(report.failure_message(), report=result)
    if refusal:
        raise ExportError(refusal, report=result)
    return result


def _export_plain_jsonl(records: Iterable[dict], labelset: LabelSet, lang: str, out: Path) -> dict:
    path, tmp = out / _JSONL_FILE, out / f".{_JSONL_FILE}.part"
    n = docs = spans = 0
    last = None
    per_label = {name: 0 for name in labelset.by_name}
    try:
        with open(tmp, "wb") as f:
            for record in iter_plain_jsonl(records, labelset):
                f.write(record[0])
                n += 1
                doc_id = record[1]["document"].get("id")
                if doc_id != last:
                    docs, last = docs + 1, doc_id
                for sp in record[1].get("spans") or ():
                    per_label[sp["label"]] += 1
                    spans += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    result = {"format": "jsonl", "tokens": False, "lang": lang, "ok": True, "records": n,
              "documents": docs, "spans": spans,
              "labels": {k: {"total": v} for k, v in per_label.items()},
              "files": {_JSONL_FILE: {"records": n}},
              "notes": ["written without tokens: spans keep their character offsets only"]}
    _write_report(out / REPORT_FILE, result)
    return result


def iter_plain_jsonl(records: Iterable[dict], labelset: LabelSet) -> Iterator[tuple[bytes, dict]]:
    for record in records:
        yield plain_line(record, labelset), record


def _write_report(path: Path, report: dict) -> None:
    tmp = path.with_name("." + path.name + ".part")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf8")
    os.replace(tmp, path)


def iter_jsonl(records: Iterable[dict], labels: Sequence[Any], lang: str = "ko",
               words: Sequence[str] = (), report: dict | None = None,
               tokens: bool = True) -> Iterator[str | bytes]:
    """Yield ``jsonl`` export lines (``str`` ending in ``\\n``) one record at a
    time, for streamed HTTP responses.

    No alignment threshold here: jsonl keeps every span with its character
    offsets (unaligned ones get ``token_start``/``token_end`` null), so nothing
    is lost.  Pass a dict as ``report``: it is filled with the export report
    when the generator is exhausted.  Data errors (span outside the text,
    unknown label) raise ``ExportError`` when reached, so callers that must
    not send a truncated body should validate first or buffer.

    ``tokens=False`` yields ``bytes`` lines without tokens (no report).
    """
    labelset = LabelSet(labels)
    if not tokens:  # lines as UTF-8 bytes, nothing tokenized (see jsonl.plain_line)
        for line, _record in iter_plain_jsonl(records, labelset):
            yield line
        return
    words = tuple(words or ())
    rep = Report("jsonl", labelset, lang, None)
    for record in records:
        p = prepare(record, labelset, lang, words)
        rep.add(p)
        yield _jsonl_dumps(p)
    if report is not None:
        report.update(rep.to_dict())
