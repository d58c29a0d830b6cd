"""Suggested spans from what people already accepted, and from money shapes (issue 12).

Pure: plain data in, plain data out; no Flask, no database, no spaCy.

A suggestion is a span a person has not drawn: ``{"start", "end", "label", "attributes",
"source", "score", "version"}`` (code-point offsets, end exclusive). Two sources here:

- ``dictionary``: every (surface text, label) people accepted in the project, found again at
  its other occurrences. A match must start at a token start and end at a token end of the
  export tokenizer (so ``메타`` in ``메타는`` is found, ``메타`` inside ``메타버스`` is not).
  A surface accepted under several labels suggests the most frequent one, its score the share.
- ``patterns``: amounts of money with an explicit currency (``148억 달러``, ``약 20조 원``,
  ``$14.3B``, ``수천만 달러``), for a label set that has ``MONEY``; on token boundaries too;
  and the project's own spaCy-style patterns (patterns.py), matched by the caller.

Then, longest first, a suggestion is kept only if it overlaps neither a span the person
already has (of an entity label) nor a suggestion kept before it: entity suggestions never
overlap each other, and none duplicates a span the person has.

A third source, ``model`` (the project's trained model, learn.py: its stored predictions,
given by the caller), comes after those two: its entities fill the gaps they leave, never
displacing a dictionary or pattern suggestion (measured more precise), only from a
probability of ``MODEL_MIN_SCORE``, only where the text can be a name (``plausible``), and only
for the labels the version learned well enough (``offered``: training.offered_labels).

A fourth, ``variants`` (issue 23: first mentions), proposes names nobody has tagged yet from
the ones people did, and fills the gaps the first two leave, as the model does:

- the last word of an accepted name of two or more words that is a ``PERSON`` (``왕`` after
  ``알렉산드르 왕``, ``Dogan`` after ``Jaana Dogan``), and an accepted ``ORG`` of two or more words
  without its first word when that word is itself an accepted ``ORG`` (``Superintelligence
  Labs`` after ``Meta Superintelligence Labs`` and ``Meta``);
- an accepted name written with other spaces or case (``스케일 AI`` after ``스케일AI``, ``META``
  after ``Meta``);
- an apposition: what stands in brackets right after a name the person has (or is offered),
  in another script or as an acronym, with its label (``John Hegeman`` in ``존 헤게만(John
  Hegeman)``, ``Meta`` in ``메타(Meta)``).

What people rejected more often than they accepted, as (surface text, label), anywhere in the
project, is suggested by no source again: the project's reviews teach every source.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

DICTIONARY = "dictionary"
PATTERNS = "patterns"
MODEL = "model"
VARIANTS = "variants"
VARIANT_SCORE = 0.7  # below the dictionary's exact matches, above the model's floor
PERSON, ORG = "PERSON", "ORG"
MODEL_MIN_SCORE = 0.5  # a model's entity below this probability is not suggested
PATTERNS_VERSION = "money-1"
PATTERN_SCORE = 0.9

_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_KO_UNIT = r"(?:조|억|만|천|백)"
_KO_VAGUE = r"(?:수|십|수십|수백|수천|수만|수십만|수백만|수천만|수억|수십억|수백억|수천억|수조)"
_KO_AMOUNT = (rf"(?:{_NUMBER}\s?{_KO_UNIT}+(?:\s?{_NUMBER}\s?{_KO_UNIT}+)*(?:\s?{_NUMBER})?"
              rf"|{_KO_VAGUE}\s?{_KO_UNIT}?|{_NUMBER})")
_KO_CURRENCY = r"(?:달러|원|엔|유로|위안|파운드)"
_EN_SCALE = r"(?:\s?(?:trillion|billion|million|thousand|bn|tn|[KMBT])\b)?"
MONEY_RE = re.compile(
    rf"(?:약\s?)?{_KO_AMOUNT}\s?{_KO_CURRENCY}"  # 148억 달러, 약 20조 원, 143억달러, 수천만 달러
    rf"|(?:US|A|C|HK)?\$\s?{_NUMBER}{_EN_SCALE}"  # $14.3B, US$ 2 billion
    rf"|{_NUMBER}{_EN_SCALE}\s?(?:dollars|USD|KRW|won|euros|EUR)\b"  # 14 billion dollars
    rf"|(?:USD|KRW|EUR)\s?{_NUMBER}{_EN_SCALE}"
)


@dataclass(frozen=True)
class Taken:
    """A span the person already has."""

    start: int
    end: int
    label: str
    entity: bool


class Boundaries:
    """Token starts and ends of one text, for O(log n) checks."""

    def __init__(self, tokens: list):
        self.starts = {a for a, _b in tokens}
        self.ends = {b for _a, b in tokens}

    def fits(self, start: int, end: int) -> bool:
        return start in self.starts and end in self.ends


def dictionary_entries(accepted: list[tuple[str, str, int]]) -> dict[str, tuple[str, float]]:
    """(surface, label, count) rows -> {surface: (label, share)}: the label most often given to
    that exact text (ties: the alphabetically first, so the answer is stable)."""
    best: dict[str, tuple[int, str]] = {}
    total: dict[str, int] = {}
    for surface, label, count in accepted:
        if not surface or surface != surface.strip():
            continue
        total[surface] = total.get(surface, 0) + count
        seen = best.get(surface)
        if seen is None or count > seen[0] or (count == seen[0] and label < seen[1]):
            best[surface] = (count, label)
    # a (surface, label) pair may come in several rows: add them up first where it matters
    if len(best) != len(accepted):
        sums: dict[tuple[str, str], int] = {}
        for surface, label, count in accepted:
            if surface in best:
                sums[(surface, label)] = sums.get((surface, label), 0) + count
        best = {}
        for (surface, label), count in sums.items():
            seen = best.get(surface)
            if seen is None or count > seen[0] or (count == seen[0] and label < seen[1]):
                best[surface] = (count, label)
    return {surface: (label, count / total[surface]) for surface, (count, label) in best.items()}


def subtract_counts(rows: list[tuple[str, str, int]],
                    taken_out: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """(surface, label, count) ``rows`` less ``taken_out``'s counts; a pair left with none goes."""
    if not taken_out:
        return rows
    less = Counter()
    for surface, label, n in taken_out:
        less[(surface, label)] += n
    out = []
    for surface, label, n in rows:
        key = (surface, label)
        if key in less:
            n, less[key] = n - less[key], max(0, less[key] - n)
        if n > 0:
            out.append((surface, label, n))
    return out


def patch_entries(entries: dict[str, tuple[str, float]], rows: list[tuple[str, str, int]],
                  surfaces: set[str]) -> dict[str, tuple[str, float]]:
    """``entries`` with the entries of ``surfaces`` worked out again from ``rows`` (the rest
    as they were): what a dictionary built from ``rows`` would hold, without rebuilding it."""
    if not surfaces:
        return entries
    out = {k: v for k, v in entries.items() if k not in surfaces}
    out.update(dictionary_entries([r for r in rows if r[0] in surfaces]))
    return out


def unwanted_pairs(accepted: list[tuple[str, str, int]],
                   rejected: list[tuple[str, str, int]]) -> set[tuple[str, str]]:
    """(surface, label) pairs rejected more often than accepted in the project."""
    kept = Counter()
    for surface, label, n in accepted:
        kept[(surface, label)] += n
    return {(surface, label) for surface, label, n in rejected if n > kept[(surface, label)]}


def prefixes_of(entries) -> set[str]:
    """Every beginning of every entry's text: the token walk stops as soon as what it has read
    begins no entry."""
    out = set()
    for surface in entries:
        for i in range(1, len(surface) + 1):
            out.add(surface[:i])
    return out


def dictionary_candidates(text: str, bounds: Boundaries, entries: dict[str, tuple[str, float]],
                          version: str = "", tokens: list | None = None,
                          prefixes: set[str] | None = None) -> list[dict]:
    """Every place an entry's text stands on token boundaries. With ``tokens``, walks the
    token boundaries and looks each candidate text up, stopping where what it read begins no
    entry (``prefixes``, from ``prefixes_of``; cost about one look-up per token, whatever the
    dictionary's size); else searches the text for each entry."""
    if not entries:
        return []
    out = []
    if tokens is None:
        for surface, (label, share) in entries.items():
            i = text.find(surface)
            while i >= 0:
                j = i + len(surface)
                if bounds.fits(i, j):
                    out.append(_suggestion(i, j, label, DICTIONARY, share, version))
                i = text.find(surface, i + 1)
        return out
    longest = max(map(len, entries))
    n = len(tokens)
    for a in range(n):
        start = tokens[a][0]
        for b in range(a, n):
            end = tokens[b][1]
            if end - start > longest:
                break
            piece = text[start:end]
            hit = entries.get(piece)
            if hit is not None:
                out.append(_suggestion(start, end, hit[0], DICTIONARY, hit[1], version))
            if prefixes is not None and piece not in prefixes:
                break
    return out


# --- variants of accepted names ---------------------------------------------------------------

def _squeezed(text: str) -> str:
    return "".join(text.split()).casefold()


@dataclass(frozen=True)
class Variants:
    """What ``variant_candidates`` looks names up in, made once per dictionary (``variants_of``)."""

    derived: dict  # {surface: (label, score)}
    derived_prefixes: set
    squeezed: dict  # {squeezed text: (surface, label, score)}
    squeezed_prefixes: set


def variants_of(entries: dict[str, tuple[str, float]], orgs: set | None = None) -> Variants:
    """The variant tables of ``entries`` (``orgs``: the ORG names whose first word may be left
    out, by default the ORGs among the entries)."""
    derived = variant_entries(entries, orgs)
    squeezed = squeezed_entries(entries)
    return Variants(derived, prefixes_of(derived), squeezed, prefixes_of(squeezed))


def variant_entries(entries: dict[str, tuple[str, float]], orgs: set | None = None) -> dict[str, tuple[str, float]]:
    """{surface: (label, score)} of the names the accepted ``entries`` imply (see the module's
    docstring): last words of PERSONs, ORGs without a known ORG's first word. An entry's own
    text is never a variant of another (the dictionary has it already)."""
    out: dict[str, tuple[str, float]] = {}
    if orgs is None:
        orgs = {surface for surface, (label, _s) in entries.items() if label == ORG}
    for surface, (label, share) in entries.items():
        words = surface.split()
        if len(words) < 2:
            continue
        if label == PERSON:
            found = words[-1]
        elif label == ORG and words[0] in orgs and len(words) > 2:  # a name of two words or more
            found = surface[len(words[0]):].strip()  # is left ("AI" of "스케일 AI" is not one)
        else:
            continue
        if found and found not in entries and found not in out and any(c.isalnum() for c in found):
            out[found] = (label, VARIANT_SCORE * share)
    return out


def squeezed_entries(entries: dict[str, tuple[str, float]]) -> dict[str, tuple[str, str, float]]:
    """{text without spaces, case-folded: (surface, label, score)}: the accepted names to find
    again written with other spaces or case. A squeezed text two entries share is left out
    (which one was meant is a guess)."""
    out: dict[str, tuple[str, str, float]] = {}
    twice: set = set()
    for surface, (label, share) in entries.items():
        key = _squeezed(surface)
        if len(key) < 2:
            continue
        if key in out and out[key][1] != label:
            twice.add(key)
        out.setdefault(key, (surface, label, VARIANT_SCORE * share))
    for key in twice:
        del out[key]
    return out


def variant_candidates(text: str, bounds: Boundaries, tokens: list, entries: dict,
                       named: list[tuple[int, int, str]], tables: list[Variants],
                       version: str = "") -> list[dict]:
    """Every place a variant (above) stands on token boundaries, and the appositions after the
    ``named`` spans ((start, end, label): the person's and the other sources' suggestions).
    ``entries``: the dictionary (a text it has is no variant); ``tables``: ``variants_of``."""
    out = []
    if len(tables) > 1:  # one walk of the tokens for all of them
        tables = [Variants({k: v for t in reversed(tables) for k, v in t.derived.items()},
                           set().union(*(t.derived_prefixes for t in tables)),
                           {k: v for t in reversed(tables) for k, v in t.squeezed.items()},
                           set().union(*(t.squeezed_prefixes for t in tables)))]
    squeezed_tokens = [_squeezed(text[a:b]) for a, b in tokens] if tables[0].squeezed else []
    for t in tables:
        out += _variant_matches(text, bounds, tokens, squeezed_tokens, entries, t, version)
    for start, end, label in named:
        out += _apposition(text, bounds, start, end, label, version)
    return out


def _variant_matches(text, bounds, tokens, squeezed_tokens, entries, t: Variants, version) -> list[dict]:
    out = []
    if t.derived:
        out += [{**c, "source": VARIANTS} for c in dictionary_candidates(
            text, bounds, t.derived, version, tokens=tokens, prefixes=t.derived_prefixes)
            if text[c["start"]:c["end"]] not in entries]
    squeezed, heads = t.squeezed, t.squeezed_prefixes
    if squeezed:
        n = len(tokens)
        for a in range(n):
            if squeezed_tokens[a] not in heads:
                continue
            start, key = tokens[a][0], ""
            for b in range(a, n):
                key += squeezed_tokens[b]
                if key not in heads:
                    break
                hit = squeezed.get(key)
                end = tokens[b][1]
                if hit is not None and text[start:end] != hit[0] and text[start:end] not in entries:
                    out.append(_suggestion(start, end, hit[1], VARIANTS, hit[2], version))
    return out


def _script(text: str) -> str:
    """``latin``, ``hangul``, ``other`` or ``mixed``: the scripts of text's letters."""
    kinds = set()
    for c in text:
        if not c.isalpha():
            continue
        if c.isascii():
            kinds.add("latin")
        elif "\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff" or "\u3130" <= c <= "\u318f":
            kinds.add("hangul")
        else:
            kinds.add("other")
    return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "none")


def _apposition(text: str, bounds: Boundaries, start: int, end: int, label: str, version: str) -> list[dict]:
    """``name(Other)``: Other, when it is in another script than name or an acronym, ends at the
    bracket on token boundaries, and is no longer than a name (60 characters, one line)."""
    if end >= len(text) or text[end] != "(":
        return []
    close = text.find(")", end + 1, end + 62)
    if close < 0:
        return []
    a, b = end + 1, close
    inner = text[a:b]
    if not inner or inner != inner.strip() or "\n" in inner or "(" in inner or not bounds.fits(a, b):
        return []
    # an acronym restates an organisation (메타 슈퍼인텔리전스 랩(MSL)); after a person it is
    # more often where they work (Koray(GDM))
    acronym = label == ORG and inner.isupper() and inner.isalpha() and 2 <= len(inner) <= 6
    name_script, inner_script = _script(text[start:end]), _script(inner)
    if not acronym and (inner_script in ("none", "mixed") or inner_script == name_script):
        return []
    if not plausible(text, a, b):
        return []
    return [_suggestion(a, b, label, VARIANTS, VARIANT_SCORE, version)]


def money_candidates(text: str, bounds: Boundaries, label: str = "MONEY") -> list[dict]:
    out = []
    for m in MONEY_RE.finditer(text):
        start, end = m.span()
        if bounds.fits(start, end):
            out.append(_suggestion(start, end, label, PATTERNS, PATTERN_SCORE, PATTERNS_VERSION))
    return out


def _suggestion(start, end, label, source, score, version) -> dict:
    return {"start": start, "end": end, "label": label, "attributes": {}, "source": source,
            "score": round(score, 3), "version": version}


def choose(candidates: list[dict], taken: list[Taken], rejected: set | None = None) -> list[dict]:
    """Longest first (then earliest, then the higher score): keep what overlaps no entity span
    the person has and no suggestion kept already, duplicates none of their spans, and was not
    rejected by them (``rejected``: {(start, end, label)}). Returned in text order."""
    have = {(t.start, t.end, t.label) for t in taken}
    blocked = sorted((t.start, t.end) for t in taken if t.entity)
    kept: list[tuple[int, int]] = []
    out = []
    for c in sorted(candidates, key=lambda c: (c["start"] - c["end"], c["start"], -c["score"])):
        key = (c["start"], c["end"], c["label"])
        if key in have or (rejected and key in rejected):
            continue
        if _overlaps(blocked, c["start"], c["end"]) or _overlaps(kept, c["start"], c["end"]):
            continue
        bisect.insort(kept, (c["start"], c["end"]))
        out.append(c)
    return sorted(out, key=lambda c: (c["start"], c["end"]))


# A name does not begin or end with punctuation, a symbol other than a currency sign, or a
# space, and does not run over a line break: what a model trained on little data proposes
# at the edges of bullets, photo captions and page furniture.
_EDGE_CATEGORIES = {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sk", "Sm", "So", "Zs", "Zl", "Zp",
                    "Cc", "Cf"}


def plausible(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] can be a name or an amount (see above)."""
    if end <= start or "\n" in text[start:end] or "\r" in text[start:end]:
        return False
    return (unicodedata.category(text[start]) not in _EDGE_CATEGORIES
            and (unicodedata.category(text[end - 1]) not in _EDGE_CATEGORIES
                 or text[end - 1] == "."))  # Corp., Inc.


def _overlaps(intervals: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) overlaps any of the sorted, non-overlapping ``intervals``."""
    i = bisect.bisect_left(intervals, (start, start))
    if i < len(intervals) and intervals[i][0] < end:
        return True
    return i > 0 and intervals[i - 1][1] > start


def suggest(text: str, tokens: list, entries: dict[str, tuple[str, float]], taken: list[Taken],
            labels: set[str], *, money_label: str | None = "MONEY", dictionary_version: str = "",
            rejected: set | None = None, pattern_matches: list[tuple[int, int, str]] = (),
            patterns_version: str = "", prefixes: set[str] | None = None,
            model_spans: list[dict] = (), model_version: str = "",
            unwanted: set[tuple[str, str]] = frozenset(),
            variants: bool | list[Variants] = True, variants_off: set[str] = frozenset()) -> list[dict]:
    """Every suggestion for one person on one document (see the module's docstring).
    ``labels``: the entity labels of the project; other labels are never suggested.
    ``pattern_matches``: (start, end, label) found by the project's own patterns
    (patterns.py). ``model_spans``: the model's stored predictions ({start, end, label,
    score, attributes}) for this document. ``unwanted``: (surface, label) pairs people of the
    project rejected more often than they accepted them: no source suggests them again.
    ``variants``: False for none, True to make the tables here, or the tables (``variants_of``,
    which a caller keeps with its dictionary); ``variants_off``: the labels whose variants
    annotators rejected too often (live.py), never offered."""
    bounds = Boundaries(tokens)
    cands = [c for c in dictionary_candidates(text, bounds, entries, dictionary_version,
                                              tokens=sorted(tokens), prefixes=prefixes)
             if c["label"] in labels]
    if money_label and money_label in labels:
        cands += money_candidates(text, bounds, money_label)
    cands += [_suggestion(a, b, label, PATTERNS, PATTERN_SCORE, patterns_version)
              for a, b, label in pattern_matches if label in labels]
    if unwanted:
        cands = [c for c in cands if (text[c["start"]:c["end"]], c["label"]) not in unwanted]
    first = choose(cands, taken, rejected)
    if variants:  # names nobody tagged yet, where the dictionary and patterns left a gap
        named = [(t.start, t.end, t.label) for t in taken if t.entity] + [
            (c["start"], c["end"], c["label"]) for c in first]
        tables = variants if isinstance(variants, list) else [variants_of(entries)]
        found = [c for c in variant_candidates(text, bounds, sorted(tokens), entries, named, tables)
                 if c["label"] in labels and c["label"] not in variants_off
                 and (text[c["start"]:c["end"]], c["label"]) not in unwanted]
        held = taken + [Taken(c["start"], c["end"], c["label"], True) for c in first]
        first = sorted(first + choose(found, held, rejected), key=lambda c: (c["start"], c["end"]))
    model = [_suggestion(m["start"], m["end"], m["label"], MODEL, m.get("score", 1.0), model_version)
             for m in model_spans if m["label"] in labels and m.get("offered", True)
             and m.get("score", 1.0) >= MODEL_MIN_SCORE
             and plausible(text, m["start"], m["end"])
             and (text[m["start"]:m["end"]], m["label"]) not in unwanted]
    if not model:
        return first
    held = taken + [Taken(c["start"], c["end"], c["label"], True) for c in first]
    return sorted(first + choose(model, held, rejected), key=lambda c: (c["start"], c["end"]))
