"""``jsonl``: one line per exported annotation, Prodigy-like.

``{"id", "text", "spans": [{start, end, label, attributes, token_start,
token_end}], "tokens": [{text, start, end, id, ws}], "meta": {...}}``.
Token indices are inclusive and index ``tokens`` (which, as in a spaCy Doc,
includes whitespace tokens such as ``"\\n"``); they are ``null`` for a span that
does not align with tokens -- the span itself is always there, with its exact
character offsets.  Text is written byte-exact (``ensure_ascii=False``).
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from annotator.core.exporters._common import ExportError, LabelSet, Prepared, doc_key

FILENAME = "annotations.jsonl"


def line_meta(record: dict, document: dict) -> dict:
    """The line's ``meta``: the document's own, plus where the annotation came from."""
    meta = dict(document.get("meta") or {})
    meta.update({
        "document_id": document.get("id"),
        "external_id": document.get("external_id"),
        "annotator": record.get("annotator") or "gold",
        "source": record.get("source"),
        "status": record.get("status"),
    })
    return meta


def build_line(p: Prepared) -> dict:
    record, document = p.record, p.document
    meta = line_meta(record, document)
    spans = []
    for s in sorted(p.spans, key=lambda s: (s.start, -s.end, s.label)):
        span = {"start": s.start, "end": s.end, "label": s.label, "attributes": s.attributes,
                "token_start": s.token_start, "token_end": s.token_end}
        if s.origin is not None:
            span["origin"] = s.origin
        spans.append(span)
    tokens = [{"text": p.text[s:e], "start": s, "end": e, "id": i, "ws": ws}
              for i, (s, e, ws) in enumerate(p.toks)]
    return {"id": doc_key(document), "text": p.text, "spans": spans, "tokens": tokens, "meta": meta}


def plain_line(record: dict, labelset: LabelSet) -> bytes:
    """The line without tokens (``tokens=false``): ``{"id", "text", "spans": [{start, end,
    label, attributes}], "meta"}``. Nothing is tokenized, so nothing needs Kiwi or spaCy;
    spans are checked as ``prepare`` checks them (inside the text, label in the set).

    ``text`` is a ``str``, or an ``orjson.Fragment`` holding its JSON string literal with
    ``text_length`` (code points) beside it (``iter_records(json_text=True)``)."""
    document = record["document"]
    text = document["text"]
    n = len(text) if isinstance(text, str) else document["text_length"]
    spans = []
    for sp in record.get("spans") or ():
        start, end, label = sp["start"], sp["end"], sp["label"]
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= n):
            raise ExportError(f"document {doc_key(document)!r}: span {start}-{end} {label} is outside "
                              f"the text (length {n})")
        if label not in labelset.by_name:
            raise ExportError(f"document {doc_key(document)!r}: span {start}-{end} has label {label!r}, "
                              f"not in the label set {sorted(labelset.by_name)}")
        span = {"start": start, "end": end, "label": label,
                "attributes": dict(sp.get("attributes") or {})}
        if "origin" in sp:
            span["origin"] = sp["origin"]
        spans.append(span)
    spans.sort(key=lambda s: (s["start"], -s["end"], s["label"]))
    meta = line_meta(record, document)
    return orjson.dumps({"id": doc_key(document), "text": text, "spans": spans, "meta": meta},
                        option=orjson.OPT_APPEND_NEWLINE)  # not `+ b"\n"`: a copy of each line


def dumps(p: Prepared) -> str:
    # orjson: ~10x faster than json.dumps on token lists (profiled: serialisation was ~70%
    # of a jsonl export); output is UTF-8 with compact separators.
    return orjson.dumps(build_line(p)).decode() + "\n"


class JsonlExporter:
    split = False

    def __init__(self, out_dir: Path, ctx):
        self.path = Path(out_dir) / FILENAME
        self.tmp = self.path.with_name("." + FILENAME + ".part")
        self.f = open(self.tmp, "w", encoding="utf8", newline="")
        self.n = 0

    def add(self, p: Prepared, split: str | None) -> None:
        self.f.write(dumps(p))
        self.n += 1

    def close(self) -> dict:
        self.f.close()
        os.replace(self.tmp, self.path)
        return {FILENAME: {"records": self.n}}

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)
