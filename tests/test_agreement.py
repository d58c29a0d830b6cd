"""Tests for annotator.core.agreement.

Coefficients are checked against independent reference implementations
(scikit-learn, statsmodels, krippendorff) on seeded generated data; the token
labels fed to those references are built here by a naive per-token loop, not by
the module's vectorised code.  Span F1 is checked against hand-computed tables.
"""

from __future__ import annotations

import copy
import json
import math
import random
import warnings
from fractions import Fraction
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from annotator.core import agreement as ag
from annotator.core.agreement import (
    DEFAULT_LAYERS,
    agreement_report,
    document_diff,
    match_spans,
    span_f1,
    tokenize,
)

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

FIXTURE = Path(__file__).parent / "fixtures" / "annotated-000.jsonl"
TOL = 1e-9


def S(start, end, label, stance=None):
    attrs = {"stance": stance} if stance is not None else {}
    return {"start": start, "end": end, "label": label, "attributes": attrs}


# ---------------------------------------------------------------------------
# Generated data and naive reference computations
# ---------------------------------------------------------------------------

WORDS = ["Acme", "Corp", "Bob", "Smith", "paid", "$", "5", "million", ",", ".", "(", ")",
         "메타가", "알렉산드르", "왕은", "naïve", "e\u0301te", "über", "foo_bar", "42", "—", "“", "”",
         "Ünïcödé", "x²", "٣", "日本語", "—!?", "\t"]
LABELS = ["PERSON", "ORG", "MONEY", "CLAIM", "OTHER"]   # OTHER is in no layer
STANCES = ["favor", "against", "neutral"]


def _rand_text(rng):
    parts = []
    for _ in range(rng.randint(0, 60)):
        parts.append(rng.choice(WORDS))
        parts.append(rng.choice([" ", " ", " ", "\n", "", "  "]))
    return "".join(parts)


def _rand_span(rng, n):
    start = rng.randrange(n)
    end = min(n, start + rng.randint(1, 25))
    label = rng.choice(LABELS)
    return S(start, end, label, rng.choice(STANCES) if label == "CLAIM" else None)


def gen_docs(seed, n_docs=30, users=("alice", "bob", "carol", "dave"), p_missing=0.2,
             p_empty=0.1):
    """Seeded documents: annotators perturb a hidden gold; some are missing
    (absent from the dict), some submitted an empty annotation."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        text = _rand_text(rng)
        gold = [_rand_span(rng, len(text)) for _ in range(rng.randint(0, 7))] if text else []
        anns = {}
        for u in users:
            r = rng.random()
            if r < p_missing:
                continue
            if r < p_missing + p_empty:
                anns[u] = []
                continue
            spans = []
            for s in gold:
                if rng.random() < 0.2:
                    continue
                s = copy.deepcopy(s)
                if rng.random() < 0.25:
                    s["start"] = max(0, min(s["end"] - 1, s["start"] + rng.randint(-3, 3)))
                if rng.random() < 0.25:
                    s["end"] = min(len(text), max(s["start"] + 1, s["end"] + rng.randint(-3, 3)))
                if rng.random() < 0.1:
                    s["label"] = rng.choice(LABELS[:3])
                    s["attributes"] = {}
                if s["label"] == "CLAIM" and rng.random() < 0.3:
                    s["attributes"] = {"stance": rng.choice(STANCES)}
                spans.append(s)
            if text and rng.random() < 0.3:
                spans.append(_rand_span(rng, len(text)))
            rng.shuffle(spans)
            anns[u] = spans
        docs.append({"id": d, "text": text, "annotations": anns})
    return docs


def naive_token_labels(text, spans, labels):
    out = []
    for ts, te in tokenize(text):
        cands = [s for s in spans if s["label"] in labels and s["start"] < te and s["end"] > ts]
        if cands:
            best = min(cands, key=lambda s: (s["start"], -(s["end"] - s["start"]), s["label"]))
            out.append(best["label"])
        else:
            out.append("O")
    return out


def naive_overlap_match(a, b):
    cands = []
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            ov = min(x["end"], y["end"]) - max(x["start"], y["start"])
            if x["label"] == y["label"] and ov > 0:
                union = max(x["end"], y["end"]) - min(x["start"], y["start"])
                cands.append((-Fraction(ov, union), -ov, x["start"], x["end"],
                              y["start"], y["end"], i, j))
    cands.sort()
    ua, ub, out = set(), set(), []
    for *_, i, j in cands:
        if i not in ua and j not in ub:
            ua.add(i)
            ub.add(j)
            out.append((i, j))
    return sorted(out)


def naive_exact_match(a, b):
    used, out = set(), []
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            same = (x["start"], x["end"], x["label"]) == (y["start"], y["end"], y["label"])
            if j not in used and same:
                used.add(j)
                out.append((i, j))
                break
    return out


def _nan_or(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = float(fn())
        except ValueError:          # krippendorff raises on degenerate data
            return math.nan
    return v


def reference_stats(docs, layers=DEFAULT_LAYERS):
    """Everything the report contains that has a reference implementation."""
    users = sorted({u for d in docs for u in d["annotations"]})
    out = {}
    for ly, labs in layers.items():
        cats = ["O"] + sorted(labs)
        code = {c: k for k, c in enumerate(cats)}
        seqs = []   # per doc: {user: [labels]}
        for d in docs:
            seqs.append({u: naive_token_labels(d["text"], spans, labs)
                         for u, spans in d["annotations"].items()})
        res = {"cohen": {}, "fleiss": {}, "f1": {"exact": {}, "overlap": {}}}
        for i, a in enumerate(users):
            for b in users[i + 1:]:
                xa, xb = [], []
                for s in seqs:
                    if a in s and b in s:
                        xa += s[a]
                        xb += s[b]
                res["cohen"][f"{a}|{b}"] = (
                    _nan_or(lambda: cohen_kappa_score(xa, xb)) if xa else math.nan, len(xa))
                for mode, fn in (("exact", naive_exact_match), ("overlap", naive_overlap_match)):
                    tp = fp = fn_ = 0
                    for d in docs:
                        if a in d["annotations"] and b in d["annotations"]:
                            sa = [s for s in d["annotations"][a] if s["label"] in labs]
                            sb = [s for s in d["annotations"][b] if s["label"] in labs]
                            m = len(fn(sa, sb))
                            tp, fp, fn_ = tp + m, fp + len(sb) - m, fn_ + len(sa) - m
                    res["f1"][mode][f"{a}|{b}"] = (tp, fp, fn_)
        groups = {}
        for s in seqs:
            if len(s) >= 2:
                groups.setdefault(len(s), []).append(s)
        for k, group in groups.items():
            rows = [[code[s[u][t]] for u in sorted(s)] for s in group
                    for t in range(len(next(iter(s.values()))))]
            if rows:
                table, _ = aggregate_raters(np.array(rows))
                kf = _nan_or(lambda: fleiss_kappa(table, method="fleiss"))
            else:
                kf = math.nan
            res["fleiss"][str(k)] = (kf, len(group), len(rows))
        cols = []
        for s in seqs:
            n = len(next(iter(s.values()))) if s else 0
            for t in range(n):
                cols.append([code[s[u][t]] if u in s else np.nan for u in users])
        if len(users) >= 2 and cols:
            rel = np.array(cols, dtype=float).T
            res["alpha"] = _nan_or(lambda: krippendorff.alpha(
                reliability_data=rel, level_of_measurement="nominal"))
        else:
            res["alpha"] = math.nan
        if ly == "claim":
            pairs = []
            for i, a in enumerate(users):
                for b in users[i + 1:]:
                    for d in docs:
                        if a in d["annotations"] and b in d["annotations"]:
                            sa = [s for s in d["annotations"][a] if s["label"] in labs]
                            sb = [s for s in d["annotations"][b] if s["label"] in labs]
                            for x, y in naive_overlap_match(sa, sb):
                                pairs.append((sa[x]["attributes"].get("stance"),
                                              sb[y]["attributes"].get("stance")))
            pairs = [p for p in pairs if None not in p]
            res["stance_pairs"] = pairs
            if pairs:
                vals = {v: k for k, v in enumerate(STANCES)}
                rel = np.array([[vals[x] for x, _ in pairs], [vals[y] for _, y in pairs]], float)
                res["stance_alpha"] = _nan_or(lambda: krippendorff.alpha(
                    reliability_data=rel, level_of_measurement="nominal"))
            else:
                res["stance_alpha"] = math.nan
        out[ly] = res
    return out


def assert_value(value, reason, ref):
    """Reference NaN (undefined) <-> None with a reason; otherwise equal to 1e-9."""
    if math.isnan(ref):
        assert value is None, f"expected undefined, got {value}"
        assert isinstance(reason, str) and reason
    else:
        assert value == pytest.approx(ref, abs=TOL)
        assert reason is None


# ---------------------------------------------------------------------------
# Reference comparisons on generated data
# ---------------------------------------------------------------------------

SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.fixture(scope="module", params=SEEDS)
def generated(request):
    seed = request.param
    # a few variants: 3 or 4 annotators, more or fewer missing annotations
    users = ("alice", "bob", "carol") if seed % 2 else ("alice", "bob", "carol", "dave")
    docs = gen_docs(seed, users=users, p_missing=0.1 + 0.05 * (seed % 3))
    return docs, agreement_report(docs), reference_stats(docs)


def test_generated_data_exercises_the_edge_cases(generated):
    docs, rep, _ = generated
    counts = [len(d["annotations"]) for d in docs]
    assert any(c < len(rep["annotators"]) for c in counts), "no missing annotation generated"
    assert any(s == [] for d in docs for s in d["annotations"].values()), "no empty submission"
    assert len(rep["annotators"]) >= 3


def test_cohen_matches_sklearn(generated):
    _, rep, ref = generated
    for ly, r in ref.items():
        pairs = rep["layers"][ly]["token"]["cohen_kappa"]["pairs"]
        assert set(pairs) == set(r["cohen"])
        for key, (kappa, n) in r["cohen"].items():
            assert pairs[key]["n_tokens"] == n
            assert_value(pairs[key]["kappa"], pairs[key].get("kappa_reason"), kappa)
        defined = [k for k, _ in r["cohen"].values() if not math.isnan(k)]
        mean = rep["layers"][ly]["token"]["cohen_kappa"]["mean_over_pairs"]
        assert mean == pytest.approx(sum(defined) / len(defined), abs=TOL)


def test_fleiss_matches_statsmodels(generated):
    _, rep, ref = generated
    for ly, r in ref.items():
        fl = rep["layers"][ly]["token"]["fleiss_kappa"]
        assert set(fl) == set(r["fleiss"])
        assert "1" not in fl
        for key, (kappa, n_docs, n_tokens) in r["fleiss"].items():
            assert (fl[key]["n_docs"], fl[key]["n_tokens"]) == (n_docs, n_tokens)
            assert_value(fl[key]["kappa"], fl[key].get("kappa_reason"), kappa)


def test_alpha_matches_krippendorff(generated):
    _, rep, ref = generated
    for ly, r in ref.items():
        tok = rep["layers"][ly]["token"]
        assert_value(tok["krippendorff_alpha"], tok.get("krippendorff_alpha_reason"), r["alpha"])


def test_span_f1_pooled_matches_naive_matching(generated):
    _, rep, ref = generated
    for ly, r in ref.items():
        for mode in ("exact", "overlap"):
            pairs = rep["layers"][ly]["span_f1"][mode]["pairs"]
            for key, (tp, fp, fn) in r["f1"][mode].items():
                p = pairs[key]
                assert (p["tp"], p["fp"], p["fn"]) == (tp, fp, fn)
                assert sum(v["tp"] for v in p["per_label"].values()) == tp
                assert sum(v["fp"] for v in p["per_label"].values()) == fp
                assert sum(v["fn"] for v in p["per_label"].values()) == fn


def test_stance_matches_krippendorff(generated):
    _, rep, ref = generated
    st = rep["layers"]["claim"]["stance"]
    pairs = ref["claim"]["stance_pairs"]
    assert st["n_pairs"] == len(pairs)
    assert st["percent_agreement"] == pytest.approx(
        sum(x == y for x, y in pairs) / len(pairs), abs=TOL)
    assert_value(st["alpha"], st.get("alpha_reason"), ref["claim"]["stance_alpha"])


def test_report_is_strict_json(generated):
    _, rep, _ = generated
    json.dumps(rep, allow_nan=False)


def test_vectorised_tokenizer_equals_regex():
    rng = random.Random(42)
    alphabet = ("ab Z_9 \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000.,!?$€—“”"
                "메타가日本語é\u0301\u0300٣²\u200b\u00ad\ud800\U0001F600\U0001D400")
    texts = ["", " ", "a", "."] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
                                   for _ in range(300)]
    s, e, d = ag._tokenize_docs(texts)
    offs = np.cumsum([0] + [len(t) + 1 for t in texts])
    for k, t in enumerate(texts):
        sel = d == k
        got = list(zip((s[sel] - offs[k]).tolist(), (e[sel] - offs[k]).tolist()))
        assert got == tokenize(t)


def test_tokenizer_chunking_keeps_documents_apart(monkeypatch):
    monkeypatch.setattr(ag, "_CHUNK_CHARS", 7)
    texts = ["abc def", "x", "", "hello world.", "日本 語"]
    s, e, d = ag._tokenize_docs(texts)
    offs = np.cumsum([0] + [len(t) + 1 for t in texts])
    for k, t in enumerate(texts):
        sel = d == k
        assert list(zip((s[sel] - offs[k]).tolist(), (e[sel] - offs[k]).tolist())) == tokenize(t)


# ---------------------------------------------------------------------------
# Span matching and F1: hand-computed tables
# ---------------------------------------------------------------------------

MATCH_CASES = [
    # id, a, b, exact pairs, overlap pairs
    ("identical", [S(0, 4, "ORG")], [S(0, 4, "ORG")], [(0, 0)], [(0, 0)]),
    ("label differs", [S(0, 4, "ORG")], [S(0, 4, "PERSON")], [], []),
    ("touching is not overlap", [S(0, 4, "ORG")], [S(4, 8, "ORG")], [], []),
    ("one char shared", [S(0, 4, "ORG")], [S(3, 8, "ORG")], [], [(0, 0)]),
    ("one-to-one: the better half wins, first by (start,end) on a tie",
     [S(0, 10, "ORG")], [S(5, 10, "ORG"), S(0, 5, "ORG")], [], [(0, 1)]),
    ("higher IoU beats earlier span",
     [S(0, 10, "ORG")], [S(0, 4, "ORG"), S(2, 10, "ORG")], [], [(0, 1)]),
    ("equal IoU: longer overlap wins",
     [S(0, 4, "ORG")], [S(0, 2, "ORG"), S(0, 8, "ORG")], [], [(0, 1)]),
    ("equal IoU and overlap: a's (start,end) ascending",
     [S(6, 12, "ORG"), S(0, 6, "ORG")], [S(4, 8, "ORG")], [], [(1, 0)]),
    ("greedy, not optimal: best IoU pair is taken first",
     [S(0, 10, "ORG"), S(8, 12, "ORG")], [S(2, 11, "ORG"), S(9, 20, "ORG")],
     [], [(0, 0), (1, 1)]),
    ("greedy leaves a span unmatched",
     [S(0, 6, "ORG"), S(5, 7, "ORG")], [S(1, 6, "ORG")], [], [(0, 0)]),
    ("duplicates match one-to-one",
     [S(0, 4, "ORG"), S(0, 4, "ORG")], [S(0, 4, "ORG")], [(0, 0)], [(0, 0)]),
    ("nested spans of different labels",
     [S(0, 20, "CLAIM"), S(0, 4, "ORG")], [S(0, 4, "ORG"), S(1, 19, "CLAIM")],
     [(1, 0)], [(0, 1), (1, 0)]),
]


@pytest.mark.parametrize("a,b,exact,overlap", [c[1:] for c in MATCH_CASES],
                         ids=[c[0] for c in MATCH_CASES])
def test_match_spans_table(a, b, exact, overlap):
    assert match_spans(a, b, "exact") == exact
    assert match_spans(a, b, "overlap") == overlap
    assert match_spans(a, b, "overlap") == naive_overlap_match(a, b)


@pytest.mark.parametrize("seed", range(20))
def test_overlap_matching_on_long_span_lists(seed):
    """Long lists take the sweep path for candidates; must equal brute force."""
    rng = random.Random(seed)

    def spans(n):
        out = []
        for _ in range(n):
            s = rng.randrange(300)
            out.append(S(s, s + rng.randint(1, 30), rng.choice(["ORG", "PERSON"])))
        return out + [copy.deepcopy(out[k]) for k in range(0, n, 7)]     # exact duplicates

    a, b = spans(rng.randint(10, 60)), spans(rng.randint(10, 60))
    ka = [ag._span_key(x) for x in a]
    kb = [ag._span_key(x) for x in b]
    brute = sorted((i, j) for i, x in enumerate(ka) for j, y in enumerate(kb)
                   if x[2] == y[2] and x[0] < y[1] and y[0] < x[1])
    assert len(ka) * len(kb) >= ag._SWEEP_MIN
    assert sorted(ag._overlap_candidates(ka, kb)) == brute
    assert match_spans(a, b, "overlap") == naive_overlap_match(a, b)
    assert match_spans(a, b, "exact") == naive_exact_match(a, b)


def test_match_spans_rejects_unknown_mode():
    with pytest.raises(ValueError):
        match_spans([], [], "fuzzy")


F1_CASES = [
    # id, reference, predicted, mode, (tp, fp, fn), precision, recall, f1
    ("perfect", [S(0, 4, "ORG")], [S(0, 4, "ORG")], "exact", (1, 0, 0), 1, 1, 1),
    ("boundary exact", [S(0, 4, "ORG")], [S(0, 5, "ORG")], "exact", (0, 1, 1), 0, 0, 0),
    ("boundary overlap", [S(0, 4, "ORG")], [S(0, 5, "ORG")], "overlap", (1, 0, 0), 1, 1, 1),
    ("split span", [S(0, 10, "ORG")], [S(0, 5, "ORG"), S(5, 10, "ORG")], "overlap",
     (1, 1, 0), Fraction(1, 2), 1, Fraction(2, 3)),
    ("mixed", [S(0, 4, "ORG"), S(5, 8, "PERSON"), S(9, 12, "MONEY")],
     [S(0, 4, "ORG"), S(5, 9, "PERSON")], "exact", (1, 1, 2), Fraction(1, 2), Fraction(1, 3),
     Fraction(2, 5)),
    ("nothing predicted", [S(0, 4, "ORG")], [], "exact", (0, 0, 1), None, 0, 0),
    ("nothing referenced", [], [S(0, 4, "ORG")], "exact", (0, 1, 0), 0, None, 0),
    ("nothing at all", [], [], "overlap", (0, 0, 0), None, None, None),
]


@pytest.mark.parametrize("ref,pred,mode,counts,p,r,f", [c[1:] for c in F1_CASES],
                         ids=[c[0] for c in F1_CASES])
def test_span_f1_table(ref, pred, mode, counts, p, r, f):
    res = span_f1(ref, pred, mode)
    assert (res["tp"], res["fp"], res["fn"]) == counts
    for name, want in (("precision", p), ("recall", r), ("f1", f)):
        if want is None:
            assert res[name] is None and res[f"{name}_reason"]
        else:
            assert res[name] == pytest.approx(float(want), abs=TOL)
            assert f"{name}_reason" not in res
    json.dumps(res, allow_nan=False)


POOL_DOCS = [
    {"id": "d1", "text": "x" * 40, "annotations": {
        "alice": [S(0, 4, "ORG"), S(5, 8, "PERSON"), S(20, 30, "CLAIM", "favor")],
        "bob": [S(0, 4, "ORG"), S(5, 9, "PERSON"), S(22, 30, "CLAIM", "against")]}},
    {"id": "d2", "text": "y" * 40, "annotations": {
        "alice": [S(10, 15, "MONEY")],
        "bob": [S(30, 33, "OTHER")]}},                 # OTHER: in no layer, ignored
    {"id": "d3", "text": "z" * 40, "annotations": {     # alice only: not pooled
        "alice": [S(0, 4, "ORG"), S(6, 9, "ORG")]}},
]

# pair alice|bob, pooled over d1 and d2 -> (tp, fp, fn, f1) and per label (tp, fp, fn, f1)
POOL_EXPECTED = {
    ("entity", "exact"): ((1, 1, 2, Fraction(2, 5)),
                          {"ORG": (1, 0, 0, 1), "PERSON": (0, 1, 1, 0), "MONEY": (0, 0, 1, 0)}),
    ("entity", "overlap"): ((2, 0, 1, Fraction(4, 5)),
                            {"ORG": (1, 0, 0, 1), "PERSON": (1, 0, 0, 1), "MONEY": (0, 0, 1, 0)}),
    ("claim", "exact"): ((0, 1, 1, 0), {"CLAIM": (0, 1, 1, 0)}),
    ("claim", "overlap"): ((1, 0, 0, 1), {"CLAIM": (1, 0, 0, 1)}),
}


@pytest.mark.parametrize("layer,mode", list(POOL_EXPECTED))
def test_span_f1_pooled_per_label(layer, mode):
    rep = agreement_report(POOL_DOCS)
    pair = rep["layers"][layer]["span_f1"][mode]["pairs"]["alice|bob"]
    (tp, fp, fn, f1), per_label = POOL_EXPECTED[(layer, mode)]
    assert (pair["tp"], pair["fp"], pair["fn"], pair["n_docs"]) == (tp, fp, fn, 2)
    assert pair["f1"] == pytest.approx(float(f1), abs=TOL)
    assert set(pair["per_label"]) == set(per_label)
    for lab, (ltp, lfp, lfn, lf1) in per_label.items():
        got = pair["per_label"][lab]
        assert (got["tp"], got["fp"], got["fn"]) == (ltp, lfp, lfn)
        assert got["f1"] == pytest.approx(float(lf1), abs=TOL)
    assert rep["layers"][layer]["span_f1"][mode]["mean_over_pairs"] == pytest.approx(float(f1))


def test_stance_on_pooled_docs():
    st = agreement_report(POOL_DOCS)["layers"]["claim"]["stance"]
    assert st["n_pairs"] == 1 and st["percent_agreement"] == 0.0
    ref = krippendorff.alpha(reliability_data=[[0.0], [1.0]], level_of_measurement="nominal")
    assert st["alpha"] == pytest.approx(ref, abs=TOL) and st["alpha"] == pytest.approx(0.0)


def test_stance_without_variation_is_undefined():
    docs = copy.deepcopy(POOL_DOCS)
    docs[0]["annotations"]["bob"][2]["attributes"]["stance"] = "favor"
    st = agreement_report(docs)["layers"]["claim"]["stance"]
    assert st["percent_agreement"] == 1.0                # defined: one pair, agreeing
    assert st["alpha"] is None and "no variation" in st["alpha_reason"]
    del docs[0]["annotations"]["bob"][2]["attributes"]["stance"]
    st = agreement_report(docs)["layers"]["claim"]["stance"]
    assert st["n_pairs"] == 0 and st["n_pairs_without_stance"] == 1
    assert st["percent_agreement"] is None and st["percent_agreement_reason"]


def test_documents_table_and_diff():
    rep = agreement_report(POOL_DOCS)
    docs = rep["documents"]
    assert [d["id"] for d in docs] == ["d2", "d1", "d3"]
    # d2: entity overlap F1 0 (MONEY vs nothing), claim layer: no spans at all
    assert docs[0]["disagreement"] == pytest.approx(1.0)
    # d1: entity overlap F1 1, claim overlap F1 1 -> 0
    assert docs[1]["disagreement"] == pytest.approx(0.0)
    assert docs[1]["overlap_f1"] == {"entity": 1.0, "claim": 1.0}
    assert docs[2]["disagreement"] is None and docs[2]["disagreement_reason"]
    diff = document_diff(POOL_DOCS[0])
    assert diff["annotators"] == ["alice", "bob"]
    got = [(s["start"], s["end"], s["label"], s["annotators"], s["missing"]) for s in diff["spans"]]
    assert got == [
        (0, 4, "ORG", ["alice", "bob"], []),
        (5, 8, "PERSON", ["alice"], ["bob"]),
        (5, 9, "PERSON", ["bob"], ["alice"]),
        (20, 30, "CLAIM", ["alice"], ["bob"]),
        (22, 30, "CLAIM", ["bob"], ["alice"]),
    ]
    assert diff["spans"][3]["attributes"] == {"alice": {"stance": "favor"}}
    assert document_diff(POOL_DOCS[1])["spans"][0]["label"] == "MONEY"
    assert len(document_diff(POOL_DOCS[1])["spans"]) == 1      # OTHER ignored


# ---------------------------------------------------------------------------
# Edge rules
# ---------------------------------------------------------------------------

TEXT = "Acme Corp paid Bob Smith $5 million. Globex hired Ann. It was wise."
ORG, PER, MON = S(0, 9, "ORG"), S(15, 24, "PERSON"), S(25, 36, "MONEY")
CL = S(37, 54, "CLAIM", "favor")


def _agree_docs():
    """alice and bob agree everywhere; carol agrees on d1 and did not annotate d2."""
    d1 = {"id": 1, "text": TEXT,
          "annotations": {u: [ORG, PER, CL] for u in ("alice", "bob", "carol")}}
    d2 = {"id": 2, "text": TEXT,
          "annotations": {u: [MON, S(37, 43, "ORG")] for u in ("alice", "bob")}}
    return [d1, d2]


def test_missing_annotation_does_not_lower_agreement():
    rep = agreement_report(_agree_docs())
    ent = rep["layers"]["entity"]
    assert ent["token"]["krippendorff_alpha"] == pytest.approx(1.0)
    assert ent["token"]["cohen_kappa"]["mean_over_pairs"] == pytest.approx(1.0)
    assert ent["span_f1"]["exact"]["mean_over_pairs"] == pytest.approx(1.0)
    assert ent["span_f1"]["exact"]["pairs"]["alice|carol"]["n_docs"] == 1
    assert set(ent["token"]["fleiss_kappa"]) == {"2", "3"}
    assert rep["coverage"]["per_annotator"] == {"alice": 2, "bob": 2, "carol": 1}


def test_empty_submission_lowers_agreement():
    base = agreement_report(_agree_docs())
    docs = _agree_docs()
    docs[1]["annotations"]["carol"] = []          # carol submitted "nothing here"
    rep = agreement_report(docs)
    for ly in ("entity",):
        b, r = base["layers"][ly], rep["layers"][ly]
        assert r["token"]["krippendorff_alpha"] < b["token"]["krippendorff_alpha"]
        assert (r["token"]["cohen_kappa"]["mean_over_pairs"]
                < b["token"]["cohen_kappa"]["mean_over_pairs"])
        assert r["span_f1"]["exact"]["mean_over_pairs"] < b["span_f1"]["exact"]["mean_over_pairs"]
        assert r["span_f1"]["exact"]["pairs"]["alice|carol"]["fn"] == 2
        assert set(r["token"]["fleiss_kappa"]) == {"3"}
        assert r["token"]["fleiss_kappa"]["3"]["n_docs"] == 2
    assert rep["coverage"]["with_2_or_more"] == 2
    # and the figures still match the references
    ref = reference_stats(docs)
    tok = rep["layers"]["entity"]["token"]
    assert tok["krippendorff_alpha"] == pytest.approx(ref["entity"]["alpha"], abs=TOL)
    assert tok["fleiss_kappa"]["3"]["kappa"] == pytest.approx(
        ref["entity"]["fleiss"]["3"][0], abs=TOL)


def test_single_annotator_documents_count_in_coverage_only():
    base_docs = _agree_docs()
    base = agreement_report(base_docs)
    extra = {"id": 3, "text": TEXT, "annotations": {"carol": [ORG, S(10, 14, "MONEY"), CL]}}
    lonely = {"id": 4, "text": TEXT, "annotations": {"dave": [PER]}}
    nobody = {"id": 5, "text": TEXT, "annotations": {}}
    rep = agreement_report(base_docs + [extra, lonely, nobody])
    assert rep["coverage"] == {"documents": 5, "with_2_or_more": 2, "with_1": 2, "with_0": 1,
                               "per_annotator": {"alice": 2, "bob": 2, "carol": 2, "dave": 1}}
    for ly in ("entity", "claim"):
        b, r = base["layers"][ly], rep["layers"][ly]
        assert r["token"]["krippendorff_alpha"] == b["token"]["krippendorff_alpha"]
        assert r["token"]["fleiss_kappa"] == b["token"]["fleiss_kappa"]
        for mode in ("exact", "overlap"):
            for key, pair in b["span_f1"][mode]["pairs"].items():
                assert r["span_f1"][mode]["pairs"][key] == pair
        for key, pair in b["token"]["cohen_kappa"]["pairs"].items():
            assert r["token"]["cohen_kappa"]["pairs"][key] == pair
    # dave shares no document with anybody: undefined, excluded from the means
    for ly in ("entity", "claim"):
        r = rep["layers"][ly]
        for other in ("alice", "bob", "carol"):
            p = r["span_f1"]["exact"]["pairs"][f"{other}|dave"]
            assert p["f1"] is None and p["f1_reason"] == "no common documents" and p["n_docs"] == 0
            c = r["token"]["cohen_kappa"]["pairs"][f"{other}|dave"]
            assert c["kappa"] is None and c["kappa_reason"] == "no common documents"
        assert (r["span_f1"]["exact"]["mean_over_pairs"]
                == base["layers"][ly]["span_f1"]["exact"]["mean_over_pairs"])
    singles = [d for d in rep["documents"] if d["n_annotators"] < 2]
    assert [d["id"] for d in rep["documents"][-3:]] == [3, 4, 5]
    assert all(d["disagreement"] is None for d in singles)
    assert all(d["disagreement_reason"] == "fewer than 2 annotators" for d in singles)


def test_all_empty_submissions_are_undefined_not_perfect():
    docs = [{"id": i, "text": TEXT, "annotations": {"alice": [], "bob": [], "carol": []}}
            for i in range(3)]
    rep = agreement_report(docs)
    ref = reference_stats(docs)
    for ly in ("entity", "claim"):
        r = rep["layers"][ly]
        for mode in ("exact", "overlap"):
            sf = r["span_f1"][mode]
            assert all(p["f1"] is None and p["f1_reason"] for p in sf["pairs"].values())
            assert sf["mean_over_pairs"] is None and sf["mean_over_pairs_reason"]
        ck = r["token"]["cohen_kappa"]
        for key, p in ck["pairs"].items():
            assert math.isnan(ref[ly]["cohen"][key][0])          # sklearn: nan
            assert p["kappa"] is None and "identical category" in p["kappa_reason"]
        assert ck["mean_over_pairs"] is None and ck["mean_over_pairs_reason"]
        assert math.isnan(ref[ly]["fleiss"]["3"][0])              # statsmodels: nan
        assert r["token"]["fleiss_kappa"]["3"]["kappa"] is None
        assert "no variation" in r["token"]["fleiss_kappa"]["3"]["kappa_reason"]
        assert math.isnan(ref[ly]["alpha"])                       # krippendorff: error
        assert r["token"]["krippendorff_alpha"] is None
        assert "no variation" in r["token"]["krippendorff_alpha_reason"]
    st = rep["layers"]["claim"]["stance"]
    assert st["n_pairs"] == 0 and st["percent_agreement"] is None and st["alpha"] is None
    assert st["percent_agreement_reason"] and st["alpha_reason"]
    assert all(d["disagreement"] is None for d in rep["documents"])
    json.dumps(rep, allow_nan=False)


def test_identical_single_label_everywhere_is_undefined():
    text = "Acme Corp"
    docs = [{"id": 1, "text": text,
             "annotations": {"alice": [S(0, 9, "ORG")], "bob": [S(0, 9, "ORG")]}}]
    rep = agreement_report(docs)
    tok = rep["layers"]["entity"]["token"]
    ref = reference_stats(docs)["entity"]
    assert math.isnan(ref["cohen"]["alice|bob"][0])
    assert tok["cohen_kappa"]["pairs"]["alice|bob"]["kappa"] is None
    assert tok["krippendorff_alpha"] is None
    # span F1 is defined and perfect: they did mark the same span
    assert rep["layers"]["entity"]["span_f1"]["exact"]["pairs"]["alice|bob"]["f1"] == 1.0


def test_one_constant_annotator_gives_defined_kappa():
    # alice all O, bob not: p_e < 1, kappa defined (= 0), as in sklearn
    docs = [{"id": 1, "text": TEXT, "annotations": {"alice": [], "bob": [ORG]}}]
    tok = agreement_report(docs)["layers"]["entity"]["token"]
    ref = reference_stats(docs)["entity"]
    assert tok["cohen_kappa"]["pairs"]["alice|bob"]["kappa"] == pytest.approx(
        ref["cohen"]["alice|bob"][0], abs=TOL)
    assert tok["krippendorff_alpha"] == pytest.approx(ref["alpha"], abs=TOL)


def test_fewer_than_two_annotators():
    docs = [{"id": 1, "text": TEXT, "annotations": {"alice": [ORG, CL]}}]
    rep = agreement_report(docs)
    for ly in ("entity", "claim"):
        r = rep["layers"][ly]
        assert r["span_f1"]["exact"]["pairs"] == {}
        assert r["span_f1"]["exact"]["mean_over_pairs"] is None
        assert r["token"]["cohen_kappa"]["mean_over_pairs"] is None
        assert r["token"]["fleiss_kappa"] == {} and r["token"]["fleiss_kappa_reason"]
        assert r["token"]["krippendorff_alpha"] is None
        assert r["token"]["krippendorff_alpha_reason"] == "fewer than 2 annotators"
    assert agreement_report([])["coverage"]["documents"] == 0
    json.dumps(agreement_report([]), allow_nan=False)


def test_undefined_pairs_are_left_out_of_means():
    # claim layer: alice|bob both mark no claim -> undefined; the 5 other pairs are defined
    claim2 = S(37, 54, "CLAIM", "against")
    docs = [{"id": 1, "text": TEXT, "annotations": {
        "alice": [ORG], "bob": [ORG], "carol": [S(0, 4, "ORG"), CL], "dave": [ORG, claim2]}}]
    rep = agreement_report(docs)
    cl = rep["layers"]["claim"]["span_f1"]["exact"]
    assert cl["pairs"]["alice|bob"]["f1"] is None
    assert cl["pairs"]["alice|bob"]["f1_reason"] == "no spans in either annotation"
    assert cl["pairs"]["alice|carol"]["f1"] == 0.0
    assert cl["pairs"]["carol|dave"]["f1"] == 1.0
    assert cl["mean_over_pairs"] == pytest.approx(1 / 5)        # not 1/6, not counted as 1
    ck = rep["layers"]["claim"]["token"]["cohen_kappa"]
    assert ck["pairs"]["alice|bob"]["kappa"] is None
    defined = [p["kappa"] for p in ck["pairs"].values() if p["kappa"] is not None]
    assert len(defined) == 5
    assert ck["mean_over_pairs"] == pytest.approx(sum(defined) / 5, abs=TOL)
    ent = rep["layers"]["entity"]["span_f1"]["exact"]
    assert ent["mean_over_pairs"] == pytest.approx((1 + 0 + 1 + 0 + 1 + 0) / 6)


def test_invalid_offsets_raise():
    with pytest.raises(ValueError, match="invalid span"):
        agreement_report([{"id": 1, "text": "abc", "annotations": {"a": [S(2, 9, "ORG")]}}])
    with pytest.raises(ValueError):
        agreement_report([{"id": 1, "text": "abc", "annotations": {"a": [S(2, 2, "ORG")]}}])


def test_custom_layers_and_ignored_labels():
    docs = [{"id": 1, "text": TEXT, "annotations": {
        "alice": [ORG, PER], "bob": [ORG, S(15, 24, "ORG")]}}]
    rep = agreement_report(docs, layers={"orgs": {"ORG"}})
    assert list(rep["layers"]) == ["orgs"]
    p = rep["layers"]["orgs"]["span_f1"]["exact"]["pairs"]["alice|bob"]
    assert (p["tp"], p["fp"], p["fn"]) == (1, 1, 0)
    assert "stance" not in rep["layers"]["orgs"]


# ---------------------------------------------------------------------------
# The real fixture, perturbed
# ---------------------------------------------------------------------------

def _fixture_doc():
    rec = json.loads(FIXTURE.read_text(encoding="utf-8").splitlines()[0])
    spans = [S(s["start"], s["end"], s["label"], s.get("stance")) for s in rec["spans"]]
    return rec, spans


def _perturbed(spans):
    """Drop the ORG '메타' at 0..2, shift the PERSON at 12..19 to end at 17,
    flip the stance of the CLAIM at 362..424 from favor to against."""
    out = []
    for s in copy.deepcopy(spans):
        key = (s["start"], s["end"], s["label"])
        if key == (0, 2, "ORG"):
            continue
        if key == (12, 19, "PERSON"):
            s["end"] = 17
        if key == (362, 424, "CLAIM"):
            assert s["attributes"]["stance"] == "favor"
            s["attributes"]["stance"] = "against"
        out.append(s)
    assert len(out) == len(spans) - 1
    return out


def test_fixture_perturbed_copy():
    rec, gold = _fixture_doc()
    assert rec["text"][12:17] == "알렉산드르" and rec["text"][0:2] == "메타"
    n_ent = sum(s["label"] != "CLAIM" for s in gold)
    n_claim = sum(s["label"] == "CLAIM" for s in gold)
    assert (n_ent, n_claim) == (52, 7)
    docs = [{"id": rec["id"], "text": rec["text"],
             "annotations": {"alice": gold, "bob": _perturbed(gold)}}]
    rep = agreement_report(docs)
    ent = rep["layers"]["entity"]["span_f1"]
    ex = ent["exact"]["pairs"]["alice|bob"]
    assert (ex["tp"], ex["fp"], ex["fn"]) == (50, 1, 2)
    assert ex["f1"] == pytest.approx(100 / 103, abs=TOL)
    assert ex["per_label"]["ORG"]["f1"] == pytest.approx(66 / 67, abs=TOL)
    assert ex["per_label"]["PERSON"]["f1"] == pytest.approx(34 / 36, abs=TOL)
    assert ex["per_label"]["MONEY"]["f1"] is None
    ov = ent["overlap"]["pairs"]["alice|bob"]
    assert (ov["tp"], ov["fp"], ov["fn"]) == (51, 0, 1)
    assert ov["f1"] == pytest.approx(102 / 103, abs=TOL)
    cl = rep["layers"]["claim"]
    assert cl["span_f1"]["exact"]["pairs"]["alice|bob"]["f1"] == 1.0   # stance is not in the match
    st = cl["stance"]
    assert st["n_pairs"] == 7
    assert st["percent_agreement"] == pytest.approx(6 / 7, abs=TOL)
    # by hand: o_nn=4, o_ff=8, o_fa=o_af=1; n=14, n_c=(4,9,1): 1 - 13*2/(196-98) = 36/49
    assert st["alpha"] == pytest.approx(36 / 49, abs=TOL)
    # entity tokens: '메타가' (ORG vs O) and '왕은' (PERSON vs O) differ, everything else agrees
    ref = reference_stats(docs)
    tok = rep["layers"]["entity"]["token"]
    assert tok["cohen_kappa"]["pairs"]["alice|bob"]["kappa"] == pytest.approx(
        ref["entity"]["cohen"]["alice|bob"][0], abs=TOL)
    assert tok["krippendorff_alpha"] == pytest.approx(ref["entity"]["alpha"], abs=TOL)
    assert rep["layers"]["claim"]["token"]["krippendorff_alpha"] == 1.0
    a = naive_token_labels(rec["text"], gold, DEFAULT_LAYERS["entity"])
    b = naive_token_labels(rec["text"], _perturbed(gold), DEFAULT_LAYERS["entity"])
    toks = tokenize(rec["text"])
    diff = [rec["text"][slice(*toks[k])] for k in range(len(a)) if a[k] != b[k]]
    assert diff == ["메타가", "왕은"]
    assert rep["documents"][0]["disagreement"] == pytest.approx(1 - (102 / 103 + 1) / 2, abs=TOL)


def test_fixture_three_annotators_with_missing_and_empty():
    rec, gold = _fixture_doc()
    half = len(rec["text"]) // 2
    docs = [
        {"id": "a", "text": rec["text"], "annotations": {
            "alice": gold, "bob": _perturbed(gold), "carol": gold}},
        {"id": "b", "text": rec["text"], "annotations": {"alice": gold, "carol": []}},
        {"id": "c", "text": rec["text"][:half], "annotations": {
            "bob": [s for s in gold if s["end"] <= half]}},
    ]
    rep = agreement_report(docs)
    ref = reference_stats(docs)
    for ly in ("entity", "claim"):
        tok = rep["layers"][ly]["token"]
        assert tok["krippendorff_alpha"] == pytest.approx(ref[ly]["alpha"], abs=TOL)
        for k, (kappa, _nd, _nt) in ref[ly]["fleiss"].items():
            assert tok["fleiss_kappa"][k]["kappa"] == pytest.approx(kappa, abs=TOL)
        for key, (kappa, _n) in ref[ly]["cohen"].items():
            assert tok["cohen_kappa"]["pairs"][key]["kappa"] == pytest.approx(kappa, abs=TOL)
    st = rep["layers"]["claim"]["stance"]
    assert st["n_pairs"] == 21                    # 7 claims x 3 pairs on doc "a"
    assert st["percent_agreement"] == pytest.approx(19 / 21, abs=TOL)
    assert rep["coverage"]["with_2_or_more"] == 2
    assert rep["documents"][0]["id"] == "b"       # alice vs empty carol: disagreement 1
