"""Import parsers for files carrying documents and (optionally) spans.

Every parser takes the file content (``str`` or ``bytes``; bytes are decoded
as UTF-8, a leading BOM dropped) and returns a list of plain dicts::

    {"text": str, "id": str | int | None, "meta": dict,
     "spans": [{"start": int, "end": int, "label": str, "attributes": dict}]}

with code-point offsets (end exclusive), or raises :class:`FormatError`
listing every problem with its line number (all or nothing: the whole file is
checked before anything is returned).

Formats: ``jsonl`` (ours and Prodigy/spaCy: ``spans`` with start/end/label),
``doccano`` (``label: [[start, end, label], ...]`` or ``entities``), ``conll``
(BIO; text rebuilt by joining tokens with single spaces, sentences with
``\\n``), ``txt`` (one document per file), ``csv`` (``text`` column, optional
``id``; other columns go to ``meta``).  ``parse(data, fmt, labels, name)``
dispatches; ``detect_format(name, data)`` guesses ``fmt`` from the file name.

Checks: JSON lines are objects, required fields present and typed,
``0 <= start < end <= len(text)``, labels in the label set (when given),
attribute values allowed and required attributes present (when the label set
declares them), entity-kind spans of one record do not overlap, a Prodigy
``answer`` is one of PRODIGY_ANSWERS (which answers keep their spans is the
importer's choice: annotator/services/importing.py). Every other span rule (whitespace,
grapheme clusters) is annotator/core/spans.py's, applied by the importer.  Attributes
may be given as ``attributes: {...}`` or as top-level span keys (the fixture's
``"stance"``), or folded into the label as spaCy exports them
(``CLAIM_favor``); all are normalised to ``attributes``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any

__all__ = ["FormatError", "FORMATS", "PRODIGY_ANSWERS", "parse", "detect_format", "parse_jsonl", "parse_doccano",
           "parse_conll", "parse_txt", "parse_csv"]


PRODIGY_ANSWERS = ("accept", "reject", "ignore")  # every answer Prodigy gives


class FormatError(ValueError):
    """A file that cannot be imported; ``details`` lists every problem as
    ``{"line": n, "field": name or None, "reason": text}``."""

    def __init__(self, message: str, details: list[dict] | None = None):
        self.details = list(details or [])
        if self.details:
            shown = "; ".join(f"line {d['line']}" + (f" ({d['field']})" if d.get("field") else "")
                              + f": {d['reason']}" for d in self.details[:5])
            more = f" (+{len(self.details) - 5} more)" if len(self.details) > 5 else ""
            message = f"{message}: {shown}{more}"
        super().__init__(message)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FormatError("file is not valid UTF-8",
                          [{"line": line, "field": None,
                            "reason": f"invalid UTF-8 byte at offset {e.start}"}]) from None


class _Labels:
    def __init__(self, labels: Iterable[Any] | None):
        self.by_name: dict[str, dict] | None = None
        if labels is not None:
            self.by_name = {}
            for lab in labels:
                if isinstance(lab, str):
                    lab = {"name": lab, "kind": "entity", "attributes": {}}
                self.by_name[lab["name"]] = {"name": lab["name"], "kind": lab.get("kind", "entity"),
                                             "attributes": dict(lab.get("attributes") or {})}

    def known(self, name: str) -> bool:
        return self.by_name is None or name in self.by_name

    def kind(self, name: str) -> str:
        return self.by_name[name]["kind"] if self.by_name and name in self.by_name else "entity"

    def attributes(self, name: str) -> dict:
        return self.by_name[name]["attributes"] if self.by_name and name in self.by_name else {}

    def unfold(self, label: str) -> tuple[str, dict] | None:
        """``CLAIM_favor`` -> (``CLAIM``, {"stance": "favor"}) when that is unambiguous."""
        if self.by_name is None or label in self.by_name or "_" not in label:
            return None
        base, _, value = label.rpartition("_")
        if base not in self.by_name:
            return None
        hits = [a for a, spec in self.by_name[base]["attributes"].items()
                if isinstance(spec, dict) and value in (spec.get("values") or ())]
        return (base, {hits[0]: value}) if len(hits) == 1 else None


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_span(raw: Any, text: str, labels: _Labels, line: int, field: str, errors: list) -> dict | None:
    """Validate and normalise one span given as a dict."""
    if not isinstance(raw, dict):
        errors.append({"line": line, "field": field, "reason": "span must be an object"})
        return None
    ok = True
    for key in ("start", "end", "label"):
        if key not in raw:
            errors.append({"line": line, "field": f"{field}.{key}", "reason": "required field missing"})
            ok = False
    if not ok:
        return None
    start, end, label = raw["start"], raw["end"], raw["label"]
    if not (_is_int(start) and _is_int(end)):
        errors.append({"line": line, "field": field, "reason": f"start/end must be integers, got {start!r}/{end!r}"})
        return None
    if not 0 <= start < end <= len(text):
        errors.append({"line": line, "field": field,
                       "reason": f"offsets {start}-{end} outside the text (need 0 <= start < end <= {len(text)})"})
        return None
    if not isinstance(label, str) or not label:
        errors.append({"line": line, "field": f"{field}.label", "reason": "label must be a non-empty string"})
        return None
    attrs = raw.get("attributes", {})
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict):
        errors.append({"line": line, "field": f"{field}.attributes", "reason": "attributes must be an object"})
        return None
    attrs = dict(attrs)
    unfolded = labels.unfold(label)
    if unfolded:
        label, extra = unfolded
        for k, v in extra.items():
            attrs.setdefault(k, v)
    if not labels.known(label):
        errors.append({"line": line, "field": f"{field}.label",
                       "reason": f"label {label!r} not in the label set {sorted(labels.by_name)}"})
        return None
    specs = labels.attributes(label)
    # top-level attribute keys (the fixture's "stance") move into attributes
    for key in ("stance",) if labels.by_name is None else specs:
        if key in raw and key not in ("start", "end", "label", "attributes"):
            if key in attrs and attrs[key] != raw[key]:
                errors.append({"line": line, "field": f"{field}.{key}",
                               "reason": f"{key} given twice with different values"})
                return None
            attrs[key] = raw[key]
    for name, spec in specs.items():
        if not isinstance(spec, dict):
            continue
        if attrs.get(name) is None:
            if spec.get("required"):
                errors.append({"line": line, "field": f"{field}.attributes.{name}",
                               "reason": f"required attribute {name!r} of {label} missing"})
                return None
            continue
        values = spec.get("values")
        if values and attrs[name] not in values:
            errors.append({"line": line, "field": f"{field}.attributes.{name}",
                           "reason": f"{name}={attrs[name]!r} not one of {list(values)}"})
            return None
    if labels.by_name is not None:
        unknown = [k for k in attrs if k not in specs]
        if unknown:
            errors.append({"line": line, "field": f"{field}.attributes",
                           "reason": f"attribute(s) {unknown} not defined for {label}"})
            return None
    return {"start": start, "end": end, "label": label, "attributes": attrs}


def _check_overlaps(spans: list[dict], labels: _Labels, line: int, errors: list) -> None:
    ents = sorted((s for s in spans if labels.kind(s["label"]) == "entity"), key=lambda s: (s["start"], s["end"]))
    for a, b in zip(ents, ents[1:]):
        if b["start"] < a["end"]:
            errors.append({"line": line, "field": "spans",
                           "reason": f"entity spans overlap: {a['start']}-{a['end']} {a['label']} and "
                                     f"{b['start']}-{b['end']} {b['label']}"})


def _fail(what: str, errors: list) -> None:
    if errors:
        raise FormatError(f"{what}: {len(errors)} problem(s), nothing imported", errors)


def _lines(text: str) -> list[str]:
    """Physical lines: split on \n only (str.splitlines would also split on
    U+2028, U+0085 ..., which JSON strings may contain raw)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _json_lines(text: str, errors: list):
    for n, raw in enumerate(_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            errors.append({"line": n, "field": None, "reason": f"invalid JSON: {e.msg} (column {e.colno})"})
            continue
        if not isinstance(obj, dict):
            errors.append({"line": n, "field": None, "reason": f"line must be a JSON object, not {type(obj).__name__}"})
            continue
        yield n, obj


def _text_field(obj: dict, n: int, errors: list) -> str | None:
    if "text" not in obj:
        errors.append({"line": n, "field": "text", "reason": "required field missing"})
        return None
    text = obj["text"]
    if not isinstance(text, str) or not text.strip():
        errors.append({"line": n, "field": "text", "reason": "text must be a non-empty string"})
        return None
    return text


def _id_field(obj: dict, n: int, errors: list):
    doc_id = obj.get("id")
    if doc_id is not None and not (isinstance(doc_id, str) or _is_int(doc_id)):
        errors.append({"line": n, "field": "id", "reason": "id must be a string or an integer"})
    return doc_id


# ---------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------
def parse_jsonl(data: str | bytes, labels: Sequence[Any] | None = None) -> list[dict]:
    """Our JSONL and Prodigy/spaCy JSONL: ``{"text", "id"?, "meta"?,
    "spans"?: [{start, end, label, attributes?|stance?}]}``.  Prodigy's
    ``tokens`` and span token indices are ignored (tokens are recomputed);
    its ``answer`` (accept, reject or ignore; anything else is refused) is kept in ``meta``
    and, when given, as the record's ``answer``."""
    text_all = _decode(data)
    labs, errors, out = _Labels(labels), [], []
    for n, obj in _json_lines(text_all, errors):
        text = _text_field(obj, n, errors)
        doc_id = _id_field(obj, n, errors)
        meta = obj.get("meta", {})
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            errors.append({"line": n, "field": "meta", "reason": "meta must be an object"})
            meta = {}
        meta = dict(meta)
        answer = obj.get("answer")
        if answer is not None and answer not in PRODIGY_ANSWERS:
            errors.append({"line": n, "field": "answer", "reason": f"answer {answer!r} is not one "
                           f"of {', '.join(PRODIGY_ANSWERS)}"})
        if "answer" in obj:
            meta.setdefault("answer", answer)
        raw_spans = obj.get("spans", [])
        if raw_spans is None:
            raw_spans = []
        if not isinstance(raw_spans, list):
            errors.append({"line": n, "field": "spans", "reason": "spans must be a list"})
            continue
        if text is None:
            continue
        spans = [s for i, raw in enumerate(raw_spans)
                 if (s := _check_span(raw, text, labs, n, f"spans[{i}]", errors)) is not None]
        _check_overlaps(spans, labs, n, errors)
        rec = {"text": text, "id": doc_id, "meta": meta, "spans": spans}
        if answer is not None:
            rec["answer"] = answer
        out.append(rec)
    _fail("JSONL", errors)
    return out


def parse_doccano(data: str | bytes, labels: Sequence[Any] | None = None) -> list[dict]:
    """doccano sequence-labelling JSONL: ``{"text", "label": [[start, end,
    label], ...]}`` (or the newer ``entities: [{start_offset, end_offset,
    label}]``).  Other top-level keys go to ``meta``."""
    text_all = _decode(data)
    labs, errors, out = _Labels(labels), [], []
    for n, obj in _json_lines(text_all, errors):
        text = _text_field(obj, n, errors)
        doc_id = _id_field(obj, n, errors)
        raw = []
        if "entities" in obj:
            ents = obj["entities"]
            if not isinstance(ents, list):
                errors.append({"line": n, "field": "entities", "reason": "entities must be a list"})
                continue
            for i, e in enumerate(ents):
                if not isinstance(e, dict):
                    errors.append({"line": n, "field": f"entities[{i}]", "reason": "entity must be an object"})
                    continue
                raw.append((i, {"start": e.get("start_offset"), "end": e.get("end_offset"),
                                "label": e.get("label")}, "entities"))
        else:
            triples = obj.get("label", [])
            if triples is None:
                triples = []
            if not isinstance(triples, list):
                errors.append({"line": n, "field": "label", "reason": "label must be a list of [start, end, label]"})
                continue
            for i, t in enumerate(triples):
                if not (isinstance(t, list) and len(t) == 3):
                    errors.append({"line": n, "field": f"label[{i}]",
                                   "reason": f"expected [start, end, label], got {t!r}"})
                    continue
                raw.append((i, {"start": t[0], "end": t[1], "label": t[2]}, "label"))
        if text is None:
            continue
        spans = [s for i, r, key in raw
                 if (s := _check_span(r, text, labs, n, f"{key}[{i}]", errors)) is not None]
        _check_overlaps(spans, labs, n, errors)
        meta = {k: v for k, v in obj.items() if k not in ("text", "label", "entities", "id")}
        out.append({"text": text, "id": doc_id, "meta": meta, "spans": spans})
    _fail("doccano JSONL", errors)
    return out


_TAG = re.compile(r"^(?:O|([BI])-(.+))$")


def parse_conll(data: str | bytes, labels: Sequence[Any] | None = None) -> list[dict]:
    """CoNLL BIO (``token ... TAG``: first column the token, last the tag).

    ``-DOCSTART-`` lines separate documents (a file without them has one
    document per blank-line-separated sentence).  The text is rebuilt by
    joining tokens with single spaces and sentences with ``\\n``; offsets
    follow.  ``I-X`` after ``O`` or another type starts an entity (IOB1)."""
    text_all = _decode(data)
    labs, errors = _Labels(labels), []
    lines = _lines(text_all)
    has_docstart = any(line.split()[:1] == ["-DOCSTART-"] for line in lines)
    docs: list[list[list[tuple[int, str, str]]]] = []  # doc -> sentence -> (line, token, tag)
    cur_doc: list = []
    cur_sent: list = []

    def end_sentence():
        nonlocal cur_sent
        if cur_sent:
            cur_doc.append(cur_sent)
            cur_sent = []
        if not has_docstart:
            end_doc()

    def end_doc():
        nonlocal cur_doc
        if cur_doc:
            docs.append(cur_doc)
            cur_doc = []

    for n, line in enumerate(lines, start=1):
        cols = line.split()
        if not cols:
            end_sentence()
            continue
        if cols[0] == "-DOCSTART-":
            end_sentence()
            end_doc()
            continue
        if len(cols) < 2:
            errors.append({"line": n, "field": "tag", "reason": f"expected 'token ... TAG', got {line.strip()!r}"})
            continue
        tag = cols[-1]
        m = _TAG.match(tag)
        if not m:
            errors.append({"line": n, "field": "tag", "reason": f"tag {tag!r} is not O, B-LABEL or I-LABEL"})
            continue
        if m.group(2) is not None and not labs.known(m.group(2)):
            errors.append({"line": n, "field": "tag",
                           "reason": f"label {m.group(2)!r} not in the label set {sorted(labs.by_name)}"})
            continue
        if m.group(2) is not None and labs.kind(m.group(2)) != "entity":
            errors.append({"line": n, "field": "tag", "reason": f"{m.group(2)} is a span label; BIO carries entities"})
            continue
        cur_sent.append((n, cols[0], tag))
    end_sentence()
    end_doc()

    out = []
    for doc in docs:
        parts: list[str] = []
        spans: list[dict] = []
        pos = 0
        for si, sent in enumerate(doc):
            if si:
                parts.append("\n")
                pos += 1
            open_span = None
            for ti, (_n, tok, tag) in enumerate(sent):
                if ti:
                    parts.append(" ")
                    pos += 1
                start, end = pos, pos + len(tok)
                parts.append(tok)
                pos = end
                prefix, _, label = tag.partition("-")
                if prefix == "I" and open_span and open_span["label"] == label:
                    open_span["end"] = end
                    continue
                if open_span:
                    spans.append(open_span)
                    open_span = None
                if prefix in ("B", "I"):
                    open_span = {"start": start, "end": end, "label": label, "attributes": {}}
            if open_span:
                spans.append(open_span)
        out.append({"text": "".join(parts), "id": None, "meta": {"first_line": doc[0][0][0]}, "spans": spans})
    if not out and not errors:
        errors.append({"line": 1, "field": None, "reason": "no tokens found"})
    _fail("CoNLL", errors)
    return out


def parse_txt(data: str | bytes, name: str | None = None) -> list[dict]:
    """One document per file; the text is kept exactly (no newline or
    whitespace normalisation); ``id`` is the file stem."""
    text = _decode(data)
    if not text.strip():
        raise FormatError("text file is empty", [{"line": 1, "field": "text", "reason": "no text"}])
    stem = PurePath(name).stem if name else None
    meta = {"filename": PurePath(name).name} if name else {}
    return [{"text": text, "id": stem, "meta": meta, "spans": []}]


def parse_csv(data: str | bytes, labels: Sequence[Any] | None = None) -> list[dict]:
    """CSV with a header row: a ``text`` column, optional ``id``; every other
    column goes to ``meta``.  Quoted multi-line texts keep their newlines."""
    text_all = _decode(data)
    reader = csv.DictReader(io.StringIO(text_all, newline=""))
    errors, out = [], []
    try:
        fields = reader.fieldnames
    except csv.Error as e:
        raise FormatError("CSV", [{"line": 1, "field": None, "reason": str(e)}]) from None
    if not fields or "text" not in fields:
        raise FormatError("CSV", [{"line": 1, "field": "text",
                                   "reason": f"header must have a 'text' column, got {fields}"}])
    if len(set(fields)) != len(fields):
        raise FormatError("CSV", [{"line": 1, "field": None, "reason": "duplicate column names"}])
    try:
        for row in reader:
            n = reader.line_num
            if None in row:
                errors.append({"line": n, "field": None, "reason": "more values than header columns"})
                continue
            text = row.get("text")
            if text is None or not text.strip():
                errors.append({"line": n, "field": "text", "reason": "text must be non-empty"})
                continue
            doc_id = row.get("id") or None
            meta = {k: v for k, v in row.items() if k not in ("text", "id")}
            out.append({"text": text, "id": doc_id, "meta": meta, "spans": []})
    except csv.Error as e:
        errors.append({"line": reader.line_num, "field": None, "reason": str(e)})
    if not out and not errors:
        errors.append({"line": 1, "field": None, "reason": "no rows"})
    _fail("CSV", errors)
    return out


FORMATS = {
    "jsonl": parse_jsonl,
    "prodigy": parse_jsonl,
    "doccano": parse_doccano,
    "conll": parse_conll,
    "txt": parse_txt,
    "csv": parse_csv,
}


def detect_format(name: str, data: str | bytes | None = None) -> str:
    """Guess the format from the file name (and, for .jsonl, the first line:
    doccano lines carry ``label``/``entities`` rather than ``spans``)."""
    suffix = PurePath(name).suffix.lower()
    if suffix in (".txt", ".text"):
        return "txt"
    if suffix == ".csv":
        return "csv"
    if suffix in (".conll", ".conll03", ".bio", ".iob"):
        return "conll"
    if suffix in (".jsonl", ".json", ".ndjson"):
        if data is not None:
            head = data[:65536]
            head = head.decode("utf-8-sig", "ignore") if isinstance(head, bytes) else head
            for line in _lines(head):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        break
                    if isinstance(obj, dict) and "spans" not in obj and ("label" in obj or "entities" in obj):
                        return "doccano"
                    break
        return "jsonl"
    raise FormatError(f"cannot tell the format of {name!r}",
                      [{"line": 1, "field": None, "reason": "unknown file extension"}])


def parse(data: str | bytes, fmt: str = "auto", labels: Sequence[Any] | None = None,
          name: str | None = None) -> list[dict]:
    """Parse ``data`` as ``fmt`` (``auto``: from ``name``)."""
    if fmt == "auto":
        if not name:
            raise FormatError("format 'auto' needs a file name")
        fmt = detect_format(name, data)
    if fmt not in FORMATS:
        raise FormatError(f"unknown import format {fmt!r}; choose one of {sorted(FORMATS)}")
    if fmt == "txt":
        return parse_txt(data, name)
    return FORMATS[fmt](data, labels)
