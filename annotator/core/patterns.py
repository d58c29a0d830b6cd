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
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from annotator.core.bodies import decode_utf8

PATTERNS = "patterns"
STRING_ATTRS = ("ORTH", "TEXT", "LOWER")
BOOL_ATTRS = ("IS_ALPHA", "IS_ASCII", "IS_DIGIT", "IS_LOWER", "IS_UPPER", "IS_TITLE", "IS_PUNCT",
              "LIKE_NUM")
OPS = ("?", "*", "+", "!", "1")
MAX_PATTERNS = 10_000
MAX_RUN = 64  # tokens one "*" or "+" may take (a pattern never runs away over a document)
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
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise PatternError(n, "line", f"not JSON ({e.args[0].split(':')[0]})") from None
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
    if isinstance(pattern, str):
        if not pattern.strip() or pattern != pattern.strip():
            raise PatternError(n, "pattern", "a phrase pattern is text without spaces at its ends")
        return {"label": label, "pattern": pattern, **({"id": rec["id"]} if "id" in rec else {})}
    if not isinstance(pattern, list) or not pattern:
        raise PatternError(n, "pattern", "'pattern' is a text or a non-empty list of token objects")
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
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
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
            return
        if op == "REGEX" and isinstance(arg, str):
            try:
                re.compile(arg)
                return
            except re.error as e:
                raise PatternError(n, where, f"{where}: {key} REGEX does not compile ({e})") from None
    raise PatternError(n, where, f"{where}: {key} takes a text or {{\"IN\": [...]}}, "
                       "{\"NOT_IN\": [...]}, {\"REGEX\": \"...\"}")


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
    return re.search(arg, got) is not None


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


def _ends(pattern: list[dict], words: list[str], p: int, i: int, out: set) -> None:
    """Every token index at which ``pattern[p:]`` matched from token ``i`` ends (exclusive)."""
    if p == len(pattern):
        out.add(i)
        return
    spec = pattern[p]
    op = spec.get("OP", "1")
    if op == "!":
        if i < len(words) and not token_matches(spec, words[i]):
            _ends(pattern, words, p + 1, i + 1, out)
        return
    if op in ("?", "*"):
        _ends(pattern, words, p + 1, i, out)  # zero of them
    j = i
    while j < len(words) and j - i < MAX_RUN and token_matches(spec, words[j]):
        j += 1
        _ends(pattern, words, p + 1, j, out)
        if op in ("1", "?"):
            break


def match(text: str, tokens: list, patterns: list[dict]) -> list[tuple[int, int, str]]:
    """(start, end, label) of every match, code points; phrase patterns on token boundaries."""
    starts = {a for a, _b in tokens}
    ends = {b for _a, b in tokens}
    words = [text[a:b] for a, b in tokens]
    out = []
    for pat in patterns:
        p, label = pat["pattern"], pat["label"]
        if isinstance(p, str):
            i = text.find(p)
            while i >= 0:
                if i in starts and i + len(p) in ends:
                    out.append((i, i + len(p), label))
                i = text.find(p, i + 1)
            continue
        for i in range(len(tokens)):
            found: set = set()
            _ends(p, words, 0, i, found)
            for j in found:
                if j > i:
                    out.append((tokens[i][0], tokens[j - 1][1], label))
    return out
