"""Reading what clients send, and the checks every request body and upload shares.

One place for each rule:

- bytes -> text: UTF-8 only; invalid bytes are refused with their byte offset and line; a
  leading byte order mark (BOM) is removed and the caller is told (``decode_utf8``);
- text -> JSON: NaN and Infinity are not JSON (nor is 1e400), numbers have at most 4300
  digits, and nesting too deep to parse is refused rather than crashing (``parse_json``);
  request bodies also refuse duplicate keys (the last one would win silently);
- strings no database column can hold: NUL, and lone surrogates (a ``"\\ud800"`` escape
  encodes no character), in values and in keys, at any depth; containers nested deeper than
  ``MAX_DEPTH`` (``string_problems``);
- objects: unknown fields refused (never ignored), required fields present, each field of
  its JSON type, every problem listed at once (``check_object``).

Status codes: 400 when the body cannot be read as JSON text (empty, not UTF-8, not JSON, a
lone surrogate); 422 when it can but breaks a rule (types, fields, NUL, depth).
"""

from __future__ import annotations

import json
import math
import re

import orjson

from annotator.core.errors import BadRequest, Invalid, PayloadTooLarge
from annotator.core.numbers import INT_MAX, INT_MIN, in_range

UTF8_BOM = b"\xef\xbb\xbf"
MAX_DEPTH = 64  # levels of lists and objects a JSON body may nest (an upload's record too)
MAX_JSON_BYTES = 16 << 20  # a JSON request body other than an upload (ANNOTATOR_MAX_UPLOAD_MB)
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


# --- bytes -> text --------------------------------------------------------------------------

class Utf8Error(ValueError):
    def __init__(self, byte: int, line: int):
        super().__init__(f"invalid UTF-8 at byte offset {byte} (line {line})")
        self.byte, self.line = byte, line


def decode_utf8(data: bytes) -> tuple[str, bool]:
    """``(text, had_bom)``: strict UTF-8; offsets in a Utf8Error count the BOM's bytes too."""
    bom = data.startswith(UTF8_BOM)
    body = data[3:] if bom else data
    try:
        return body.decode("utf-8"), bom
    except UnicodeDecodeError as e:
        skip = 3 if bom else 0
        raise Utf8Error(e.start + skip, data.count(b"\n", 0, e.start + skip) + 1) from None


# --- text -> JSON ---------------------------------------------------------------------------

class JsonError(ValueError):
    """Not JSON; ``line``/``column`` are 1-based positions in the text (None when unknown)."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None):
        super().__init__(reason)
        self.reason, self.line, self.column = reason, line, column

    def where(self) -> str:
        return f" at line {self.line}, column {self.column}" if self.line else ""


class DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def _unique_pairs(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return out


STRICT = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite,
                          object_pairs_hook=_unique_pairs)
LENIENT_KEYS = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, in linear time
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_over(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON ``text`` nests lists and objects deeper than ``limit``, found before
    it is parsed (so that nothing that deep is ever built, and no parser recurses into it).
    Brackets inside strings do not count. What is left of the text, its brackets, loses its
    innermost pairs once a round: still there after ``limit`` rounds means deeper (or
    unbalanced, which the parser then names: not counted as deep)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    # outside strings: every other piece between quotes, unless a quote is escaped somewhere
    outside = _STRING.sub("", text) if '\\"' in text else "".join(text.split('"')[::2])
    skeleton = _NOT_BRACKET.sub("", outside)
    for _ in range(limit):
        shorter = skeleton.replace("[]", "").replace("{}", "")
        if shorter == skeleton:
            return False  # empty, or unbalanced
        skeleton = shorter
    return bool(skeleton) and (skeleton.count("[") == skeleton.count("]")
                               and skeleton.count("{") == skeleton.count("}"))


def parse_json(text: str, decoder: json.JSONDecoder = STRICT, start: int | None = None):
    """One JSON value (``start`` given: ``(value, end)`` from ``decoder.raw_decode``).

    Raises JsonError, or DuplicateKey with the STRICT decoder.
    """
    try:
        return decoder.decode(text) if start is None else decoder.raw_decode(text, start)
    except json.JSONDecodeError as e:
        msg = e.msg.removesuffix(" at")  # "Invalid control character at"
        raise JsonError(msg[:1].lower() + msg[1:], e.lineno, e.colno) from None
    except RecursionError:
        raise JsonError("it is nested too deeply to read") from None
    except ValueError as e:  # NaN/Infinity/1e400, or an integer of more than 4300 digits
        reason = str(e)
        if "integer string conversion" in reason:
            reason = "a number has more than 4300 digits"
        raise JsonError(reason) from None


def keys_in(value) -> int:
    """How many keys the objects in ``value`` hold, at any depth."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            n += len(v)
            stack.extend(x for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, (dict, list)))
    return n


def may_repeat_a_key(raw, value, start: int = 0, end: int | None = None) -> bool:
    """False when the JSON text ``raw[start:end]`` (str, bytes or bytearray) surely gave no key
    twice to the parser that read it as ``value`` (orjson keeps the last one, silently).

    Every key of the text is followed by a colon, so the text has at least as many colons as
    keys, and the parse fewer keys when one was repeated: as many of both means none was
    (one ``count``, at memchr speed). Colons in strings (a time, '기자: ...') spoil that count;
    then only the colons right after a quote (spaces between allowed) are counted, which every
    key's colon is. True sends the text to the strict parser, which knows."""
    end = len(raw) if end is None else end
    keys = keys_in(value)
    text = isinstance(raw, str)
    colon, quote, spaces = (":", '"', " \t\r\n") if text else (b":", ord('"'), b" \t\r\n")
    if raw.count(colon, start, end) == keys:
        return False
    found, i = 0, raw.find(colon, start, end)
    while i >= 0:
        j = i - 1
        while j >= start and raw[j] in spaces:
            j -= 1
        if j >= start and raw[j] == quote:
            found += 1
        i = raw.find(colon, i + 1, end)
    return found != keys


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# --- strings and depth ------------------------------------------------------------------------

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def shown(text: str) -> str:
    """``text`` safe for a message or a terminal: control characters and surrogates escaped."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _char_problem(path: str, text: str, offset: int, key: bool = False) -> tuple[str, dict, str]:
    ch = text[offset]
    shown_path = shown(path)
    place = f"at offset {offset}" + (" of its name" if key else "")
    if ch == "\x00":
        return ("nul", {"field": path, "offset": offset,
                        "reason": "NUL character" + " in the name" * key},
                f"'{shown_path}' contains a NUL character {place}, which cannot be stored")
    code = f"U+{ord(ch):04X}"
    return ("surrogate", {"field": path, "offset": offset,
                          "reason": f"lone surrogate {code}" + " in the name" * key},
            f"'{shown_path}' contains a lone surrogate ({code}) {place}, which is not a character")


def _render(node, prefix: str = "") -> str:
    """A path node ``(parent, key, is_index)`` as ``a.b[0].c``."""
    parts = []
    while node is not None:
        node, key, is_index = node
        parts.append(f"[{key}]" if is_index else f".{key}")
    path = prefix + "".join(reversed(parts))
    return path.removeprefix(".") or "body"


def _clean_fast(value, max_depth: int) -> bool:
    """True when ``value`` surely has no problem: orjson (C) refuses lone surrogates, writes
    NUL as \\u0000, and its output cannot nest deeper than it has brackets. Anything
    doubtful (a backslash-u0000 in the text, many brackets) goes to the exact walk."""
    try:
        data = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a surrogate, a huge integer, a non-str key
        return False
    return b"\\u0000" not in data and data.count(b"{") + data.count(b"[") <= max_depth


Problem = tuple[str, dict, str]  # (kind, detail, message)


def clean_utf8(text: str) -> bytes | None:
    """``text`` as UTF-8 when it holds neither NUL nor a lone surrogate (which UTF-8 cannot
    encode), else None: the string rule for one long string, at the cost of encoding it.
    Profiled on an import of 10,000 documents: ``string_problems`` re-serialising each record
    to look for these was ~15% of the request; the importer needs the UTF-8 for the hash."""
    if "\x00" in text:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def string_problems(value, path: str = "", max_depth: int = MAX_DEPTH) -> list[Problem]:
    """``(kind, detail, message)`` for every string or key holding NUL or a lone surrogate
    (kind ``nul`` / ``surrogate``) and every container nested deeper than ``max_depth``
    (kind ``depth``), in document order. Recursion stops at ``max_depth``; paths are built
    only for problems (this runs on every record of an import)."""
    if _clean_fast(value, max_depth):
        return []
    problems: list[Problem] = []
    search = _BAD_CHAR.search

    def deep(node):
        top = _render(node, path).split(".")[0].split("[")[0] or "body"
        problems.append(("depth", {"field": top,
                                   "reason": f"nested deeper than {max_depth} levels"},
                         f"'{top}' is nested deeper than {max_depth} levels"))

    def walk(v, node, depth):
        if depth >= max_depth:
            deep(node)
            return
        items = v.items() if isinstance(v, dict) else enumerate(v)
        is_index = not isinstance(v, dict)
        for key, x in items:
            if not is_index and isinstance(key, str):
                m = search(key)
                if m:
                    problems.append(_char_problem(_render((node, key, False), path), key, m.start(),
                                                  key=True))
                    continue
            if isinstance(x, str):
                m = search(x)
                if m:
                    where = _render((node, key, is_index), path)
                    problems.append(_char_problem(where, x, m.start()))
            elif isinstance(x, (dict, list)):
                walk(x, (node, key, is_index), depth + 1)

    if isinstance(value, str):
        m = search(value)
        if m:
            problems.append(_char_problem(path or "body", value, m.start()))
    elif isinstance(value, (dict, list)):
        walk(value, None, 0)
    return problems


# --- names ------------------------------------------------------------------------------------

# Control characters (C0, DEL, C1), line and paragraph separators, bidirectional overrides and
# isolates (text that displays other than it reads), and lone surrogates.
_NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def name_problem(value, max_chars: int = 200) -> str | None:
    """Why ``value`` is not a name (of a project, a pattern, a document, an attribute value),
    or None: a string of 1-``max_chars`` characters with no space at its ends and no control
    character (nor a line separator, a bidirectional override, a lone surrogate)."""
    if not isinstance(value, str):
        return f"must be a string, not {json_type(value)}"
    if not value or value.isspace():
        return "must not be empty"
    if len(value) > max_chars:
        return f"must have at most {max_chars} characters (it has {len(value)})"
    m = _NOT_IN_A_NAME.search(value)
    if m:
        return f"must not contain the control character U+{ord(m.group()):04X} (at offset {m.start()})"
    if value != value.strip():
        return "must not start or end with a space"
    return None


def refuse_string_problems(problems: list[Problem]) -> None:
    """Raise for ``string_problems``: 400 when a string is not text (lone surrogates), else 422."""
    if not problems:
        return
    surrogates = [p for p in problems if p[0] == "surrogate"]
    chosen, cls = (surrogates, BadRequest) if surrogates else (problems, Invalid)
    more = f" (and {len(chosen) - 1} more)" if len(chosen) > 1 else ""
    raise cls(f"Field {chosen[0][2]}{more}.", [p[1] for p in chosen])


# --- request bodies -----------------------------------------------------------------------

def require_body(data: bytes, name: str = "the request body") -> bytes:
    if not data:
        raise BadRequest(f"{name[:1].upper()}{name[1:]} is empty; send JSON.",
                         [{"field": "body", "reason": "empty"}])
    return data


def too_large(size: int, label: str = "The request body") -> PayloadTooLarge:
    """The refusal of a JSON body of ``size`` bytes, past MAX_JSON_BYTES."""
    return PayloadTooLarge(f"{label} ({size} bytes) is larger than the limit of {MAX_JSON_BYTES} "
                           "bytes for a JSON body.",
                           [{"field": "body", "size": size, "limit": MAX_JSON_BYTES, "reason": "too large"}])


def read_json_body(data: bytes, name: str = "the request body"):
    """A JSON request body: every reading rule above, the string rules included."""
    label = name[:1].upper() + name[1:]
    require_body(data, name)
    if len(data) > MAX_JSON_BYTES:
        raise too_large(len(data), label)
    try:
        text, _bom = decode_utf8(data)  # RFC 8259 lets a parser ignore a BOM: we do
    except Utf8Error as e:
        raise BadRequest(f"{label} is not valid UTF-8 (byte offset {e.byte}, line {e.line}).",
                         [{"field": "body", "byte": e.byte, "line": e.line,
                           "reason": "invalid UTF-8"}]) from None
    if nesting_over(text):
        try:  # which field: orjson (C, no Python recursion, at most 1024 deep) and the walk
            deep = [p for p in string_problems(orjson.loads(text)) if p[0] == "depth"]
        except orjson.JSONDecodeError:
            deep = []
        if deep:
            raise Invalid(f"Field {deep[0][2]}.", [{**deep[0][1], "limit": MAX_DEPTH}])
        raise Invalid(f"{label} is nested deeper than {MAX_DEPTH} levels of lists and objects.",
                      [{"field": "body", "reason": f"nested deeper than {MAX_DEPTH} levels",
                        "limit": MAX_DEPTH}])
    try:
        body = parse_json(text)
    except JsonError as e:
        detail = {"field": "body", "reason": e.reason}
        if e.line:
            detail.update(line=e.line, column=e.column)
        raise BadRequest(f"{label} is not valid JSON: {e.reason}{e.where()}.", [detail]) from None
    except DuplicateKey as e:
        raise Invalid(f"Field {e.key!r} is given twice.",
                      [{"field": e.key, "reason": "duplicate field"}]) from None
    refuse_string_problems(string_problems(body))
    return body


def _is(value, types: tuple) -> bool:
    for t in types:
        if t is None and value is None:
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t in (str, bool, list, dict) and isinstance(value, t):
            return True
    return False


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
               list: "a list", dict: "an object", None: "null"}


def check_object(body, fields: dict[str, tuple], required: tuple = (),
                 what: str = "The body") -> dict:
    """``body`` must be an object with only ``fields`` (name -> allowed types: str, int
    (never a bool), float (any number), bool, list, dict, None), all of ``required``.
    Every problem is listed in the details; the message names the first."""
    if not isinstance(body, dict):
        names = [repr(k) for k in required]
        need = f" with {', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else (
            f" with {names[0]}" if names else "")
        raise Invalid(f"{what} must be a JSON object{need}, not {json_type(body)}.",
                      [{"field": "body", "reason": "must be an object", "got": json_type(body)}])
    problems: list[tuple[dict, str]] = []
    for key in body:
        if key not in fields:
            problems.append(({"field": key, "reason": "unknown field"},
                             f"Unknown field {key!r} (allowed: {', '.join(fields)})"))
    for key in required:
        if key not in body:
            problems.append(({"field": key, "reason": "missing"}, f"Missing field {key!r}"))
    for key, types in fields.items():
        if key in body and not _is(body[key], types):
            want = " or ".join(_TYPE_NAMES[t] for t in types)
            got = json_type(body[key])
            problems.append(({"field": key, "reason": f"must be {want}", "got": got},
                             f"Field '{key}' must be {want}, not {got}"))
        elif key in body and int in types and isinstance(body[key], int) and not in_range(body[key]):
            problems.append(({"field": key, "reason": "out of range", "min": INT_MIN, "max": INT_MAX},
                             f"Field '{key}' must be a whole number from {INT_MIN} to {INT_MAX}"))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Invalid(f"{problems[0][1]}{more}.", [d for d, _ in problems])
    return body
