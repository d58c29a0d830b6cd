"""Scoring against a reference, and what suggestions did to the work (issue 12): pure
functions over plain data (no database, no Flask); report.py loads the data.

The suggestion section of the lead's report has two parts.

Per source (``dictionary``, ``patterns``, ``variants``, ``model``) and label, over the submitted annotations
of persons (never the ``import`` or ``gold`` pseudo-users):

- ``accepted``: spans saved with that origin; ``edited``: of those, changed after accepting
  (grouped under the label they were saved with); ``rejected``: rejections recorded by the
  same people on the same documents (a rejection on work never submitted is left out, like
  the spans of that work).
- ``acceptance_rate`` = accepted / (accepted + rejected); ``edit_rate`` = edited / accepted.
- ``precision_submitted`` = accepted and kept as suggested (not edited) / (accepted +
  rejected): a suggestion is right, by the people's own judgement, when they kept it.
- ``precision_gold`` = accepted spans that are in the document's gold (same start, end and
  label) / accepted spans on documents with gold.
- ``recall_submitted``: the share of submitted spans of the label that came from this source;
  ``recall_gold``: the share of gold spans of the label (once per annotation of a gold
  document) that an annotator accepted from this source.

Side by side for documents annotated with suggestions and without (control documents,
honeypots, suggestions off, or never asked): annotations, median seconds from the first save
to submitting, median entity spans per document, and entity span F1 (exact match, micro over
the annotations) against gold where a document has gold. Pre-annotation anchors people to
what was suggested (Berzak et al. 2016; Schroeder et al. 2025): precision against what they
submitted flatters suggestions, and a gap in F1 against gold between the two columns is the
part of it a lead can see.

Undefined ratios are ``None`` with a sibling ``<name>_reason``, as everywhere in the report.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

ARMS = ("with", "without")


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 from counts (None with a reason where undefined)."""
    out: dict = {"tp": tp, "fp": fp, "fn": fn}
    for name, num, den, reason in (("precision", tp, tp + fp, "no spans from the annotator"),
                                   ("recall", tp, tp + fn, "no reference spans"),
                                   ("f1", 2 * tp, 2 * tp + fp + fn, "no spans in either")):
        _ratio(out, name, num, den, reason)
    return out


def _ratio(out: dict, name: str, num: float, den: float, reason: str) -> None:
    out[name] = num / den if den else None
    if not den:
        out[f"{name}_reason"] = reason


def score_against(reference: dict[int, list[dict]], annotations: dict[int, dict[str, list[dict]]]
                  ) -> dict[str, dict]:
    """Each annotator's micro span F1 (exact and overlap, agreement.span_f1) against
    ``reference`` over the documents both have."""
    from annotator.core.agreement import span_f1  # numpy: on first use only

    totals: dict[str, dict] = defaultdict(lambda: {"documents": 0, "exact": [0, 0, 0], "overlap": [0, 0, 0]})
    for doc_id, ref in reference.items():
        for user, spans in annotations.get(doc_id, {}).items():
            t = totals[user]
            t["documents"] += 1
            for mode in ("exact", "overlap"):
                r = span_f1(ref, spans, mode)
                for k, key in enumerate(("tp", "fp", "fn")):
                    t[mode][k] += r[key]
    return {user: {"documents": t["documents"], "exact": prf(*t["exact"]), "overlap": prf(*t["overlap"])}
            for user, t in sorted(totals.items())}


def _key(span: dict) -> tuple:
    return span["start"], span["end"], span["label"]


def _source_figures(c: dict) -> dict:
    """The figures of one (source, label) from its counts."""
    out = {k: c[k] for k in ("accepted", "edited", "rejected", "accepted_on_gold", "accepted_in_gold")}
    decided = c["accepted"] + c["rejected"]
    _ratio(out, "acceptance_rate", c["accepted"], decided, "no suggestion accepted or rejected")
    _ratio(out, "edit_rate", c["edited"], c["accepted"], "none accepted")
    _ratio(out, "precision_submitted", c["accepted"] - c["edited"], decided,
           "no suggestion accepted or rejected")
    _ratio(out, "precision_gold", c["accepted_in_gold"], c["accepted_on_gold"],
           "none accepted on a document with gold")
    _ratio(out, "recall_submitted", c["accepted"], c["submitted"], "no submitted spans of the label")
    _ratio(out, "recall_gold", c["gold_found"], c["gold"], "no gold spans of the label")
    return out


def suggestion_report(annotations: Iterable[dict], rejections: Iterable[dict],
                      gold: dict[int, list[dict]], entity_labels: set[str]) -> dict[str, Any]:
    """The report's suggestion section.

    ``annotations``: submitted annotations of persons, each ``{"document", "user", "shown"
    (bool), "seconds" (first save to submit, or None), "spans": [{"start", "end", "label",
    "origin"?: {"source", "edited"}}]}``; ``rejections``: ``{"document", "user", "start",
    "end", "label", "source"}``; ``gold``: document -> its gold spans; ``entity_labels``: the
    labels suggestions can have (the span F1 and spans per document count only these).
    """
    annotations = list(annotations)
    counts: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    submitted: dict[str, int] = defaultdict(int)  # spans of a label in submitted work
    gold_spans: dict[str, int] = defaultdict(int)  # gold spans of a label, once per annotation
    arms: dict[str, dict] = {arm: {"seconds": [], "spans": [], "gold": {}} for arm in ARMS}
    for i, ann in enumerate(annotations):
        doc = ann["document"]
        ref = gold.get(doc)
        ref_keys = {_key(sp) for sp in ref or ()}
        entities = [sp for sp in ann["spans"] if sp["label"] in entity_labels]
        for sp in entities:
            submitted[sp["label"]] += 1
        if ref is not None:
            for sp in ref:
                if sp["label"] in entity_labels:
                    gold_spans[sp["label"]] += 1
        for sp in ann["spans"]:
            origin = sp.get("origin")
            if not origin:
                continue
            c = counts[origin["source"]][sp["label"]]
            c["accepted"] += 1
            c["edited"] += bool(origin.get("edited"))
            if ref is not None:
                c["accepted_on_gold"] += 1
                if _key(sp) in ref_keys:
                    c["accepted_in_gold"] += 1
                    c["gold_found"] += 1
        arm = arms["with" if ann["shown"] else "without"]
        if ann["seconds"] is not None:
            arm["seconds"].append(ann["seconds"])
        arm["spans"].append(len(entities))
        if ref is not None:
            arm["gold"][(doc, i)] = ([sp for sp in ref if sp["label"] in entity_labels], entities)
    done = {(a["document"], a["user"]) for a in annotations}
    for r in rejections:
        if (r["document"], r["user"]) in done:
            counts[r["source"]][r["label"]]["rejected"] += 1

    sources: dict[str, dict] = {}
    for source in sorted(counts):
        labels = counts[source]
        for label, c in labels.items():
            c["submitted"] = submitted[label]
            c["gold"] = gold_spans[label]
        total: dict[str, int] = defaultdict(int)
        for c in labels.values():
            for k, v in c.items():
                total[k] += v
        sources[source] = {"labels": {label: _source_figures(labels[label]) for label in sorted(labels)},
                           "all": _source_figures(total)}
    return {"sources": sources, "arms": {name: _arm_figures(arm) for name, arm in arms.items()}}


def _arm_figures(arm: dict) -> dict:
    out: dict = {"annotations": len(arm["spans"]),
                 "timed": len(arm["seconds"]),
                 "median_seconds": statistics.median(arm["seconds"]) if arm["seconds"] else None,
                 "median_spans": statistics.median(arm["spans"]) if arm["spans"] else None}
    # keyed by (document, annotation): two annotations of a document in one arm both count
    reference = {key: ref for key, (ref, _spans) in arm["gold"].items()}
    scored = score_against(reference, {key: {"arm": spans} for key, (_ref, spans) in arm["gold"].items()})
    out["gold_annotations"] = len(reference)
    out["gold"] = scored["arm"]["exact"] if scored else prf(0, 0, 0)
    return out


# --- independence: could a suggestion someone accepted have come from a colleague's work? ------

def independence(anns, texts: dict[int, str], shared: list[tuple[int, int, int, str]],
                 trained: dict[str, set[int]], most: int = 20) -> dict:
    """Of the suggestions people accepted (spans whose origin is ``dictionary`` or ``model``),
    those that only another person's annotation of the same document could explain (issue 23;
    the server's rule is that there are none):

    - a ``dictionary`` span whose (text, label) stands in no other document's submitted spans,
      nowhere in the gold or the imports (``shared``: (document, start, end, label)), and not
      twice in the person's own annotation of the document, but in a colleague's of it;
    - a ``model`` span of a version that learned from the document (``trained``: its version
      name, e.g. "v2" -> the documents it learned from).

    ``anns``: {"document", "user", "spans": [{"start", "end", "label", "origin"?}]}. Returns
    ``{"checked", "from_others", "documents", "examples"}`` (at most ``most`` examples)."""
    support: dict[tuple, Counter] = {}

    def key_of(doc, sp):
        return texts.get(doc, "")[sp["start"]:sp["end"]], sp["label"]

    anns = list(anns)
    for a in anns:
        for sp in a["spans"]:
            support.setdefault(key_of(a["document"], sp), Counter())[(a["document"], a["user"])] += 1
    for doc, start, end, label in shared:
        support.setdefault(key_of(doc, {"start": start, "end": end, "label": label}), Counter())[(doc, None)] += 1
    checked, found = 0, []
    for a in anns:
        doc, user = a["document"], a["user"]
        for sp in a["spans"]:
            source = (sp.get("origin") or {}).get("source")
            if source == "dictionary":
                checked += 1
                by = support.get(key_of(doc, sp), Counter())
                own = by.get((doc, user), 0) > 1
                elsewhere = any(d != doc or u is None for d, u in by)
                colleague = any(d == doc and u not in (user, None) for d, u in by)
                if colleague and not own and not elsewhere:
                    found.append({"document": doc, "user": user, **{k: sp[k] for k in ("start", "end", "label")},
                                  "source": source})
            elif source == "model":
                checked += 1
                if doc in trained.get((sp.get("origin") or {}).get("version") or "", ()):
                    found.append({"document": doc, "user": user, **{k: sp[k] for k in ("start", "end", "label")},
                                  "source": source})
    return {"checked": checked, "from_others": len(found),
            "documents": len({f["document"] for f in found}), "examples": found[:most]}
