"""Pure offset logic: span validation, overlap, UTF-16 conversion.

Offsets are Python ``str`` indices (Unicode code points), end exclusive.
Plain data in, plain data out: no Flask, no database, no spaCy.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

SPAN_KEYS = {"start", "end", "label", "attributes"}
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
        clean.append((i, {"start": start, "end": end, "label": label, "attributes": attrs}))

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
