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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

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
    """One-to-one exact matching of (start, end, label) tuples; duplicates pair
    in index order."""
    pool: dict[tuple, list[int]] = {}
    for j, s in enumerate(b):
        js = pool.get(s)
        if js is None:
            pool[s] = [j]
        else:
            js.append(j)
    out = []
    for i, s in enumerate(a):
        js = pool.get(s)
        if js:
            out.append((i, js.pop(0)))
    return out


_SWEEP_MIN = 64   # below this many candidate pairs a plain double loop is faster


def _overlap_candidates(a: Sequence[tuple], b: Sequence[tuple],
                        ia: Sequence[int] | None = None,
                        ib: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """All (i, j) (restricted to indices ``ia``/``ib``) with equal label and at
    least one shared character.

    Large inputs use a sweep over spans sorted by start keeping the still-open
    spans of each side: O(n log n + number of overlapping pairs) instead of
    O(len(a) * len(b)).
    """
    ia = range(len(a)) if ia is None else ia
    ib = range(len(b)) if ib is None else ib
    if len(ia) * len(ib) < _SWEEP_MIN:
        out = []
        for i in ia:
            s0, e0, lab = a[i][0], a[i][1], a[i][2]
            for j in ib:
                t = b[j]
                if t[0] < e0 and t[1] > s0 and t[2] == lab:
                    out.append((i, j))
        return out
    events = [(a[i][0], 0, i) for i in ia if a[i][1] > a[i][0]]
    events += [(b[j][0], 1, j) for j in ib if b[j][1] > b[j][0]]
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

    Identical spans (IoU exactly 1) come first in that order and pair up in
    index order, which is precisely the exact matching; so the exact matching
    is taken as is and only the remaining spans go through the greedy step.
    """
    out = _match_exact(a, b)
    if len(out) == len(a) or len(out) == len(b):
        return out
    used_a = {i for i, _ in out}
    used_b = {j for _, j in out}
    ia = [i for i in range(len(a)) if i not in used_a]
    ib = [j for j in range(len(b)) if j not in used_b]
    cands = []
    for i, j in _overlap_candidates(a, b, ia, ib):
        sa, sb = a[i], b[j]
        ov = min(sa[1], sb[1]) - max(sa[0], sb[0])
        union = max(sa[1], sb[1]) - min(sa[0], sb[0])
        cands.append((-ov / union, -ov, sa[0], sa[1], sb[0], sb[1], i, j))
    cands.sort()
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

def _cohen(x: np.ndarray, y: np.ndarray, n_cat: int,
           w: np.ndarray | None = None) -> dict[str, Any]:
    """Cohen's kappa of two label sequences (optionally weighted units)."""
    conf = np.bincount(x.astype(np.int64) * n_cat + y, weights=w, minlength=n_cat * n_cat)
    conf = conf.reshape(n_cat, n_cat).astype(np.float64)
    n = float(conf.sum())
    if n == 0:
        return {"kappa": None, "kappa_reason": "no tokens in common documents", "n_tokens": 0}
    row, col = conf.sum(1), conf.sum(0)
    if np.count_nonzero(row) == 1 and np.array_equal(np.flatnonzero(row), np.flatnonzero(col)):
        return {"kappa": None, "n_tokens": int(n),
                "kappa_reason": "both annotators used one identical category everywhere "
                                "(expected agreement is 1)"}
    p_o = np.trace(conf) / n
    p_e = float(row @ col) / (n * n)
    return {"kappa": float((p_o - p_e) / (1.0 - p_e)), "n_tokens": int(n)}


def _fleiss(table: np.ndarray, w: np.ndarray | None = None) -> dict[str, Any]:
    """Fleiss' kappa from a (subjects x categories) count table with the same
    number of raters per row; ``w`` = multiplicity of each row."""
    table = table.astype(np.float64)
    w = np.ones(table.shape[0]) if w is None else np.asarray(w, np.float64)
    n_sub = float(w.sum())
    if n_sub == 0:
        return {"kappa": None, "kappa_reason": "no tokens"}
    n_rat = table[0].sum()
    p_cat = (w @ table) / (n_sub * n_rat)
    if np.count_nonzero(p_cat) <= 1:
        return {"kappa": None, "kappa_reason": "no variation: every token has the same label"}
    p_rat = ((table * table).sum(1) - n_rat) / (n_rat * (n_rat - 1.0))
    p_mean = float(w @ p_rat) / n_sub
    p_exp = float(p_cat @ p_cat)
    return {"kappa": float((p_mean - p_exp) / (1.0 - p_exp))}


def _alpha_nominal(counts: np.ndarray, w: np.ndarray | None = None) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) from a (units x values) count table;
    ``w`` = multiplicity of each unit.  Units coded by fewer than two coders
    are not pairable and are dropped."""
    keep = counts.sum(1) >= 2
    counts = counts[keep].astype(np.float64)
    w = np.ones(counts.shape[0]) if w is None else np.asarray(w, np.float64)[keep]
    if counts.shape[0] == 0 or w.sum() == 0:
        return {"alpha": None,
                "alpha_reason": "no unit was coded by two or more annotators"}
    m = counts.sum(1)
    # coincidences: o_ck = sum_u w_u (n_uc n_uk - [c == k] n_uc) / (m_u - 1)
    weighted = counts * (w / (m - 1.0))[:, None]
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
    """Agreement report (JSON-serialisable dict).

    Per layer: pairwise span F1 (exact and overlap), token-level Cohen's kappa
    per pair, Fleiss' kappa per group of documents with the same number of
    annotators, Krippendorff's alpha over everything (missing annotations are
    missing data), and for the claim layer stance agreement over
    overlap-matched claims.  ``documents`` is sorted by disagreement (1 - mean
    over annotator pairs and layers of the per-document overlap F1), undefined
    last.
    """
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
    # spans[layer][doc][annotator] -> list of (start, end, label); stances alike
    spans: dict[str, list[dict[int, list[tuple]]]] = {ly: [] for ly in layer_names}
    stances: dict[str, list[dict[int, list[Any]]]] = {ly: [] for ly in layer_names}
    # flat span arrays for the token labelling, per layer and annotator
    flat: dict[str, list[list[list[int]]]] = {
        ly: [[[], [], []] for _ in range(n_ann)] for ly in layer_names}  # gstart, gend, code
    texts = []
    offset = 0
    for d, doc in enumerate(docs):
        text = doc["text"]
        texts.append(text)
        per_layer: dict[str, dict[int, list[tuple]]] = {ly: {} for ly in layer_names}
        per_stance: dict[str, dict[int, list[Any]]] = {ly: {} for ly in layer_names}
        for user, ann in doc.get("annotations", {}).items():
            u = a_index[user]
            submitted[u, d] = True
            for ly in layer_names:
                per_layer[ly][u] = []
                per_stance[ly][u] = []
            for s in ann or ():
                label = s["label"]
                lys = label_layers.get(label)
                if not lys:
                    continue
                start, end = _validate(doc, user, s)
                stance = (s.get("attributes") or {}).get(STANCE_ATTRIBUTE)
                for ly in lys:
                    per_layer[ly][u].append((start, end, label))
                    per_stance[ly][u].append(stance)
                    f = flat[ly][u]
                    f[0].append(offset + start)
                    f[1].append(offset + end)
                    f[2].append(codes[ly][label])
        for ly in layer_names:
            spans[ly].append(per_layer[ly])
            stances[ly].append(per_stance[ly])
        offset += len(text) + 1   # +1: the "\n" joining texts in _tokenize_docs

    n_per_doc = submitted.sum(0)
    common = {(i, j): np.flatnonzero(submitted[i] & submitted[j]).tolist() for i, j in pairs}

    # ---- tokens (vectorised over all documents at once, in chunks) -------
    tok_start, tok_end, tok_doc = _tokenize_docs(texts)
    ntok_doc = np.bincount(tok_doc, minlength=n_docs)
    # tokens covered by no span of a layer are "O" for every submitter: they
    # are aggregated per set of submitters instead of being materialised
    if n_docs and n_ann:
        patterns, pattern_of_doc = np.unique(submitted.T, axis=0, return_inverse=True)
        pattern_of_doc = pattern_of_doc.reshape(-1)
    else:
        patterns, pattern_of_doc = np.zeros((0, n_ann), bool), np.zeros(0, np.int64)

    report_layers: dict[str, Any] = {}
    # per-doc overlap F1 per (layer, pair) for the document table
    doc_f1: list[list[tuple[str, float]]] = [[] for _ in range(n_docs)]

    for ly in layer_names:
        labs = layers[ly]
        n_cat = len(labs) + 1
        want_stance = ly in STANCE_LAYERS
        stance_pairs: list[tuple[Any, Any]] = []
        sf: dict[str, Any] = {"exact": {"pairs": {}}, "overlap": {"pairs": {}}}
        lcode = codes[ly]
        # label counts [annotator, doc, code] for the per-label totals
        lc = np.zeros((n_ann, n_docs, n_cat), np.int64)
        for u in range(n_ann):
            _, _, cd = flat[ly][u]
            if cd:
                span_doc = np.repeat(np.arange(n_docs), [len(spans[ly][d].get(u, ()))
                                                         for d in range(n_docs)])
                np.add.at(lc[u], (span_doc, np.asarray(cd)), 1)

        # ---- span F1 (both modes in one pass over the common documents) ----
        for i, j in pairs:
            docs_ij = common[(i, j)]
            tp_ex = [0] * n_cat
            tp_ov = [0] * n_cat
            for d in docs_ij:
                per = spans[ly][d]
                sa, sb = per[i], per[j]
                if not sa or not sb:
                    if sa or sb:
                        doc_f1[d].append((ly, 0.0))
                    continue
                m_ex = _match_exact(sa, sb)
                if len(m_ex) == len(sa) == len(sb):
                    m_ov = m_ex
                else:
                    m_ov = _match_overlap(sa, sb)
                for x, _ in m_ex:
                    tp_ex[lcode[sa[x][2]]] += 1
                for x, _ in m_ov:
                    tp_ov[lcode[sa[x][2]]] += 1
                doc_f1[d].append((ly, 2 * len(m_ov) / (len(sa) + len(sb))))
                if want_stance:
                    sta, stb = stances[ly][d][i], stances[ly][d][j]
                    for x, y in m_ov:
                        stance_pairs.append((sta[x], stb[y]))
            tot_a = lc[i, docs_ij].sum(0)
            tot_b = lc[j, docs_ij].sum(0)
            for mode, tp in (("exact", np.array(tp_ex)), ("overlap", np.array(tp_ov))):
                entry = _prf(int(tp.sum()), int((tot_b - tp).sum()), int((tot_a - tp).sum()))
                if not docs_ij:
                    entry["f1_reason"] = "no common documents"
                entry["n_docs"] = len(docs_ij)
                entry["per_label"] = {
                    lab: _prf(int(tp[k + 1]), int(tot_b[k + 1] - tp[k + 1]),
                              int(tot_a[k + 1] - tp[k + 1]))
                    for k, lab in enumerate(labs)}
                sf[mode]["pairs"][_pair_key(annotators[i], annotators[j])] = entry
        for mode in ("exact", "overlap"):
            sf[mode].update(_mean((p["f1"] for p in sf[mode]["pairs"].values()), "F1"))

        # ---- token labels: explicit for covered tokens, aggregated for the rest
        per_ann = []
        for u in range(n_ann):
            gs, ge, cd = flat[ly][u]
            per_ann.append(_best_labels(tok_start, tok_end, np.asarray(gs, tok_start.dtype),
                                        np.asarray(ge, tok_start.dtype), np.asarray(cd, np.int64)))
        covered = (np.unique(np.concatenate([t for t, _ in per_ann]))
                   if per_ann else np.zeros(0, np.int64))
        cov_doc = tok_doc[covered]
        explicit = np.where(submitted[:, cov_doc], 0, -1).astype(np.int8)
        for u, (t, c) in enumerate(per_ann):
            explicit[u, np.searchsorted(covered, t)] = c
        bg_doc = ntok_doc - np.bincount(cov_doc, minlength=n_docs)
        bg_w = np.bincount(pattern_of_doc, weights=bg_doc, minlength=patterns.shape[0])
        background = np.where(patterns.T, 0, -1).astype(np.int8)
        units = np.concatenate([explicit, background], axis=1)
        weights = np.concatenate([np.ones(covered.size), bg_w])
        layer_out: dict[str, Any] = {"span_f1": sf}
        layer_out["token"] = _token_stats(units, weights, n_cat, annotators, pairs,
                                          common, n_per_doc)
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
        if n_per_doc[d] < 2:
            entry["disagreement"] = None
            entry["disagreement_reason"] = "fewer than 2 annotators"
        elif not vals:
            entry["disagreement"] = None
            entry["disagreement_reason"] = "no spans from any annotator"
        else:
            entry["disagreement"] = float(1.0 - sum(f for _, f in vals) / len(vals))
        per_layer_f1 = {}
        for ly in layer_names:
            lv = [f for name, f in vals if name == ly]
            per_layer_f1[ly] = float(sum(lv) / len(lv)) if lv else None
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
    # int32 halves the memory of the token arrays whenever offsets fit
    total = sum(len(t) + 1 for t in texts)
    idx = np.int32 if total < 2**31 - 1 else np.int64
    while lo < len(texts):
        hi, size = lo, 0
        while hi < len(texts) and (size == 0 or size + len(texts[hi]) <= _CHUNK_CHARS):
            size += len(texts[hi]) + 1
            hi += 1
        chunk = "\n".join(texts[lo:hi])
        s, e = _tokenize_concat(chunk)
        lens = np.fromiter((len(t) + 1 for t in texts[lo:hi]), np.int64, hi - lo)
        doc_starts = np.cumsum(lens) - lens
        docs.append((lo + np.searchsorted(doc_starts, s, side="right") - 1).astype(idx))
        starts.append((s + base).astype(idx))
        ends.append((e + base).astype(idx))
        base += int(lens.sum())
        lo = hi
    if not starts:
        z = np.zeros(0, np.int64)
        return z, z, z
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(docs)


def _best_labels(tok_start: np.ndarray, tok_end: np.ndarray,
                 gs: np.ndarray, ge: np.ndarray, code: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(token indices, label codes) of the tokens overlapped by the spans, each
    labelled by the span that comes first by (start, longest, label name).
    Spans and tokens are in global coordinates; cost is linear in the number
    of (span, token) overlaps, not in the number of tokens."""
    first = np.searchsorted(tok_end, gs, side="right")   # first token with end > start
    last = np.searchsorted(tok_start, ge, side="left")   # tokens with start < end
    n = np.maximum(last - first, 0)
    if not n.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int8)
    order = np.lexsort((code, gs - ge, gs))              # priority: start, -length, label
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    rep = np.repeat(np.arange(gs.size), n)
    tok = first[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n))
    srt = np.lexsort((rank[rep], tok))                   # by token, best span first
    tok, rep = tok[srt], rep[srt]
    head = np.ones(tok.size, dtype=bool)
    head[1:] = tok[1:] != tok[:-1]
    return tok[head], code[rep[head]].astype(np.int8)


def _token_stats(units: np.ndarray, w: np.ndarray, n_cat: int, annotators: list[str], pairs,
                 common: Mapping[tuple[int, int], list[int]], n_per_doc: np.ndarray
                 ) -> dict[str, Any]:
    """Token coefficients from an (annotators x units) label matrix (-1 =
    missing) where unit ``k`` stands for ``w[k]`` identical tokens."""
    out: dict[str, Any] = {}
    present = units >= 0
    cp = {}
    for i, j in pairs:
        nd = len(common[(i, j)])
        if nd == 0:
            entry = {"kappa": None, "kappa_reason": "no common documents", "n_tokens": 0}
        else:
            m = present[i] & present[j]
            entry = _cohen(units[i, m], units[j, m], n_cat, w[m])
        entry["n_docs"] = nd
        cp[_pair_key(annotators[i], annotators[j])] = entry
    out["cohen_kappa"] = {"pairs": cp, **_mean((e["kappa"] for e in cp.values()), "kappa")}

    # per-unit category counts over annotators (missing excluded)
    counts = np.zeros((units.shape[1], n_cat), dtype=np.int64)
    for c in range(n_cat):
        counts[:, c] = (units == c).sum(0)
    n_coders = present.sum(0)

    # Fleiss' kappa per group of documents with the same number of annotators
    fl = {}
    for k in sorted(set(int(x) for x in n_per_doc if x >= 2)):
        sel = n_coders == k
        entry = _fleiss(counts[sel], w[sel])
        entry["n_docs"] = int((n_per_doc == k).sum())
        entry["n_tokens"] = int(w[sel].sum())
        fl[str(k)] = entry
    out["fleiss_kappa"] = fl
    if not fl:
        out["fleiss_kappa_reason"] = "no document has 2 or more annotators"

    # Krippendorff's alpha over everything, missing annotations as missing data
    if len(annotators) < 2:
        out["krippendorff_alpha"] = None
        out["krippendorff_alpha_reason"] = "fewer than 2 annotators"
    else:
        a = _alpha_nominal(counts, w)
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


# One definition, for the report's drill-down and the review page alike (both say it).
DISAGREEMENT_DEFINITION = ("a distinct span is its offsets and label; it is disagreeing when an "
                           "annotator of the document lacks it or their attributes differ")


def span_disagreements(diff_spans: list[dict]) -> dict[str, int]:
    """Mark each span of ``document_diff`` ``agreed`` (every annotator of the document has it,
    all with the same attributes) and count: ``{"distinct", "disagreeing"}``."""
    for span in diff_spans:
        attrs = list(span["attributes"].values())
        span["agreed"] = not span["missing"] and all(a == attrs[0] for a in attrs)
    return {"distinct": len(diff_spans),
            "disagreeing": sum(not span["agreed"] for span in diff_spans)}

