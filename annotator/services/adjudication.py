"""Adjudication: merge annotators' spans, let a lead settle them, store the result as gold.

Gold is the submitted annotation of the system user ``gold`` (versioned like any other,
validated by the same rules). Each save also rewrites the document's GoldDecision rows:
per span, whether it went into gold and whose work the decision went against.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, func, insert, select
from sqlmodel import Session

from annotator.core.bodies import check_object
from annotator.services.annotations import annotation_state, save_annotation
from annotator.services.projects import label_json, project_labels
from annotator.services.report import disagreement_summary, load_annotations, load_documents
from annotator.services.users import gold_user
from annotator.storage.models import Document, GoldDecision, Honeypot, Project, User, utcnow

GOLD_FIELDS = {"spans": (list,), "version": (int,)}  # PUT /documents/<id>/gold


def _key(span: dict) -> tuple:
    return (span["start"], span["end"], span["label"],
            json.dumps(span.get("attributes") or {}, sort_keys=True, ensure_ascii=False))


def merge(annotations: dict[str, list[dict]]) -> list[dict]:
    """Union of the annotators' spans; spans equal in offsets, label and attributes merge.

    Each candidate lists who has it, who does not, and whether it is unanimous (every
    annotator of the document has it). Sorted by (start, end, label).
    """
    users = sorted(annotations)
    merged: dict[tuple, dict] = {}
    for user in users:
        for span in annotations[user]:
            c = merged.setdefault(_key(span), {
                "start": span["start"], "end": span["end"], "label": span["label"],
                "attributes": dict(span.get("attributes") or {}), "annotators": []})
            if user not in c["annotators"]:
                c["annotators"].append(user)
    out = []
    for key in sorted(merged):
        c = merged[key]
        c["missing"] = [u for u in users if u not in c["annotators"]]
        c["unanimous"] = not c["missing"]
        # a conflict: someone lacks it, or others have the same offsets with other attributes
        c["conflict"] = not c["unanimous"] or any(
            k[:3] == key[:3] and k != key for k in merged)
        out.append(c)
    return out


def is_unanimous(annotations: dict[str, list[dict]]) -> bool:
    sets = [{_key(s) for s in spans} for spans in annotations.values()]
    return all(x == sets[0] for x in sets)


def decisions(annotations: dict[str, list[dict]], gold: list[dict]) -> list[dict]:
    """Per span (any annotator's or gold's): accepted (in gold and someone had it), added (in
    gold, nobody had it) or rejected (not in gold); overruled = whose work it went against."""
    users = sorted(annotations)
    cands = {_key(c): c for c in merge(annotations)}
    gold_keys = {_key(s): s for s in gold}
    out = []
    for key in sorted(set(cands) | set(gold_keys)):
        span = gold_keys.get(key) or cands[key]
        have = cands[key]["annotators"] if key in cands else []
        in_gold = key in gold_keys
        out.append({
            "start": span["start"], "end": span["end"], "label": span["label"],
            "attributes": dict(span.get("attributes") or {}),
            "decision": ("accepted" if have else "added") if in_gold else "rejected",
            "unanimous": bool(have) and len(have) == len(users),
            "supporters": list(have),
            "overruled": [u for u in users if u not in have] if in_gold else list(have),
        })
    return out


def _user_ids(s: Session, names) -> dict[str, int]:
    names = set(names)
    if not names:
        return {}
    return dict(s.execute(select(User.username, User.id).where(User.username.in_(names))).all())


def _write_decisions(s: Session, doc: Document, version: int, rows: list[dict], lead: User) -> None:
    ids = _user_ids(s, {u for r in rows for u in r["supporters"] + r["overruled"]})
    s.execute(delete(GoldDecision).where(GoldDecision.document_id == doc.id))
    now = utcnow()
    if rows:
        s.execute(insert(GoldDecision.__table__), [{
            "document_id": doc.id, "gold_version": version, "start": r["start"], "end": r["end"],
            "label": r["label"], "attributes": r["attributes"], "decision": r["decision"],
            "unanimous": r["unanimous"], "supporters": [ids[u] for u in r["supporters"]],
            "overruled": [ids[u] for u in r["overruled"]], "decided_by": lead.id, "decided_at": now,
        } for r in rows])


def _decisions_json(s: Session, doc: Document) -> list[dict]:
    names = dict(s.execute(select(User.id, User.username)).all())
    rows = s.execute(select(GoldDecision).where(GoldDecision.document_id == doc.id)
                     .order_by(GoldDecision.start, GoldDecision.end, GoldDecision.label)).scalars()
    return [{"start": r.start, "end": r.end, "label": r.label, "attributes": r.attributes,
             "decision": r.decision, "unanimous": r.unanimous, "gold_version": r.gold_version,
             "supporters": [names.get(i, i) for i in r.supporters],
             "overruled": [names.get(i, i) for i in r.overruled],
             "decided_by": names.get(r.decided_by), "decided_at": r.decided_at.isoformat()}
            for r in rows]


def _document_annotations(s: Session, doc: Document) -> dict[str, list[dict]]:
    project = s.get(Project, doc.project_id)
    return load_annotations(s, project, honeypots=None, document_id=doc.id).get(doc.id, {})


def review(s: Session, doc: Document) -> dict:
    """What the review page needs: text, labels, merged candidates, the proposal (unanimous
    spans pre-accepted, or the current gold), the gold state and the recorded decisions."""
    anns = _document_annotations(s, doc)
    cands = merge(anns)
    gold = annotation_state(s, doc, gold_user(s))
    proposed = gold["spans"] if gold["status"] == "submitted" else [
        {k: c[k] for k in ("start", "end", "label", "attributes")} for c in cands if c["unanimous"]]
    is_honeypot = s.execute(select(func.count()).select_from(Honeypot)
                            .where(Honeypot.document_id == doc.id)).scalar_one() > 0
    return {
        "document": {"id": doc.id, "project_id": doc.project_id, "external_id": doc.external_id,
                     "text": doc.text, "honeypot": is_honeypot},
        "labels": [label_json(lab) for lab in project_labels(s, doc.project_id)],
        "annotators": sorted(anns),
        "annotations": anns,
        "candidates": cands,
        "conflicts": sum(c["conflict"] for c in cands),
        "summary": disagreement_summary(s, doc, anns),
        "proposed": proposed,
        "gold": gold,
        "decisions": _decisions_json(s, doc),
    }


def save_gold(s: Session, doc: Document, lead: User, body) -> dict:
    """Validate and store ``{spans, version}`` as the document's gold, and its decisions."""
    check_object(body, GOLD_FIELDS, required=("spans", "version"))
    state = save_annotation(s, doc, gold_user(s), {**body, "status": "submitted"}, saved_by=lead)
    _write_decisions(s, doc, state["version"], decisions(_document_annotations(s, doc), state["spans"]), lead)
    return {**state, "decisions": _decisions_json(s, doc)}


def auto_adjudicate(s: Session, project: Project, lead: User) -> dict:
    """Accept every unanimous, complete ordinary document without gold into gold at once.

    Complete means at least max(k, 2) annotators submitted it; unanimous means they all
    submitted the same spans (attributes included; all empty is unanimous too).
    """
    have_gold = set(load_annotations(s, project, honeypots=None, who="gold"))
    anns = load_annotations(s, project)
    need = max(project.k, 2)
    counts = {"accepted": 0, "already_gold": 0, "not_unanimous": 0, "incomplete": 0}
    accepted_ids = []
    for doc_id, _ext, _text in load_documents(s, project):
        doc_anns = anns.get(doc_id, {})
        if doc_id in have_gold:
            counts["already_gold"] += 1
        elif len(doc_anns) < need:
            counts["incomplete"] += 1
        elif not is_unanimous(doc_anns):
            counts["not_unanimous"] += 1
        else:
            accepted_ids.append(doc_id)
    for doc_id in accepted_ids:
        doc = s.get(Document, doc_id)
        spans = next(iter(anns[doc_id].values()))
        save_gold(s, doc, lead, {"spans": spans, "version": 0})
        counts["accepted"] += 1
    return counts

