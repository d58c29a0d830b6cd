"""Importing documents: check every record first, then write all of them in one transaction.

Nothing is half-imported: one bad record refuses the whole upload, and the error names it
(line, field, span index, byte offset). Text is stored exactly as given (no normalisation of
any kind); only a UTF-8 byte order mark at the very start of a file is removed, and the
result says so in its ``notes``. Status codes: 400 when a file cannot be read (not UTF-8, not
JSON, a lone surrogate), 413 when a document is longer than MAX_DOCUMENT_CHARS, 422 for every
other rule.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath

import orjson
from sqlalchemy import JSON, DateTime
from sqlmodel import Session

from annotator.core.bodies import (
    LENIENT_KEYS,
    STRICT,
    DuplicateKey,
    JsonError,
    Utf8Error,
    clean_utf8,
    decode_utf8,
    json_type,
    may_repeat_a_key,
    name_problem,
    parse_json,
    shown,
    string_problems,
)
from annotator.core.errors import BadRequest, Invalid, PayloadTooLarge
from annotator.core.formats import PRODIGY_ANSWERS
from annotator.core.spans import SpanErrors, validate_spans
from annotator.services.projects import label_specs, project_labels
from annotator.services.users import get_user
from annotator.storage.fastsql import Statement
from annotator.storage.models import IMPORT_USER, Label, Project, utcnow

_TS = DateTime(timezone=True)
RECORD_KEYS = {"text", "id", "meta", "spans"}
MAX_ID = 255
MAX_DETAILS = 100  # problems an answer lists (its message counts them all)
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
CONLL_SUFFIXES = (".conll", ".conll03", ".bio", ".iob")
SUFFIXES = (".txt", *JSON_SUFFIXES, ".csv", *CONLL_SUFFIXES)
# Other tools' files (annotator/core/formats.py reads their spans into ours; every record is then
# checked here like any other). "ours": .txt, .csv, and JSON(L) of {text, id, meta, spans}.
FOREIGN = ("prodigy", "doccano", "conll")
FORMATS = ("auto", "ours", *FOREIGN)
PRODIGY_KEYS = ("_input_hash", "_task_hash", "answer", "tokens", "_view_id")
DEFAULT_PRODIGY_ANSWERS = frozenset({"accept"})


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Item:
    """Where a record of a JSON list is: its number in the list and the line it starts on."""

    n: int
    line: int | str


class _ListLines:
    """The line each item of a JSON list starts on, found only when a message needs one (by
    the item-by-item parser, ~10x slower than orjson's whole-list parse)."""

    def __init__(self, body: str):
        self.body, self.lines = body, []

    def of(self, n: int) -> int:
        if n > len(self.lines):  # parse the first items again, twice as many as last time
            upto = max(n, 2 * len(self.lines), 64)
            self.lines = [where.line for where, _ in _parse_json_list(self.body, upto)]
        return self.lines[n - 1]


class LazyItem(Item):
    """An Item whose line is looked up when it is first read."""

    def __init__(self, n: int, lines: _ListLines):
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "_lines", lines)

    @property
    def line(self) -> int:
        return self._lines.of(self.n)


def _loc(where) -> dict:
    """The details keys naming a record: its line, and for a JSON list item its number."""
    return {"item": where.n, "line": where.line} if isinstance(where, Item) else {"line": where}


def _loc_text(where) -> str:
    return f"item {where.n} (line {where.line})" if isinstance(where, Item) else f"line {where}"


def _refuse(details: list[dict], what: str = "the upload", cls=Invalid) -> None:
    first = details[0]
    if "line" in first:
        where = (f"item {first['item']} (line {first['line']})" if "item" in first
                 else f"line {first['line']}")
        where += f" ({shown(first['field'])})" if first.get("field") else ""
    else:
        where = what
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    if len(details) > MAX_DETAILS:  # a million bad items: an answer of what to fix first
        more = f" (and {len(details) - 1} more; the first {MAX_DETAILS} are listed)"
    raise cls(f"Nothing was imported: {where}: {first['reason']}{more}.", details[:MAX_DETAILS])


# --- parsing: bytes -> (line number, object) ---------------------------------------------

def bom_note(name: str) -> str:
    return f"A byte order mark (BOM) was removed from the start of {name}."


def decode_upload(data: bytes, name: str = "the upload") -> tuple[str, list[str]]:
    """UTF-8 only: ``(text, notes)``; a leading BOM is removed (and noted); invalid bytes are
    refused with their byte offset and line."""
    try:
        text, bom = decode_utf8(data)
    except Utf8Error as e:
        raise BadRequest(f"Nothing was imported: {name} is not valid UTF-8 (byte offset {e.byte}, "
                         f"line {e.line}).", [{"file": name, "byte": e.byte, "line": e.line,
                                               "reason": "invalid UTF-8"}]) from None
    return text, [bom_note(name)] if bom else []


def _json_error(line, e: JsonError) -> dict:
    out = {"line": line, "reason": f"not valid JSON: {e.reason}"}
    if e.line:
        out["column"] = e.column
        out["reason"] += f" at column {e.column}"
    return out


def _parse_json_list(body: str, most: int | None = None, strict: bool = False) -> list[tuple[int, object]]:
    """A JSON list: each item located by its number and the line it starts on (``most``
    given: the first ``most`` items only)."""
    ws = " \t\r\n"
    i = len(body) - len(body.lstrip(ws)) + 1  # past the "["
    out, n = [], len(body)
    counted, line = 0, 1  # newlines before ``counted``: counted incrementally, not per item

    def fail(reason, line, col):
        _refuse([{"line": line, "column": col,
                  "reason": f"not valid JSON: {reason} at column {col}"}], cls=BadRequest)

    def fail_at(reason, pos):
        fail(reason, body.count("\n", 0, pos) + 1, pos - (body.rfind("\n", 0, pos) + 1) + 1)

    while True:
        while i < n and body[i] in ws:
            i += 1
        if i < n and body[i] == "]" and not out:
            i += 1
            break
        line += body.count("\n", counted, i)
        counted = i
        try:
            item, i = parse_json(body, STRICT if strict else LENIENT_KEYS, start=i)
        except DuplicateKey as e:
            _refuse([{"item": len(out) + 1, "line": line, "field": e.key,
                      "reason": f"the key {e.key!r} is given twice"}])
        except JsonError as e:
            if e.line is None:
                _refuse([{"line": line, "reason": f"not valid JSON: {e.reason}"}], cls=BadRequest)
            fail(e.reason, e.line, e.column)
        out.append((Item(len(out) + 1, line), item))  # lone surrogates: check_records
        if most is not None and len(out) >= most:
            return out
        while i < n and body[i] in ws:
            i += 1
        if i < n and body[i] == ",":
            i += 1
        elif i < n and body[i] == "]":
            i += 1
            break
        else:
            fail_at("expecting ',' or ']'", i)
    while i < n and body[i] in ws:
        i += 1
    if i < n:
        fail_at("extra data after the list", i)
    return out


def parse_json_or_jsonl(body: str, name: str = "the upload") -> list[tuple[int, object]]:
    """A JSON list (items located by number and line, see Item) or JSON Lines (by line)."""
    if body.lstrip(" \t\r\n").startswith("["):
        try:
            whole = orjson.loads(body)  # the common case, at C speed; lines only if needed
        except orjson.JSONDecodeError:
            whole = None  # the item-by-item parser names where, in our words
        if isinstance(whole, list) and whole and may_repeat_a_key(body, whole):
            out = _parse_json_list(body, strict=True)
        elif isinstance(whole, list) and whole:
            lines = _ListLines(body)
            out = [(LazyItem(i, lines), item) for i, item in enumerate(whole, 1)]
        else:
            out = _parse_json_list(body)
    else:
        out, errors = [], []
        loads = orjson.loads  # ~4x faster than json.loads on long Korean lines
        for n, line in enumerate(body.split("\n"), 1):
            if not line or line.isspace():
                continue
            try:
                obj = loads(line)
                if may_repeat_a_key(line, obj):
                    try:
                        parse_json(line)  # STRICT: DuplicateKey when a key was given twice
                    except DuplicateKey as e:
                        errors.append({"line": n, "field": e.key, "reason": f"the key {e.key!r} is given twice"})
                        continue
                    except JsonError:
                        pass
                out.append((n, obj))
            except orjson.JSONDecodeError:
                # orjson refuses what it cannot represent; the standard parser says why in our
                # words (and accepts integers beyond 64 bits, which the rules then judge).
                try:
                    obj = parse_json(line, LENIENT_KEYS)
                except JsonError as e:
                    errors.append(_json_error(n, e))
                    continue
                out.append((n, obj))  # lone surrogates are refused by check_records
        if errors:
            _refuse(errors, cls=BadRequest)
    if not out:
        raise Invalid(f"Nothing was imported: {name} holds no documents.",
                      [{"file": name, "reason": "empty"}])
    return out


def parse_csv(text: str, name: str = "the upload") -> list[tuple[int, object]]:
    """A header row with a 'text' column, optional 'id'; other columns go to 'meta'.

    Records are numbered by the line they start on (a quoted cell may span lines).
    """
    csv.field_size_limit(2**31 - 1)  # documents are longer than the csv module's 128 KiB
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or "text" not in header:
            raise Invalid(f"Nothing was imported: {name} has no 'text' column "
                          f"(columns: {', '.join(header or []) or 'none'}).",
                          [{"file": name, "line": 1, "field": "text", "reason": "missing column"}])
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            _refuse([{"line": 1, "field": twice[0],
                      "reason": f"the column {twice[0]!r} appears twice"}])
        out, errors = [], []
        for row in reader:
            if not row:
                continue
            breaks = sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
            line = reader.line_num - breaks
            if len(row) > len(header):
                errors.append({"line": line, "field": None, "reason": f"more values than columns "
                               f"({len(row)} values, {len(header)} columns)"})
                continue
            rec = dict(zip(header, row))
            ext = rec.pop("id", None)
            out.append((line, {"text": rec.pop("text", None), **({"id": ext} if ext else {}),
                               "meta": rec}))
    except csv.Error as e:
        _refuse([{"line": reader.line_num, "reason": f"not valid CSV: {e}"}], cls=BadRequest)
    if errors:
        _refuse(errors)
    if not out:
        raise Invalid(f"Nothing was imported: {name} holds no documents.",
                      [{"file": name, "reason": "empty"}])
    return out


def detect_format(suffix: str, text: str) -> str:
    """``ours`` or a FOREIGN format, from the file's suffix and its first JSON line."""
    if suffix in CONLL_SUFFIXES:
        return "conll"
    if suffix in JSON_SUFFIXES and not text.lstrip().startswith("["):
        first = next((ln for ln in text.split("\n") if ln.strip()), "")
        try:
            return _kind_of(orjson.loads(first))
        except orjson.JSONDecodeError:
            return "ours"  # and the parser names the line
    return "ours"


def _kind_of(obj) -> str:
    if isinstance(obj, dict) and "spans" not in obj and ("label" in obj or "entities" in obj):
        return "doccano"
    if isinstance(obj, dict) and any(k in obj for k in PRODIGY_KEYS):
        return "prodigy"
    return "ours"


@contextmanager
def gc_paused():
    """No cyclic garbage collection while an import builds its records: profiled, 10,000
    records (~50,000 containers, none of them garbage) set off collections that walked
    them again and again, 10-20% of parsing them. Collection resumes as it was after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


def _jsonl_fast(data: bytes | bytearray, start: int = 0) -> list[tuple[int, object]] | None:
    """JSON Lines parsed straight from bytes, or None for anything unusual (a JSON list, a bad
    line, bad UTF-8, nothing at all), which then takes the str path and its exact messages.

    Profile (10,000 Korean documents, 44 MB): decoding the body to one str and handing each
    line to orjson as str (which re-encodes it to UTF-8) cost as much as parsing; orjson
    validates UTF-8 itself. Lines are handed to orjson as slices of one memoryview, not
    copied out (``split`` touched another 44 MB of fresh pages, see annotator/web/request.py).
    """
    first = _LEADING_SPACE.match(data, start).end()
    if data[first:first + 1] == b"[":
        return None
    out, loads, find = [], orjson.loads, data.find
    view = memoryview(data)
    end, n, pos = len(data), 0, start
    with gc_paused():
        while pos < end:
            nl = find(b"\n", pos)
            if nl < 0:
                nl = end
            n += 1
            if nl > pos:
                try:
                    obj = loads(view[pos:nl])
                    if may_repeat_a_key(data, obj, pos, nl):
                        view.release()
                        return None  # the str path finds the key given twice, if one was
                    out.append((n, obj))
                except orjson.JSONDecodeError:
                    if not bytes(view[pos:nl]).isspace():
                        view.release()
                        return None
            pos = nl + 1
    view.release()
    return out or None


def prodigy_answers(value: str | None) -> frozenset[str]:
    """The answers whose Prodigy records keep their spans, from ``accept,reject``-style text
    (``--prodigy-answers``, ``?prodigy_answers=``); None: accept only."""
    if value is None:
        return DEFAULT_PRODIGY_ANSWERS
    answers = [a.strip() for a in value.split(",")]
    bad = [a for a in answers if a not in PRODIGY_ANSWERS]
    if bad:
        raise Invalid(f"Unknown Prodigy answer {bad[0]!r} in prodigy_answers: "
                      f"list one or more of {', '.join(PRODIGY_ANSWERS)}, separated by commas.",
                      [{"field": "prodigy_answers", "reason": "unknown answer"}])
    return frozenset(answers)


def _answers_note(dropped: dict[str, int], keep: frozenset[str]) -> str:
    n = sum(dropped.values())
    which = " or ".join(a for a in PRODIGY_ANSWERS if a in dropped)
    counts = ", ".join(f"{a}: {dropped[a]}" for a in PRODIGY_ANSWERS if a in dropped)
    kept = ", ".join(a for a in PRODIGY_ANSWERS if a in keep)
    return (f"{n} Prodigy record{'s' if n > 1 else ''} answered {which} "
            f"{'were' if n > 1 else 'was'} imported without {'their' if n > 1 else 'its'} spans "
            f"({counts}); spans are kept for records answered {kept} (--prodigy-answers).")


def _parse_foreign(text: str, name: str, fmt: str, labels: list[dict] | None,
                   keep: frozenset[str] = DEFAULT_PRODIGY_ANSWERS
                   ) -> tuple[list[tuple[int, object]], list[str]]:
    """Another tool's file through annotator.core.formats, each record numbered by its line.

    A Prodigy record whose ``answer`` is not in ``keep`` is imported as a document without its
    spans (a rejected or ignored example is not training data), and a note counts them."""
    from annotator.core import formats

    try:
        records = formats.parse(text, fmt, labels)
    except formats.FormatError as e:
        details = [{k: v for k, v in d.items() if v is not None} for d in e.details]
        _refuse(details or [{"reason": str(e)}], name)
    if fmt == "conll":
        lines = [r["meta"].get("first_line", i) for i, r in enumerate(records, 1)]
    else:  # one record per non-blank line
        lines = [n for n, ln in enumerate(text.split("\n"), 1) if ln.strip()]
    out, dropped = [], {}
    for line, r in zip(lines, records):
        meta = {k: v for k, v in r["meta"].items() if not (fmt == "conll" and k == "first_line")}
        rec = {"text": r["text"], "meta": meta}
        answer = r.get("answer")
        if answer is None or answer in keep:
            rec["spans"] = r["spans"]
        else:
            dropped[answer] = dropped.get(answer, 0) + 1
        if r.get("id") is not None:
            rec["id"] = r["id"]
        out.append((line, rec))
    return out, [_answers_note(dropped, keep)] if dropped else []


def parse_upload(data: bytes, name: str, suffix: str | None = None, fmt: str = "auto",
                 labels: list[dict] | None = None,
                 keep: frozenset[str] = DEFAULT_PRODIGY_ANSWERS,
                 ) -> tuple[list[tuple[int, object]], list[str]]:
    """One file (or request body): ``(numbered records, notes)``. ``fmt`` ``auto`` decides by
    suffix and content (see detect_format): .txt is one document (id: the file's stem),
    .jsonl/.json/.ndjson ours, Prodigy's or doccano's, .csv, .conll/.bio/.iob BIO.
    ``labels`` (name, kind, attributes) let other tools' folded labels (CLAIM_favor) unfold;
    ``keep``: the Prodigy answers whose records keep their spans (see prodigy_answers)."""
    if fmt not in FORMATS:
        raise Invalid(f"Unknown import format {fmt!r}: use one of {', '.join(FORMATS)}.",
                      [{"field": "format", "reason": "unknown format"}])
    suffix = (suffix or PurePath(name).suffix).lower()
    if suffix not in SUFFIXES and fmt in ("auto", "ours"):
        raise Invalid(f"Cannot import {name}: use .txt, .jsonl, .csv or .conll.",
                      [{"file": name, "reason": "unknown file type"}])
    if fmt in ("auto", "ours") and suffix in JSON_SUFFIXES:
        bom = data.startswith(b"\xef\xbb\xbf")
        fast = _jsonl_fast(data, 3 if bom else 0)
        if fast is not None and (fmt == "ours" or _kind_of(fast[0][1]) == "ours"):
            return fast, [bom_note(name)] if bom else []
    text, notes = decode_upload(data, name)
    if fmt == "auto":
        fmt = detect_format(suffix, text)
    if fmt in FOREIGN:
        records, more = _parse_foreign(text, name, fmt, labels, keep)
        return records, notes + more
    if suffix == ".txt":
        return [(1, {"id": PurePath(name).stem, "text": text})], notes
    if suffix == ".csv":
        return parse_csv(text, name), notes
    return parse_json_or_jsonl(text, name), notes


def read_files(files: list[tuple[str, bytes]], fmt: str = "auto", labels: list[dict] | None = None,
               keep: frozenset[str] = DEFAULT_PRODIGY_ANSWERS,
               ) -> tuple[list[tuple[object, object]], list[str]]:
    """Several files as one upload; with more than one, records are numbered 'name:line'."""
    items, notes = [], []
    for name, data in files:
        records, file_notes = parse_upload(data, name, fmt=fmt, labels=labels, keep=keep)
        notes += file_notes
        if len(files) > 1:
            records = [(Item(w.n, f"{name}:{w.line}") if isinstance(w, Item) else f"{name}:{w}",
                        rec) for w, rec in records]
        items += records
    return items, notes


# --- checking ---------------------------------------------------------------------------

def check_records(items: list[tuple[int, object]], labels: list[Label], existing_ids: set[str],
                  max_chars: int = 1_000_000) -> Iterator[dict]:
    """Every rule, every record: yields each clean record as soon as it is checked, then
    raises naming each problem (so a caller that wrote some must roll back).

    A lone surrogate makes the refusal a 400, a document longer than ``max_chars`` a 413,
    any other problem a 422.
    """
    specs = label_specs(labels)
    errors: list[dict] = []
    unreadable: list[dict] = []  # lone surrogates (from \\ud800-style escapes): 400
    too_long: list[dict] = []
    seen_ids: dict[str, int] = {}
    seen_hash: dict[str, int] = {}
    for line, rec in items:
        def bad(field, reason, **more):
            if len(errors) >= MAX_DETAILS:  # counted; located only when listed (a JSON list's
                errors.append(errors[-1])  # lines are found by parsing it again)
                return
            errors.append({**_loc(line), "field": field, "reason": reason, **more})
        if not isinstance(rec, dict):
            bad("record", f"each document must be a JSON object, not {json_type(rec)}")
            continue
        extra = sorted(set(rec) - RECORD_KEYS)
        if extra:
            bad(extra[0], f"unknown field {extra[0]!r} (allowed: id, meta, spans, text)")
            continue
        text = rec.get("text")
        # the text (nearly all of a record) checked by encoding it, which its hash needs anyway
        encoded = clean_utf8(text) if isinstance(text, str) else None
        problems = string_problems(rec if encoded is None else
                                   {k: v for k, v in rec.items() if k != "text"})
        if problems:
            for kind, d, message in problems:
                (unreadable if kind == "surrogate" else errors).append(
                    {**_loc(line), **d, "reason": message})
            continue
        if not isinstance(text, str):
            bad("text", "missing 'text'" if text is None else
                f"'text' must be a string, not {json_type(text)}")
            continue
        if not text or text.isspace():  # (strip() would copy every text)
            bad("text", "'text' is empty")
            continue
        if len(text) > max_chars:
            too_long.append({**_loc(line), "field": "text", "characters": len(text),
                             "limit": max_chars, "reason": f"'text' has {len(text)} characters; "
                             f"the limit is {max_chars} (ANNOTATOR_MAX_DOCUMENT_CHARS)"})
            continue
        h = hashlib.sha256(encoded).hexdigest()
        ext = rec.get("id")
        if ext is None:
            ext = h[:16]
            if h in seen_hash:
                bad("text", f"same text as the document at {_loc_text(seen_hash[h])}; give each "
                    "an 'id' to keep both")
                continue
        elif isinstance(ext, bool) or not isinstance(ext, (str, int)):
            bad("id", f"'id' must be a string or a whole number, not {json_type(ext)}")
            continue
        ext = str(ext)
        if not ext or len(ext) > MAX_ID:
            bad("id", f"'id' must have 1-{MAX_ID} characters")
            continue
        problem = name_problem(ext, MAX_ID)
        if problem:
            bad("id", f"'id' {problem}")
            continue
        if ext in existing_ids:
            bad("id", f"a document with id {ext!r} is already in the project")
            continue
        if ext in seen_ids:
            bad("id", f"duplicate id {ext!r} (also at {_loc_text(seen_ids[ext])})")
            continue
        meta = rec.get("meta", {})
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            bad("meta", f"'meta' must be an object, not {json_type(meta)}")
            continue
        spans = None
        if rec.get("spans") is not None:
            try:
                spans = validate_spans(text, rec["spans"], specs)
            except SpanErrors as e:
                for d in e.details:
                    if "span" not in d:
                        errors.append({**_loc(line), **d})
                        continue
                    where = f"spans[{d['span']}]"
                    errors.append({**_loc(line), **d, "field": where if d["field"] == "span"
                                   else f"{where}.{d['field']}"})
                continue
        seen_ids[ext] = line
        seen_hash.setdefault(h, line)
        yield {"external_id": ext, "text": text, "utf8": encoded, "meta": meta,
               "content_hash": h, "spans": spans}
    if unreadable:
        _refuse(unreadable, cls=BadRequest)
    if too_long:
        _refuse(too_long + errors, cls=PayloadTooLarge)
    if errors:
        _refuse(errors)


# --- writing ----------------------------------------------------------------------------

_INSERT_DOCUMENT = Statement("INSERT INTO documents (project_id, external_id, text, meta, content_hash, "
                             "created_at) VALUES (:p, :x, UTF8(:t), :m, :h, :now)", m=JSON(), now=_TS)
_DOCUMENT_IDS = Statement("SELECT external_id, id FROM documents WHERE project_id = :p")
_INSERT_ANNOTATION = Statement("INSERT INTO annotations (document_id, user_id, status, version, created_at, "
                               "updated_at, submitted_at) VALUES (:d, :u, :status, 1, :now, :now, :sub)",
                               now=_TS, sub=_TS)
_ANNOTATION_IDS = Statement("SELECT a.document_id, a.id FROM annotations a JOIN documents d "
                            "ON d.id = a.document_id WHERE d.project_id = :p AND a.user_id = :u")
_INSERT_SPAN = Statement('INSERT INTO spans (annotation_id, "start", "end", label_id, attributes) '
                         "VALUES (:a, :s, :e, :l, :attrs)", attrs=JSON())
_INSERT_VERSION = Statement("INSERT INTO annotation_versions (annotation_id, version, status, spans, "
                            "saved_at, saved_by) VALUES (:a, 1, :status, :spans, :now, :by)",
                            spans=JSON(), now=_TS)


BATCH = 500  # documents per INSERT batch


def import_records(s: Session, project: Project, items: list[tuple[int, object]],
                   max_chars: int = 1_000_000) -> dict:
    """Check all, insert all in the caller's transaction. Returns counts.

    A fixed number of statements per batch of documents, each batch one executemany
    (profiled: SQLAlchemy's per-row parameter processing for 10,000 documents cost more
    than SQLite's insert; fastsql.Statement skips it). A batch is written as soon as it is
    checked, its text as the UTF-8 its hash was computed over, which is then freed: held for
    all 10,000 documents it was 44 MB of fresh pages (~11,000 page faults, 20-90 ms of system
    time on this virtual machine). A refusal raises after the last record, before the
    caller commits: nothing is half-imported.
    """
    labels = project_labels(s, project.id)
    conn = s.connection()
    existing = {x for x, _id in _DOCUMENT_IDS.all(conn, {"p": project.id})}
    now = utcnow()
    fixed = {"p": project.id, "now": now}
    n, batch, with_spans = 0, [], []
    with gc_paused():
        for r in check_records(items, labels, existing, max_chars):
            batch.append({"x": r["external_id"], "t": r.pop("utf8"), "m": r["meta"],
                          "h": r["content_hash"]})
            n += 1
            if r["spans"] is not None:
                with_spans.append(r)
            if len(batch) == BATCH:
                _INSERT_DOCUMENT.many(conn, batch, fixed=fixed)
                batch = []
        if batch:
            _INSERT_DOCUMENT.many(conn, batch, fixed=fixed)
    if with_spans:
        write_imported_spans(s, project, with_spans, labels, now)
    return {"imported": n, "with_spans": len(with_spans)}


def write_imported_spans(s: Session, project: Project, records: list[dict], labels: list[Label],
                         now) -> None:
    """Each record's spans as a submitted annotation (version 1, with its history row) of
    the pseudo-user ``import``; four statements for any number of records."""
    importer = get_user(s, IMPORT_USER)
    conn = s.connection()
    doc_ids = dict(_DOCUMENT_IDS.all(conn, {"p": project.id}))
    _INSERT_ANNOTATION.many(conn, [{"d": doc_ids[r["external_id"]], "u": importer.id,
                                    "status": "submitted", "now": now, "sub": now} for r in records])
    ann_ids = dict(_ANNOTATION_IDS.all(conn, {"p": project.id, "u": importer.id}))
    label_ids = {lab.name: lab.id for lab in labels}
    spans, versions = [], []
    for r in records:
        a = ann_ids[doc_ids[r["external_id"]]]
        spans += [{"a": a, "s": sp["start"], "e": sp["end"], "l": label_ids[sp["label"]],
                   "attrs": sp["attributes"]} for sp in r["spans"]]
        versions.append({"a": a, "status": "submitted", "spans": r["spans"], "now": now,
                         "by": importer.id})
    if spans:
        _INSERT_SPAN.many(conn, spans)
    _INSERT_VERSION.many(conn, versions)
