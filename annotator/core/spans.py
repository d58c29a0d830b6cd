"""Pure offset logic: span validation, overlap, UTF-16 conversion.

Offsets are Python ``str`` indices (Unicode code points), end exclusive.
Plain data in, plain data out: no Flask, no database, no spaCy.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

SPAN_KEYS = {"start", "end", "label", "attributes", "origin"}
# where a span came from when it was not drawn by hand (issue 12): a suggestion's source
ORIGINS = ("dictionary", "patterns", "model", "variants")
ENTITY = "entity"
SPAN = "span"
KINDS = (ENTITY, SPAN)


@dataclass(frozen=True)
class LabelSpec:
    """What validation needs to know about a label."""

    name: str
    kind: str = ENTITY
    # attribute name -> {"values": [...], "required": bool}
    attributes: dict = field(default_factory=dict)


class SpanErrors(ValueError):
    """Raised with one entry per problem; nothing is partially accepted."""

    def __init__(self, details: list[dict]):
        self.details = details
        first = details[0]
        where = f"span {first['span']}" if "span" in first else "spans"
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        super().__init__(f"Invalid {where}: {first['reason']}{more}.")


def is_space(ch: str) -> bool:
    """Whitespace as the guidelines mean it: str.isspace() covers NBSP, ideographic space."""
    return ch.isspace() or unicodedata.category(ch) == "Zs"


# --- grapheme clusters (UAX #29, extended) ----------------------------------------
#
# A span boundary must fall between user-perceived characters: never between a letter and its
# combining mark, inside an emoji sequence (ZWJ, skin-tone modifier, flag, keycap, tag), a
# Hangul syllable spelled in jamo, or a CR LF. The browser snaps selections the same way
# (static/js/offsets.js). The Grapheme_Cluster_Break classes below are those of UAX #29; the
# tables the standard library lacks (Extended_Pictographic, Prepend, the few Mc that are
# Extend) are written out from the Unicode 15 data files. GB9c (Indic conjunct clusters,
# Unicode 15.1) is not applied: a boundary it would forbid is still accepted.

_CR, _LF, _CONTROL, _EXTEND, _ZWJ, _RI, _PREPEND, _MARK = range(8)  # _MARK: SpacingMark
_L, _V, _T, _LV, _LVT, _PICT, _OTHER = range(8, 15)
_HANGUL = (_L, _V, _T, _LV, _LVT)

_PICT_RANGES = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
    (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605),
    (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714),
    (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728), (0x2733, 0x2734),
    (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755),
    (0x2757, 0x2757), (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0),
    (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
    (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA), (0x1F400, 0x1F53D), (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945), (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD),
)
_PREPEND_CPS = frozenset([0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x0D4E, 0x110BD, 0x110CD,
                          0x111C2, 0x111C3, 0x1193F, 0x11941, 0x11A3A, 0x11D46,
                          *range(0x0600, 0x0606), *range(0x11A84, 0x11A8A)])
# Spacing marks (Mc) that UAX #29 counts as Extend (Other_Grapheme_Extend), and the two Lo
# that are SpacingMark.
_MC_EXTEND = frozenset([0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6,
                        0x0D3E, 0x0D57, 0x0DCF, 0x0DDF, 0x1B35, 0x302E, 0x302F, 0x1D165,
                        *range(0x1D16E, 0x1D173)])


def _gcb(ch: str) -> int:
    """The Grapheme_Cluster_Break class of one code point."""
    cp = ord(ch)
    if cp < 0x7F:
        return _CR if cp == 13 else _LF if cp == 10 else _CONTROL if cp < 0x20 else _OTHER
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if 0x1100 <= cp <= 0x11FF or 0xA960 <= cp <= 0xA97C or 0xD7B0 <= cp <= 0xD7FB:
        if cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
            return _L
        return _V if cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6 else _T
    if cp == 0x200D:
        return _ZWJ
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or cp in (0x200C, 0xFF9E, 0xFF9F):
        return _EXTEND  # skin-tone modifiers, emoji tags, ZWNJ, halfwidth sound marks
    if cp in _PREPEND_CPS:
        return _PREPEND
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me"):
        return _EXTEND
    if cat == "Mc":
        return _EXTEND if cp in _MC_EXTEND else _MARK
    if cat in ("Cc", "Cf", "Zl", "Zp", "Cs"):
        return _CONTROL
    if cp in (0x0E33, 0x0EB3):
        return _MARK
    if cp >= 0xA9 and any(lo <= cp <= hi for lo, hi in _PICT_RANGES):
        return _PICT
    return _OTHER


def is_cluster_boundary(text: str, i: int) -> bool:
    """Whether offset ``i`` (code points) falls between two extended grapheme clusters of
    ``text`` (UAX #29 rules GB1-GB13, without GB9c). Looks only at the characters around
    ``i`` (and back over a run of Extend or regional indicators), so it is cheap per span."""
    if i <= 0 or i >= len(text):
        return True
    # Fast path, most boundaries of most texts (measured: ~3x faster on the Korean corpus):
    # before a printable Latin-range character or a Hangul syllable, only a Prepend, a ZWJ
    # or a leading jamo (none of them below U+0600 or a syllable themselves) can join.
    b = ord(text[i])
    if 0x20 <= b < 0x300 or 0xAC00 <= b <= 0xD7A3:
        a = ord(text[i - 1])
        if a < 0x600 or 0xAC00 <= a <= 0xD7A3:
            return True
    a, b = _gcb(text[i - 1]), _gcb(text[i])
    if a == _CR and b == _LF:  # GB3
        return False
    if a in (_CONTROL, _CR, _LF) or b in (_CONTROL, _CR, _LF):  # GB4, GB5
        return True
    if a == _L and b in (_L, _V, _LV, _LVT):  # GB6
        return False
    if a in (_LV, _V) and b in (_V, _T):  # GB7
        return False
    if a in (_LVT, _T) and b == _T:  # GB8
        return False
    if b in (_EXTEND, _ZWJ, _MARK) or a == _PREPEND:  # GB9, GB9a, GB9b
        return False
    if a == _ZWJ and b == _PICT:  # GB11: Pict Extend* ZWJ x Pict
        j = i - 2
        while j >= 0 and _gcb(text[j]) == _EXTEND:
            j -= 1
        return not (j >= 0 and _gcb(text[j]) == _PICT)
    if a == _RI and b == _RI:  # GB12, GB13: flags pair regional indicators from the left
        j = i - 1
        while j >= 0 and _gcb(text[j]) == _RI:
            j -= 1
        return (i - 1 - j) % 2 == 0
    return True  # GB999


def cluster_at(text: str, i: int) -> tuple[int, int]:
    """``(start, end)`` of the grapheme cluster that contains offset ``i`` (for an ``i``
    inside one; at a boundary, the cluster that starts there)."""
    start = i
    while start > 0 and not is_cluster_boundary(text, start):
        start -= 1
    end = i + 1
    while end < len(text) and not is_cluster_boundary(text, end):
        end += 1
    return start, end


def _cluster_kind(cluster: str) -> str:
    classes = [_gcb(c) for c in cluster]
    if _RI in classes:
        return "a flag: a pair of regional indicator letters"
    if "\u20e3" in cluster:
        return "a keycap sequence"
    if _ZWJ in classes and _PICT in classes:
        return "an emoji sequence joined by zero-width joiners"
    if any(0x1F3FB <= ord(c) <= 0x1F3FF for c in cluster):
        return "an emoji and its skin-tone modifier"
    if any(0xE0020 <= ord(c) <= 0xE007F for c in cluster):
        return "an emoji tag sequence"
    if any(c in _HANGUL for c in classes):
        return "a Hangul syllable spelled in jamo"
    if classes == [_CR, _LF]:
        return "a line break written as CR LF"
    if any(0xFE00 <= ord(c) <= 0xFE0F or 0xE0100 <= ord(c) <= 0xE01EF for c in cluster):
        return "a character and its variation selector"
    marks = sum(1 for c in classes if c in (_EXTEND, _MARK))
    base = "a letter" if unicodedata.category(cluster[0]).startswith("L") else "a character"
    return f"{base} and its combining mark{'s' if marks > 1 else ''}"


def cluster_problem(text: str, i: int, what: str) -> str | None:
    """None when offset ``i`` is between characters, else why not (for ``what``: 'start 3')."""
    if is_cluster_boundary(text, i):
        return None
    start, end = cluster_at(text, i)
    cluster = text[start:end]
    shown = "".join(f"\\u{ord(c):04x}" if _gcb(c) in (_CR, _LF, _CONTROL) else c
                    for c in cluster[:16])
    points = " ".join(f"U+{ord(c):04X}" for c in cluster[:8]) + (" ..." if len(cluster) > 8 else "")
    return (f'{what} falls inside the character "{shown}{"..." if len(cluster) > 16 else ""}" '
            f"({_cluster_kind(cluster)}, {points}); a span must start and end between characters")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_spans(text: str, spans, labels: dict[str, LabelSpec]) -> list[dict]:
    """Check every rule and return normalised spans sorted by (start, end, label).

    Raises SpanErrors listing every problem (span index, field, reason).
    """
    if not isinstance(spans, list):
        raise SpanErrors([{"field": "spans", "reason": "spans must be a list"}])
    errors: list[dict] = []
    clean: list[tuple[int, dict]] = []
    n = len(text)

    def err(i, fld, reason):
        errors.append({"span": i, "field": fld, "reason": reason})

    for i, span in enumerate(spans):
        if not isinstance(span, dict):
            err(i, "span", "a span must be an object")
            continue
        extra = sorted(set(span) - SPAN_KEYS)
        if extra:
            err(i, extra[0], f"unknown field {extra[0]!r}")
            continue
        missing = [k for k in ("start", "end", "label") if k not in span]
        if missing:
            err(i, missing[0], f"missing field {missing[0]!r}")
            continue
        start, end, label = span["start"], span["end"], span["label"]
        attrs = span.get("attributes", {})
        if attrs is None:
            attrs = {}
        if not _is_int(start):
            err(i, "start", "start must be an integer")
            continue
        if not _is_int(end):
            err(i, "end", "end must be an integer")
            continue
        if start < 0:
            err(i, "start", f"start {start} is negative")
            continue
        if end > n:
            err(i, "end", f"end {end} is past the end of the text ({n} characters)")
            continue
        if start >= end:
            err(i, "end", f"end {end} must be greater than start {start}")
            continue
        if not isinstance(label, str):
            err(i, "label", f"label must be a label name (a string), not {label!r}")
            continue
        if label not in labels:
            err(i, "label", f"label {label!r} is not in this project's label set")
            continue
        if is_space(text[start]) or is_space(text[end - 1]):
            err(i, "start" if is_space(text[start]) else "end",
                "a span may not start or end with whitespace")
            continue
        cut = cluster_problem(text, start, f"start {start}")
        if cut:
            err(i, "start", cut)
            continue
        cut = cluster_problem(text, end, f"end {end}")
        if cut:
            err(i, "end", cut)
            continue
        if not isinstance(attrs, dict):
            err(i, "attributes", "attributes must be an object")
            continue
        spec = labels[label]
        bad_attr = False
        for key in sorted(set(attrs) - set(spec.attributes)):
            err(i, f"attributes.{key}", f"label {label} has no attribute {key!r}")
            bad_attr = True
        for key, rule in spec.attributes.items():
            value = attrs.get(key)
            if value is None:
                if rule.get("required"):
                    err(i, f"attributes.{key}", f"{label} needs {key!r} "
                        f"(one of {', '.join(rule.get('values', []))})")
                    bad_attr = True
            elif not isinstance(value, str):
                err(i, f"attributes.{key}", f"{key} must be a string, not {value!r}")
                bad_attr = True
            elif rule.get("values") and value not in rule["values"]:
                err(i, f"attributes.{key}", f"{value!r} is not an allowed {key} "
                    f"(one of {', '.join(rule['values'])})")
                bad_attr = True
        if bad_attr:
            continue
        attrs = {k: v for k, v in attrs.items() if v is not None}
        out = {"start": start, "end": end, "label": label, "attributes": attrs}
        origin = span.get("origin")
        if origin is not None:
            problem = origin_problem(origin)
            if problem:
                err(i, "origin", problem)
                continue
            out["origin"] = {"source": origin["source"], "version": origin.get("version") or "",
                             "edited": bool(origin.get("edited", False))}
        clean.append((i, out))

    # Relations between spans: duplicates, and overlapping entities.
    seen: dict[tuple, int] = {}
    for i, s in clean:
        key = (s["start"], s["end"], s["label"])
        if key in seen:
            err(i, "span", f"duplicate of span {seen[key]}")
        else:
            seen[key] = i
    entities = sorted(
        ((s["start"], s["end"], i) for i, s in clean if labels[s["label"]].kind == ENTITY)
    )
    last_end, last_i = -1, None
    for start, end, i in entities:
        if start < last_end:
            err(i, "start", f"overlaps entity span {last_i}; entities may not overlap")
        if end > last_end:
            last_end, last_i = end, i
    if errors:
        errors.sort(key=lambda e: e.get("span", -1))
        raise SpanErrors(errors)
    return sorted((s for _, s in clean), key=lambda s: (s["start"], s["end"], s["label"]))


def origin_problem(origin) -> str | None:
    """Why ``origin`` is not ``{"source": one of ORIGINS, "version"?: text, "edited"?: bool}``."""
    if not isinstance(origin, dict):
        return "origin must be an object {source, version, edited} or absent (drawn by hand)"
    extra = sorted(set(origin) - {"source", "version", "edited"})
    if extra:
        return f"origin has an unknown field {extra[0]!r}"
    if origin.get("source") not in ORIGINS:
        return f"origin.source must be one of {', '.join(ORIGINS)}, not {origin.get('source')!r}"
    version = origin.get("version", "")
    if not isinstance(version, str) or len(version) > 64:
        return "origin.version must be a text of at most 64 characters"
    if not isinstance(origin.get("edited", False), bool):
        return "origin.edited must be true or false"
    return None


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- UTF-16 <-> code points (the browser's unit vs ours) -------------------------

def cp_to_utf16(text: str, offset: int) -> int:
    """UTF-16 code-unit index of code-point ``offset`` in ``text``."""
    return offset + sum(1 for ch in text[:offset] if ord(ch) > 0xFFFF)


def utf16_to_cp(text: str, offset: int) -> int:
    """Code-point index of UTF-16 ``offset``; an offset inside a surrogate pair is refused."""
    units = 0
    for i, ch in enumerate(text):
        if units == offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > offset:
            raise ValueError(f"UTF-16 offset {offset} falls inside a surrogate pair")
    if units == offset:
        return len(text)
    raise ValueError(f"UTF-16 offset {offset} is past the end of the text")
