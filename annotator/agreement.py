"""Inter-annotator agreement statistics (pure: no Flask, no database, no spaCy).

Input is plain data::

    docs = [{"id": 1, "text": "...",
             "annotations": {"alice": [{"start": 0, "end": 4, "label": "ORG",
                                        "attributes": {}}, ...],
                             "bob": []}}]          # submitted, empty = all "O"
    layers = {"entity": {"PERSON", "ORG", "MONEY"}, "claim": {"CLAIM"}}

Only submitted annotations are passed.  An annotator absent from a document's
``annotations`` did not annotate it (missing data); an annotator present with
an empty list submitted "nothing here" (real data, every token "O").

Everything undefined (0/0, no variation, no common documents, fewer than two
annotators) is reported as ``None`` with a human-readable reason in a sibling
key ``<name>_reason``; undefined values are left out of means.  Nothing
undefined is ever reported as 1.0 or 0.

Offsets are Python ``str`` indices (code points), end exclusive.  Spans whose
label is in no layer are ignored; spans with invalid offsets raise
``ValueError`` (the caller should validate on save).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "DEFAULT_LAYERS",
    "STANCE_LAYERS",
    "agreement_report",
    "document_diff",
    "match_spans",
    "span_f1",
    "tokenize",
]

DEFAULT_LAYERS: dict[str, set[str]] = {"entity": {"PERSON", "ORG", "MONEY"}, "claim": {"CLAIM"}}
#: layers whose matched spans carry a ``stance`` attribute worth comparing
STANCE_LAYERS = frozenset({"claim"})
STANCE_ATTRIBUTE = "stance"

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PAIR_SEP = "|"


# ---------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------

def tokenize(text: str) -> list[tuple[int, int]]:
    """Token offsets ``(start, end)`` of ``\\w+|[^\\w\\s]`` in ``text``."""
    return [m.span() for m in TOKEN_RE.finditer(text)]


# Character classes for the vectorised tokenizer: 0 = whitespace (no token),
# 1 = word character (runs form one token), 2 = anything else (one token each).
# Classified lazily with the very same regex so both tokenizers agree exactly.
_MAX_CP = 0x110000
_CHAR_CLASS = np.zeros(_MAX_CP, dtype=np.uint8)
_CHAR_KNOWN = np.zeros(_MAX_CP, dtype=bool)
_WORD_RE = re.compile(r"\w")
_SPACE_RE = re.compile(r"\s")


def _classify(codepoints: np.ndarray) -> None:
    new = codepoints[~_CHAR_KNOWN[codepoints]]
    for cp in new.tolist():
        ch = chr(cp)
        _CHAR_CLASS[cp] = 1 if _WORD_RE.match(ch) else (0 if _SPACE_RE.match(ch) else 2)
    _CHAR_KNOWN[new] = True


def _tokenize_concat(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised equivalent of :func:`tokenize` returning (starts, ends) arrays."""
    if not text:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    _classify(np.flatnonzero(np.bincount(cps)))
    cls = _CHAR_CLASS[cps]
    word = cls == 1
    prev_word = np.empty_like(word)
    prev_word[0] = False
    prev_word[1:] = word[:-1]
    next_word = np.empty_like(word)
    next_word[-1] = False
    next_word[:-1] = word[1:]
    other = cls == 2
    starts = np.flatnonzero(other | (word & ~prev_word))
    ends = np.flatnonzero(other | (word & ~next_word)) + 1
    return starts, ends


# ---------------------------------------------------------------------------
# Span matching and span F1
# ---------------------------------------------------------------------------

def _span_key(span: Mapping[str, Any]) -> tuple[int, int, str]:
    return int(span["start"]), int(span["end"]), str(span["label"])


def _match_exact(a: Sequence[tuple], b: Sequence[tuple]) -> list[tuple[int, int]]:
    """One-to-one exact matching on (start, end, label); duplicates pair in index order."""
    pool: dict[tuple, list[int]] = defaultdict(list)
    for j, s in enumerate(b):
        pool[(s[0], s[1], s[2])].append(j)
    out = []
    for i, s in enumerate(a):
        js = pool.get((s[0], s[1], s[2]))
        if js:
            out.append((i, js.pop(0)))
    return out


def _overlap_candidates(a: Sequence[tuple], b: Sequence[tuple]) -> list[tuple[int, int]]:
    """All (i, j) with equal label and at least one shared character.

    Sweep over spans sorted by start keeping the still-open spans of each side:
    O(n log n + number of overlapping pairs) instead of O(len(a) * len(b)).
    """
    events = [(s[0], 0, i) for i, s in enumerate(a) if s[1] > s[0]]
    events += [(s[0], 1, j) for j, s in enumerate(b) if s[1] > s[0]]
    events.sort()
    active: tuple[list[int], list[int]] = ([], [])
    spans = (a, b)
    out = []
    for start, side, idx in events:
        other = 1 - side
        # drop spans of the other side that ended at or before this start
        still = [k for k in active[other] if spans[other][k][1] > start]
        active[other][:] = still
        label = spans[side][idx][2]
        for k in still:
            if spans[other][k][2] == label:
                out.append((idx, k) if side == 0 else (k, idx))
        active[side].append(idx)
    return out


def _match_overlap(a: Sequence[tuple], b: Sequence[tuple]) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of same-label overlapping spans.

    Order: IoU desc, overlap length desc, (start, end) of a's span asc, then of
    b's span asc (then indices, for exact duplicates).  IoU is compared as a
    float: equal fractions give identical floats and distinct fractions with
    lengths below ~10**7 never collide.
    """
    cands = []
    for i, j in _overlap_candidates(a, b):
        sa, sb = a[i], b[j]
        ov = min(sa[1], sb[1]) - max(sa[0], sb[0])
        union = max(sa[1], sb[1]) - min(sa[0], sb[0])
        cands.append((-ov / union, -ov, sa[0], sa[1], sb[0], sb[1], i, j))
    cands.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for *_, i, j in cands:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((i, j))
    return out


def _match(a: Sequence[tuple], b: Sequence[tuple], mode: str) -> list[tuple[int, int]]:
    if mode == "exact":
        return _match_exact(a, b)
    if mode == "overlap":
        return _match_overlap(a, b)
    raise ValueError(f"unknown match mode {mode!r} (expected 'exact' or 'overlap')")


def match_spans(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]],
                mode: str = "exact") -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` matching ``a[i]`` with ``b[j]``, sorted by ``i``.

    ``mode="exact"``: same start, end and label.  ``mode="overlap"``: same label
    and at least one shared character, one-to-one, greedy by IoU (see
    :func:`_match_overlap` for the tie-breaking order).
    """
    return sorted(_match([_span_key(s) for s in a], [_span_key(s) for s in b], mode))


def _ratio(num: float, den: float, name: str, reason: str) -> dict[str, Any]:
    if den == 0:
        return {name: None, f"{name}_reason": reason}
    return {name: num / den}


def _prf(tp: int, fp: int, fn: int, with_pr: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn}
    if with_pr:
        out.update(_ratio(tp, tp + fp, "precision", "no predicted spans"))
        out.update(_ratio(tp, tp + fn, "recall", "no reference spans"))
    out.update(_ratio(2 * tp, 2 * tp + fp + fn, "f1", "no spans in either annotation"))
    return out


def span_f1(reference: Sequence[Mapping[str, Any]], predicted: Sequence[Mapping[str, Any]],
            mode: str = "exact") -> dict[str, Any]:
    """Precision/recall/F1 of ``predicted`` against ``reference`` (one document).

    All labels are considered.  Undefined ratios are ``None`` with a
    ``<name>_reason`` sibling.
    """
    pairs = match_spans(reference, predicted, mode)
    tp = len(pairs)
    return _prf(tp, len(predicted) - tp, len(reference) - tp, with_pr=True)


# ---------------------------------------------------------------------------
# Chance-corrected coefficients (closed forms)
# ---------------------------------------------------------------------------

def _cohen(x: np.ndarray, y: np.ndarray, n_cat: int) -> dict[str, Any]:
    n = int(x.size)
    if n == 0:
        return {"kappa": None, "kappa_reason": "no tokens in common documents", "n_tokens": 0}
    conf = np.bincount(x.astype(np.int64) * n_cat + y, minlength=n_cat * n_cat)
    conf = conf.reshape(n_cat, n_cat).astype(np.float64)
    row, col = conf.sum(1), conf.sum(0)
    if np.count_nonzero(row) == 1 and np.array_equal(np.flatnonzero(row), np.flatnonzero(col)):
        return {"kappa": None, "n_tokens": n,
                "kappa_reason": "both annotators used one identical category everywhere "
                                "(expected agreement is 1)"}
    p_o = np.trace(conf) / n
    p_e = float(row @ col) / (n * n)
    return {"kappa": float((p_o - p_e) / (1.0 - p_e)), "n_tokens": n}


def _fleiss(table: np.ndarray) -> dict[str, Any]:
    """Fleiss' kappa from a (subjects x categories) count table, equal raters per row."""
    n_sub = table.shape[0]
    if n_sub == 0:
        return {"kappa": None, "kappa_reason": "no tokens"}
    table = table.astype(np.float64)
    n_rat = table[0].sum()
    p_cat = table.sum(0) / (n_sub * n_rat)
    if np.count_nonzero(p_cat) <= 1:
        return {"kappa": None, "kappa_reason": "no variation: every token has the same label"}
    p_rat = ((table * table).sum(1) - n_rat) / (n_rat * (n_rat - 1.0))
    p_mean = p_rat.mean()
    p_exp = float(p_cat @ p_cat)
    return {"kappa": float((p_mean - p_exp) / (1.0 - p_exp))}


def _alpha_nominal(counts: np.ndarray) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) from a (units x values) count table.

    Units coded by fewer than two coders are not pairable and are dropped.
    """
    counts = counts[counts.sum(1) >= 2].astype(np.float64)
    if counts.shape[0] == 0:
        return {"alpha": None,
                "alpha_reason": "no unit was coded by two or more annotators"}
    m = counts.sum(1)
    # coincidences: o_ck = sum_u (n_uc n_uk - [c == k] n_uc) / (m_u - 1)
    weighted = counts / (m - 1.0)[:, None]
    o = weighted.T @ counts
    o[np.diag_indices_from(o)] -= weighted.sum(0)
    n_c = o.sum(0)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)          # sum_{c != k} o_ck
    expected = n * n - float(n_c @ n_c)        # sum_{c != k} n_c n_k
    if expected <= 0:
        return {"alpha": None,
                "alpha_reason": "no variation: all pairable values are the same"}
    return {"alpha": float(1.0 - (n - 1.0) * observed / expected)}


def _mean(values: Iterable[float | None], what: str) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean_over_pairs": None, "mean_over_pairs_reason": f"no pair has a defined {what}"}
    return {"mean_over_pairs": float(sum(vals) / len(vals))}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def _label_layers(layers: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for layer, labels in layers.items():
        for label in labels:
            out[label].append(layer)
    return out


def _validate(doc: Mapping[str, Any], user: str, span: Mapping[str, Any]) -> tuple[int, int]:
    start, end = int(span["start"]), int(span["end"])
    if not 0 <= start < end <= len(doc["text"]):
        raise ValueError(f"document {doc.get('id')!r}, annotator {user!r}: invalid span "
                         f"[{start}, {end}) for text of length {len(doc['text'])}")
    return start, end


def _pair_key(a: str, b: str) -> str:
    return f"{a}{_PAIR_SEP}{b}"


def agreement_report(docs: Sequence[Mapping[str, Any]],
                     layers: Mapping[str, Iterable[str]] = DEFAULT_LAYERS) -> dict[str, Any]:
    """Agreement report (JSON-serialisable dict); see module docstring and README."""
    layers = {name: sorted(set(labels)) for name, labels in layers.items()}
    layer_names = list(layers)
    label_layers = _label_layers(layers)
    # category codes per layer: 0 = "O", labels 1..k in name order (so code
    # order is the label-name tie-break of the token labelling rule)
    codes = {ly: {lab: k + 1 for k, lab in enumerate(labs)} for ly, labs in layers.items()}

    annotators = sorted({u for d in docs for u in d.get("annotations", {})})
    a_index = {u: k for k, u in enumerate(annotators)}
    n_ann, n_docs = len(annotators), len(docs)
    pairs = list(combinations(range(n_ann), 2))

    # ---- per-document preprocessing -------------------------------------
    submitted = np.zeros((n_ann, n_docs), dtype=bool)
    # spans[layer][doc][annotator] -> list of (start, end, label, stance)
    spans: dict[str, list[dict[int, list[tuple]]]] = {ly: [] for ly in layer_names}
    # flat span arrays for the token labelling, per layer and annotator
    flat: dict[str, list[list[list[int]]]] = {
        ly: [[[], [], []] for _ in range(n_ann)] for ly in layer_names}  # gstart, gend, code
    texts = []
    offset = 0
    for d, doc in enumerate(docs):
        text = doc["text"]
        texts.append(text)
        per_layer = {ly: {} for ly in layer_names}
        for user, ann in doc.get("annotations", {}).items():
            u = a_index[user]
            submitted[u, d] = True
            for ly in layer_names:
                per_layer[ly][u] = []
            for s in ann or ():
                lys = label_layers.get(s["label"])
                if not lys:
                    continue
                start, end = _validate(doc, user, s)
                stance = (s.get("attributes") or {}).get(STANCE_ATTRIBUTE)
                for ly in lys:
                    per_layer[ly][u].append((start, end, s["label"], stance))
                    f = flat[ly][u]
                    f[0].append(offset + start)
                    f[1].append(offset + end)
                    f[2].append(codes[ly][s["label"]])
        for ly in layer_names:
            spans[ly].append(per_layer[ly])
        offset += len(text) + 1   # +1: the "\n" joining texts below

    n_per_doc = submitted.sum(0)

    # ---- tokens (vectorised over all documents at once, in chunks) -------
    tok_start, tok_end, tok_doc = _tokenize_docs(texts)
    n_tok = tok_start.size

    report_layers: dict[str, Any] = {}
    # per-doc overlap F1 per (layer, pair) for the document table
    doc_f1: list[list[tuple[str, float]]] = [[] for _ in range(n_docs)]

    for ly in layer_names:
        n_cat = len(layers[ly]) + 1
        layer_out: dict[str, Any] = {}

        # ---- span F1 ------------------------------------------------------
        sf: dict[str, Any] = {}
        stance_pairs: list[tuple[Any, Any]] = []
        want_stance = ly in STANCE_LAYERS
        for mode in ("exact", "overlap"):
            pairs_out = {}
            for i, j in pairs:
                tot = [0, 0, 0]
                per_label = {lab: [0, 0, 0] for lab in layers[ly]}
                nd = 0
                for d in range(n_docs):
                    per = spans[ly][d]
                    if i not in per or j not in per:
                        continue
                    nd += 1
                    sa, sb = per[i], per[j]
                    if not sa and not sb:
                        continue
                    m = _match(sa, sb, mode)
                    tp = len(m)
                    fn, fp = len(sa) - tp, len(sb) - tp
                    tot[0] += tp
                    tot[1] += fp
                    tot[2] += fn
                    if mode == "overlap":
                        doc_f1[d].append((ly, 2 * tp / (2 * tp + fp + fn)))
                        if want_stance:
                            for x, y in m:
                                stance_pairs.append((sa[x][3], sb[y][3]))
                    matched_a = {x for x, _ in m}
                    matched_b = {y for _, y in m}
                    for x, _ in m:
                        per_label[sa[x][2]][0] += 1
                    for y, s in enumerate(sb):
                        if y not in matched_b:
                            per_label[s[2]][1] += 1
                    for x, s in enumerate(sa):
                        if x not in matched_a:
                            per_label[s[2]][2] += 1
                entry = _prf(*tot)
                if nd == 0:
                    entry["f1_reason"] = "no common documents"
                entry["n_docs"] = nd
                entry["per_label"] = {lab: _prf(*c) for lab, c in per_label.items()}
                pairs_out[_pair_key(annotators[i], annotators[j])] = entry
            sf[mode] = {"pairs": pairs_out,
                        **_mean((p["f1"] for p in pairs_out.values()), "F1")}
        layer_out["span_f1"] = sf

        # ---- token labels -------------------------------------------------
        labels = np.full((n_ann, n_tok), -1, dtype=np.int8)
        for u in range(n_ann):
            labels[u, submitted[u][tok_doc]] = 0
            gs, ge, cd = flat[ly][u]
            if gs:
                _paint(labels[u], tok_start, tok_end,
                       np.asarray(gs, np.int64), np.asarray(ge, np.int64),
                       np.asarray(cd, np.int64))
        layer_out["token"] = _token_stats(labels, n_cat, annotators, pairs, submitted,
                                          n_per_doc, tok_doc)

        if want_stance:
            layer_out["stance"] = _stance_stats(stance_pairs)
        report_layers[ly] = layer_out

    # ---- documents table ------------------------------------------------------
    documents = []
    for d, doc in enumerate(docs):
        vals = doc_f1[d]
        entry: dict[str, Any] = {
            "id": doc.get("id"),
            "n_annotators": int(n_per_doc[d]),
            "annotators": [annotators[u] for u in np.flatnonzero(submitted[:, d])],
        }
        per_layer_f1 = {}
        for ly in layer_names:
            lv = [f for name, f in vals if name == ly]
            per_layer_f1[ly] = float(sum(lv) / len(lv)) if lv else None
        if n_per_doc[d] < 2:
            entry["disagreement"] = None
            entry["disagreement_reason"] = "fewer than 2 annotators"
        elif not vals:
            entry["disagreement"] = None
            entry["disagreement_reason"] = "no spans from any annotator"
        else:
            entry["disagreement"] = float(1.0 - sum(f for _, f in vals) / len(vals))
        entry["overlap_f1"] = per_layer_f1
        documents.append(entry)
    documents.sort(key=lambda e: (e["disagreement"] is None, -(e["disagreement"] or 0.0)))

    return {
        "annotators": annotators,
        "coverage": {
            "documents": n_docs,
            "with_2_or_more": int((n_per_doc >= 2).sum()),
            "with_1": int((n_per_doc == 1).sum()),
            "with_0": int((n_per_doc == 0).sum()),
            "per_annotator": {u: int(submitted[k].sum()) for k, u in enumerate(annotators)},
        },
        "layers": report_layers,
        "documents": documents,
    }


_CHUNK_CHARS = 1 << 20


def _tokenize_docs(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token (start, end, doc) arrays in the coordinates of "\\n".join(texts).

    The joining newline is whitespace, so no token crosses a document border.
    Texts are processed in chunks of about 1M characters to bound memory.
    """
    starts, ends, docs = [], [], []
    base = 0
    lo = 0
    while lo < len(texts):
        hi, size = lo, 0
        while hi < len(texts) and (size == 0 or size + len(texts[hi]) <= _CHUNK_CHARS):
            size += len(texts[hi]) + 1
            hi += 1
        chunk = "\n".join(texts[lo:hi])
        s, e = _tokenize_concat(chunk)
        lens = np.fromiter((len(t) + 1 for t in texts[lo:hi]), np.int64, hi - lo)
        doc_starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        docs.append(lo + np.searchsorted(doc_starts, s, side="right") - 1)
        starts.append(s + base)
        ends.append(e + base)
        base += int(lens.sum())
        lo = hi
    if not starts:
        z = np.zeros(0, np.int64)
        return z, z, z
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(docs)


def _paint(out: np.ndarray, tok_start: np.ndarray, tok_end: np.ndarray,
           gs: np.ndarray, ge: np.ndarray, code: np.ndarray) -> None:
    """Label each token with the span overlapping it that comes first by
    (start, longest, label name); spans are in global coordinates."""
    first = np.searchsorted(tok_end, gs, side="right")   # first token with end > start
    last = np.searchsorted(tok_start, ge, side="left")   # tokens with start < end
    n = np.maximum(last - first, 0)
    if not n.any():
        return
    order = np.lexsort((code, gs - ge, gs))              # priority: start, -length, label
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    rep = np.repeat(np.arange(gs.size), n)
    within = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    tok = first[rep] + within
    best = np.full(out.size, order.size, dtype=np.int64)
    np.minimum.at(best, tok, rank[rep])
    hit = best < order.size
    out[hit] = code[order[best[hit]]]


def _token_stats(labels: np.ndarray, n_cat: int, annotators: list[str], pairs,
                 submitted: np.ndarray, n_per_doc: np.ndarray, tok_doc: np.ndarray
                 ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    present = labels >= 0
    # Cohen's kappa per pair
    cp = {}
    for i, j in pairs:
        nd = int((submitted[i] & submitted[j]).sum())
        if nd == 0:
            entry = {"kappa": None, "kappa_reason": "no common documents", "n_tokens": 0}
        else:
            m = present[i] & present[j]
            entry = _cohen(labels[i, m], labels[j, m], n_cat)
        entry["n_docs"] = nd
        cp[_pair_key(annotators[i], annotators[j])] = entry
    out["cohen_kappa"] = {"pairs": cp, **_mean((e["kappa"] for e in cp.values()), "kappa")}

    # per-token category counts over annotators (missing excluded)
    counts = np.zeros((labels.shape[1], n_cat), dtype=np.int32)
    for c in range(n_cat):
        counts[:, c] = (labels == c).sum(0)

    # Fleiss' kappa per group of documents with the same number of annotators
    fl = {}
    tok_n = n_per_doc[tok_doc] if tok_doc.size else np.zeros(0, np.int64)
    for k in sorted(set(int(x) for x in n_per_doc if x >= 2)):
        sel = tok_n == k
        entry = _fleiss(counts[sel])
        entry["n_docs"] = int((n_per_doc == k).sum())
        entry["n_tokens"] = int(sel.sum())
        fl[str(k)] = entry
    out["fleiss_kappa"] = fl
    if not fl:
        out["fleiss_kappa_reason"] = "no document has 2 or more annotators"

    # Krippendorff's alpha over everything, missing annotations as missing data
    if len(annotators) < 2:
        out["krippendorff_alpha"] = None
        out["krippendorff_alpha_reason"] = "fewer than 2 annotators"
    else:
        a = _alpha_nominal(counts)
        out["krippendorff_alpha"] = a["alpha"]
        if "alpha_reason" in a:
            out["krippendorff_alpha_reason"] = a["alpha_reason"]
    return out


def _stance_stats(stance_pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Stance agreement over overlap-matched claim pairs (each pair = a unit
    with two coders).  Pairs where either side has no stance are counted in
    ``n_pairs_without_stance`` and otherwise ignored."""
    usable = [(x, y) for x, y in stance_pairs if x is not None and y is not None]
    out: dict[str, Any] = {"n_pairs": len(usable),
                           "n_pairs_without_stance": len(stance_pairs) - len(usable)}
    if not usable:
        out.update({"percent_agreement": None,
                    "percent_agreement_reason": "no matched claim pairs with a stance",
                    "alpha": None, "alpha_reason": "no matched claim pairs with a stance"})
        return out
    out["percent_agreement"] = sum(x == y for x, y in usable) / len(usable)
    values = sorted({str(v) for p in usable for v in p})
    idx = {v: k for k, v in enumerate(values)}
    counts = np.zeros((len(usable), len(values)), dtype=np.int64)
    rows = np.arange(len(usable))
    np.add.at(counts, (rows, [idx[str(x)] for x, _ in usable]), 1)
    np.add.at(counts, (rows, [idx[str(y)] for _, y in usable]), 1)
    out.update(_alpha_nominal(counts))
    return out


# ---------------------------------------------------------------------------
# Drill-down
# ---------------------------------------------------------------------------

def document_diff(doc: Mapping[str, Any],
                  layers: Mapping[str, Iterable[str]] = DEFAULT_LAYERS) -> dict[str, Any]:
    """Union of the spans of one document with, per span, who has it (exact match).

    Returns ``{"id", "annotators", "spans": [{"start", "end", "label", "layer",
    "text", "annotators", "missing", "attributes": {user: attributes}}]}``, spans
    sorted by (start, end, label).  ``missing`` lists the annotators of this
    document who do not have the span (an empty submission misses everything).
    """
    label_layers = _label_layers({k: set(v) for k, v in layers.items()})
    users = sorted(doc.get("annotations", {}))
    union: dict[tuple[int, int, str], dict[str, Any]] = {}
    for user in users:
        for s in doc["annotations"][user] or ():
            lys = label_layers.get(s["label"])
            if not lys:
                continue
            start, end = _validate(doc, user, s)
            key = (start, end, s["label"])
            e = union.setdefault(key, {
                "start": start, "end": end, "label": s["label"],
                "layer": sorted(lys)[0] if len(lys) == 1 else sorted(lys),
                "text": doc["text"][start:end], "annotators": [], "attributes": {}})
            if user not in e["annotators"]:
                e["annotators"].append(user)
                e["attributes"][user] = dict(s.get("attributes") or {})
    out = []
    for key in sorted(union):
        e = union[key]
        e["missing"] = [u for u in users if u not in e["annotators"]]
        out.append(e)
    return {"id": doc.get("id"), "annotators": users, "spans": out}
