"""spaCy ``EntityRuler`` / ``SpanRuler`` patterns, checked and matched without spaCy (issue 12).

Pure: no Flask, no database, no spaCy. A project's patterns are the JSON Lines spaCy users
already write, one pattern a line::

    {"label": "ORG", "pattern": "Scale AI"}
    {"label": "MONEY", "pattern": [{"LIKE_NUM": true}, {"LOWER": {"IN": ["billion", "million"]}}, {"ORTH": "dollars"}]}

A phrase pattern (a string) matches that exact text on token boundaries. A token pattern (a
list) matches consecutive tokens of the export tokenizer (the document's stored tokens), one
dict a token, with these keys of spaCy's Matcher: ``ORTH``/``TEXT``, ``LOWER``, ``LENGTH``,
``IS_ALPHA``, ``IS_ASCII``, ``IS_DIGIT``, ``IS_LOWER``, ``IS_UPPER``, ``IS_TITLE``,
``IS_PUNCT``, ``LIKE_NUM``, and ``OP`` (``?``, ``*``, ``+``, ``!``, ``1``); a string attribute
may be a value or ``{"IN": [...]}``, ``{"NOT_IN": [...]}``, ``{"REGEX": "..."}``. Anything else
(``POS``, ``LEMMA``, ``ENT_TYPE``: what needs a trained pipeline) is refused, naming the line,
so a file never half-works. The web process never loads spaCy for this.

A ``REGEX`` runs under RE2 (google-re2), whose matching takes time linear in the token, so no
pattern can stall a request (Python's ``re`` took 3 s on ``^(a+)+$`` and a token of 26 a's
then b, doubling with each letter). Python's meaning of ``\\w``, ``\\d`` and ``\\s`` (any
script's letters and digits: Hangul is a word character) is kept by writing them as Unicode
classes; what RE2 cannot run (back references, look-around, ``\\b``) is refused when the
patterns are saved, naming the line. Token patterns are matched by dynamic programming over
(pattern position, token), so optional and repeated tokens never multiply.
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata

import re2

from annotator.core.bodies import (
    DuplicateKey,
    JsonError,
    decode_utf8,
    name_problem,
    nesting_over,
    parse_json,
    string_problems,
)

PATTERNS = "patterns"
STRING_ATTRS = ("ORTH", "TEXT", "LOWER")
BOOL_ATTRS = ("IS_ALPHA", "IS_ASCII", "IS_DIGIT", "IS_LOWER", "IS_UPPER", "IS_TITLE", "IS_PUNCT",
              "LIKE_NUM")
OPS = ("?", "*", "+", "!", "1")
MAX_PATTERNS = 10_000
MAX_RUN = 64  # tokens one "*" or "+" may take (a pattern never runs away over a document)
MAX_TOKENS = 32  # token objects in one pattern
MAX_REGEX = 1000  # characters of one REGEX
MAX_LIST = 10_000  # values of one IN / NOT_IN
MAX_STEPS = 200_000  # token tests and merged ends one document's token patterns may take
MAX_DEPTH = 8  # a pattern line nests no deeper than [{"LOWER": {"IN": [...]}}] and a little
_NUM_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
              "eleven", "twelve", "hundred", "thousand", "million", "billion", "trillion"}


class PatternError(ValueError):
    def __init__(self, line: int, field: str, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line, self.field, self.reason = line, field, reason


def parse_patterns(data: bytes | str, labels: set[str]) -> list[dict]:
    """Check a JSON Lines file of patterns whole; the patterns, or PatternError for the first
    line that is not one (with its line number). ``labels``: the labels they may name."""
    if isinstance(data, bytes):
        text, _bom = decode_utf8(data)
    else:
        text = data
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if nesting_over(line, MAX_DEPTH):
            raise PatternError(n, "line", f"nested deeper than {MAX_DEPTH} levels of lists and objects")
        try:
            rec = parse_json(line)  # no NaN or Infinity, no key twice
        except JsonError as e:
            raise PatternError(n, "line", f"not JSON ({e.reason}{e.where()})") from None
        except DuplicateKey as e:
            raise PatternError(n, e.key, f"the key {e.key!r} is given twice") from None
        problems = string_problems(rec, max_depth=MAX_DEPTH)
        if problems:
            raise PatternError(n, problems[0][1]["field"], problems[0][2])
        out.append(check_pattern(rec, n, labels))
        if len(out) > MAX_PATTERNS:
            raise PatternError(n, "line", f"more than {MAX_PATTERNS} patterns")
    return out


def check_pattern(rec, n: int, labels: set[str]) -> dict:
    if not isinstance(rec, dict):
        raise PatternError(n, "line", "a pattern is an object with 'label' and 'pattern'")
    extra = set(rec) - {"label", "pattern", "id"}
    if extra:
        raise PatternError(n, sorted(extra)[0], f"unknown key {sorted(extra)[0]!r} "
                           "(allowed: label, pattern, id)")
    label, pattern = rec.get("label"), rec.get("pattern")
    if not isinstance(label, str) or label not in labels:
        raise PatternError(n, "label", f"label {label!r} is not an entity label of this project "
                           f"({', '.join(sorted(labels))})")
    if "id" in rec and name_problem(rec["id"], 255):
        raise PatternError(n, "id", f"the id {name_problem(rec['id'], 255)}")
    if isinstance(pattern, str):
        if not pattern.strip() or pattern != pattern.strip():
            raise PatternError(n, "pattern", "a phrase pattern is text without spaces at its ends")
        return {"label": label, "pattern": pattern, **({"id": rec["id"]} if "id" in rec else {})}
    if not isinstance(pattern, list) or not pattern:
        raise PatternError(n, "pattern", "'pattern' is a text or a non-empty list of token objects")
    if len(pattern) > MAX_TOKENS:
        raise PatternError(n, "pattern", f"a token pattern has at most {MAX_TOKENS} tokens "
                           f"(this one has {len(pattern)})")
    for i, tok in enumerate(pattern):
        _check_token(tok, n, i)
    if all(t.get("OP") in ("?", "*", "!") for t in pattern):
        raise PatternError(n, "pattern", "the pattern can match no token at all (every token is "
                           "optional or negated)")
    return {"label": label, "pattern": pattern, **({"id": rec["id"]} if "id" in rec else {})}


def _check_token(tok, n: int, i: int) -> None:
    where = f"token {i}"
    if not isinstance(tok, dict):
        raise PatternError(n, where, f"{where} is not an object")
    for key, value in tok.items():
        if key == "OP":
            if value not in OPS:
                raise PatternError(n, where, f"{where}: OP {value!r} is not one of {' '.join(OPS)}")
        elif key in BOOL_ATTRS:
            if not isinstance(value, bool):
                raise PatternError(n, where, f"{where}: {key} takes true or false")
        elif key == "LENGTH":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1_000_000:
                raise PatternError(n, where, f"{where}: LENGTH takes a whole number")
        elif key in STRING_ATTRS:
            _check_string_value(value, n, where, key)
        else:
            raise PatternError(n, where, f"{where}: {key!r} is not supported here (needs a trained "
                               f"pipeline or is not a Matcher attribute); supported: "
                               f"{', '.join(STRING_ATTRS + BOOL_ATTRS)}, LENGTH, OP")


def _check_string_value(value, n, where, key) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, dict) and len(value) == 1:
        (op, arg), = value.items()
        if op in ("IN", "NOT_IN") and isinstance(arg, list) and all(isinstance(a, str) for a in arg):
            if len(arg) > MAX_LIST:
                raise PatternError(n, where, f"{where}: {key} {op} takes at most {MAX_LIST} values")
            return
        if op == "REGEX" and isinstance(arg, str):
            if len(arg) > MAX_REGEX:
                raise PatternError(n, where, f"{where}: {key} REGEX has more than {MAX_REGEX} characters")
            try:
                compile_regex(arg)
                return
            except RegexError as e:
                raise PatternError(n, where, f"{where}: {key} REGEX {e}") from None
    raise PatternError(n, where, f"{where}: {key} takes a text or {{\"IN\": [...]}}, "
                       "{\"NOT_IN\": [...]}, {\"REGEX\": \"...\"}")


# --- REGEX under RE2, with Python's meaning of \\w \\d \\s ------------------------------------

class RegexError(ValueError):
    pass


# Python's classes for str patterns, as RE2 writes them: \w is str.isalnum() or "_"
_CLASSES = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "s": r"\t\n\x0b\f\r\x1c-\x1f \x{85}\p{Z}"}
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 writes every refused pattern to stderr otherwise


def to_re2(pattern: str) -> str:
    """A Python regular expression in RE2's syntax with Python's meaning of ``\\w \\d \\s``
    (and their negations), or RegexError for ``\\b`` / ``\\B`` and a negated class inside
    brackets, which RE2 cannot write."""
    out, i, n, in_class = [], 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            i += 2
            if e in _CLASSES:
                out.append(_CLASSES[e] if in_class else f"[{_CLASSES[e]}]")
            elif e.lower() in _CLASSES:  # \W \D \S
                if in_class:
                    raise RegexError(f"cannot use \\{e} inside [...] here; write the class out")
                out.append(f"[^{_CLASSES[e.lower()]}]")
            elif e in "bB":
                raise RegexError(f"cannot use \\{e}: a REGEX sees one token, anchor it with ^ and $")
            else:
                out.append(c + e)
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a "]" first in a class is itself
                out.append("\\]")
                i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str):
    """The RE2 program of a Python-syntax ``pattern`` (RegexError says why it cannot be one)."""
    try:
        return re2.compile(to_re2(pattern), _OPTIONS)
    except RegexError:
        raise
    except re2.error as e:
        reason = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise RegexError(f"does not compile for RE2, which matches in linear time: {reason} "
                         "(no back references or look-around)") from None


def version_of(patterns: list[dict]) -> str:
    raw = json.dumps(patterns, sort_keys=True, ensure_ascii=False).encode()
    return "patterns-" + hashlib.sha256(raw).hexdigest()[:10]


# --- matching ------------------------------------------------------------------------------

def _like_num(t: str) -> bool:
    s = t.replace(",", "").replace(".", "", 1)
    return s.isdigit() or t.lower() in _NUM_WORDS


def _string_ok(value, got: str) -> bool:
    if isinstance(value, str):
        return got == value
    (op, arg), = value.items()
    if op == "IN":
        return got in arg
    if op == "NOT_IN":
        return got not in arg
    try:
        return compile_regex(arg).search(got) is not None
    except RegexError:  # saved before RE2 took over: it matches nothing rather than stall
        return False


def token_matches(spec: dict, t: str) -> bool:
    for key, value in spec.items():
        if key == "OP":
            continue
        if key in ("ORTH", "TEXT"):
            ok = _string_ok(value, t)
        elif key == "LOWER":
            ok = _string_ok(value if isinstance(value, dict) else value, t.lower())
        elif key == "LENGTH":
            ok = len(t) == value
        elif key == "IS_ALPHA":
            ok = t.isalpha() == value
        elif key == "IS_ASCII":
            ok = t.isascii() == value
        elif key == "IS_DIGIT":
            ok = t.isdigit() == value
        elif key == "IS_LOWER":
            ok = t.islower() == value
        elif key == "IS_UPPER":
            ok = t.isupper() == value
        elif key == "IS_TITLE":
            ok = t.istitle() == value
        elif key == "IS_PUNCT":
            ok = bool(t) and all(unicodedata.category(c).startswith("P") for c in t) == value
        elif key == "LIKE_NUM":
            ok = _like_num(t) == value
        else:
            ok = False
        if not ok:
            return False
    return True


class _OutOfSteps(Exception):
    pass


def _ends(pattern: list[dict], words: list[str], p: int, i: int, memo: dict) -> frozenset:
    """Every token index at which ``pattern[p:]`` matched from token ``i`` ends (exclusive),
    remembered per (p, i): each pair is worked out once, however many ways lead to it."""
    key = (p, i)
    found = memo.get(key)
    if found is not None:
        return found
    if memo["steps"] > MAX_STEPS:
        raise _OutOfSteps
    if p == len(pattern):
        found = frozenset((i,))
    else:
        spec = pattern[p]
        op = spec.get("OP", "1")
        out: set = set()
        if op == "!":
            if i < len(words) and not token_matches(spec, words[i]):
                out |= _ends(pattern, words, p + 1, i + 1, memo)
        else:
            if op in ("?", "*"):
                out |= _ends(pattern, words, p + 1, i, memo)  # zero of them
            j = i
            while j < len(words) and j - i < MAX_RUN and token_matches(spec, words[j]):
                j += 1
                more = _ends(pattern, words, p + 1, j, memo)
                memo["steps"] += 1 + len(more)
                out |= more
                if op in ("1", "?"):
                    break
        found = frozenset(out)
    memo[key] = found
    return found


def match(text: str, tokens: list, patterns: list[dict]) -> list[tuple[int, int, str]]:
    """(start, end, label) of every match, code points; phrase patterns on token boundaries.
    The token patterns of one call share MAX_STEPS steps: past them, what was found so far."""
    starts = {a for a, _b in tokens}
    ends = {b for _a, b in tokens}
    words = [text[a:b] for a, b in tokens]
    out, budget = [], 0
    for pat in patterns:
        p, label = pat["pattern"], pat["label"]
        if isinstance(p, str):
            i = text.find(p)
            while i >= 0:
                if i in starts and i + len(p) in ends:
                    out.append((i, i + len(p), label))
                i = text.find(p, i + 1)
            continue
        memo = {"steps": budget}
        try:
            for i in range(len(tokens)):
                for j in sorted(_ends(p, words, 0, i, memo)):
                    if j > i:
                        out.append((tokens[i][0], tokens[j - 1][1], label))
        except _OutOfSteps:
            return out  # this document's budget is spent: what was found, and no more
        budget = memo["steps"]
    return out
