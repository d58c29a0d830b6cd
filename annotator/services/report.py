"""From the database to the plain data agreement.py reads, and the agreement report.

Only submitted annotations of persons count as annotators' work; the ``gold`` pseudo-user's
submitted annotation is a document's gold (and a honeypot's reference). Honeypots are
kept out of the agreement figures and scored on their own.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

from sqlalchemy import Text, cast, exists, select
from sqlmodel import Session

from annotator.core.anchoring import prf, score_against
from annotator.core.spans import ENTITY
from annotator.services.projects import project_labels
from annotator.services.routing import team_settings
from annotator.storage.models import (
    GOLD_USER,
    SYSTEM_ROLE,
    Annotation,
    Document,
    GoldDecision,
    Honeypot,
    Label,
    Project,
    Span,
    SuggestionExposure,
    SuggestionRejection,
    User,
)


def _agreement():
    """agreement.py, imported on first use: it brings numpy (~0.15 s of a cold start, and
    memory in every process that never computes a report)."""
    from annotator.core import agreement

    return agreement

PERSONS = "persons"
GOLD = "gold"


def project_layers(labels: list[Label]) -> dict[str, set[str]]:
    """Entities (kind ``entity``) and claims (kind ``span``) are separate layers."""
    return {"entity": {lab.name for lab in labels if lab.kind == ENTITY},
            "claim": {lab.name for lab in labels if lab.kind != ENTITY}}


def _honeypot_filter(honeypots: bool | None):
    clause = exists().where(Honeypot.document_id == Document.id)
    return [] if honeypots is None else [clause if honeypots else ~clause]


IN_BATCH = 10_000  # ids one IN (...) names


def _who(who: str):
    return User.role != SYSTEM_ROLE if who == PERSONS else User.username == GOLD_USER


def load_documents(s: Session, project: Project, honeypots: bool | None = False,
                   ids: list[int] | None = None) -> list[tuple[int, str, str]]:
    """(id, external_id, text) of the project's documents, by id."""
    where = [Document.project_id == project.id, *_honeypot_filter(honeypots)]
    query = select(Document.id, Document.external_id, Document.text).order_by(Document.id)
    if ids is None:
        return [tuple(r) for r in s.execute(query.where(*where))]
    ids, out = sorted(ids), []
    for i in range(0, len(ids), IN_BATCH):  # PostgreSQL's driver takes at most 65,535 parameters
        out += [tuple(r) for r in s.execute(query.where(*where, Document.id.in_(ids[i:i + IN_BATCH])))]
    return out


def load_annotations(s: Session, project: Project, honeypots: bool | None = False, who: str = PERSONS,
                     document_id: int | None = None) -> dict[int, dict[str, list[dict]]]:
    """{document id: {username: [spans]}} of submitted annotations; an empty list is a
    submitted "found nothing"."""
    where = [Document.project_id == project.id, Annotation.status == "submitted", _who(who),
             *_honeypot_filter(honeypots)]
    if document_id is not None:
        where.append(Document.id == document_id)
    out: dict[int, dict[str, list[dict]]] = defaultdict(dict)
    by_ann: dict[int, list[dict]] = {}
    conn = s.connection()  # plain Core rows: no ORM bookkeeping for 100,000s of spans
    for ann_id, doc_id, username in conn.execute(
            select(Annotation.id, Annotation.document_id, User.username)
            .join(User, User.id == Annotation.user_id).join(Document, Document.id == Annotation.document_id)
            .where(*where).order_by(Annotation.document_id, User.username)):
        out[doc_id][username] = by_ann[ann_id] = []
    rows = conn.execute(
        select(Span.annotation_id, Span.start, Span.end, Label.name, cast(Span.attributes, Text))
        .join(Annotation, Annotation.id == Span.annotation_id).join(User, User.id == Annotation.user_id)
        .join(Document, Document.id == Annotation.document_id).join(Label, Label.id == Span.label_id)
        .where(*where).order_by(Span.annotation_id, Span.start, Span.end, Label.name))
    parsed: dict[str, dict] = {}  # attributes repeat a lot ("{}", a few stances): parse each once
    for ann_id, start, end, label, raw in rows:
        attrs = parsed.get(raw)
        if attrs is None:
            attrs = parsed[raw] = json.loads(raw) if raw else {}
        by_ann[ann_id].append({"start": start, "end": end, "label": label, "attributes": dict(attrs)})
    return dict(out)


def agreement_docs(s: Session, project: Project) -> list[dict]:
    """Ordinary (non-honeypot) documents in agreement.py's input shape."""
    anns = load_annotations(s, project)
    return [{"id": doc_id, "external_id": ext, "text": text, "annotations": anns.get(doc_id, {})}
            for doc_id, ext, text in load_documents(s, project)]


# --- scoring against a reference (honeypots, gold): anchoring.score_against ----------------

def honeypot_scores(s: Session, project: Project) -> dict[str, dict]:
    """Per annotator: span F1 against the honeypot references, flagged below the threshold
    (exact-match F1 is the figure that is flagged)."""
    reference = {doc: anns[GOLD_USER] for doc, anns in
                 load_annotations(s, project, honeypots=True, who=GOLD).items()}
    threshold = team_settings(project)["honeypot_threshold"]
    scores = score_against(reference, load_annotations(s, project, honeypots=True))
    for entry in scores.values():
        f1 = entry["exact"]["f1"]
        entry["f1"] = f1
        entry["flagged"] = f1 is not None and f1 < threshold
    return scores


def gold_accuracy(s: Session, project: Project, annotations: dict[int, dict[str, list[dict]]] | None = None
                  ) -> dict[str, dict]:
    """Per annotator: span F1 against adjudicated gold (ordinary documents), and how many
    of the lead's span decisions went against them. ``annotations`` saves reloading what
    the caller already has (load_annotations of the ordinary documents)."""
    reference = {doc: anns[GOLD_USER] for doc, anns in load_annotations(s, project, who=GOLD).items()}
    if not reference:
        return {}
    scores = score_against(reference, load_annotations(s, project) if annotations is None else annotations)
    names = dict(s.execute(select(User.id, User.username)).all())
    overruled: dict[str, int] = defaultdict(int)
    for (ids,) in s.execute(select(GoldDecision.overruled).join(Document, Document.id == GoldDecision.document_id)
                            .where(Document.project_id == project.id)):
        for uid in ids or ():
            overruled[names.get(uid, str(uid))] += 1
    for user, entry in scores.items():
        entry["f1"] = entry["exact"]["f1"]
        entry["overruled_spans"] = overruled.get(user, 0)
    return scores


# --- per-annotator figures and the report --------------------------------------------------

def _seconds(a, b) -> float | None:
    if a is None or b is None:
        return None
    return max((b - a).total_seconds(), 0.0)


def team_progress(s: Session, project: Project) -> list[dict]:
    """The project's members and everyone else with work in it: documents submitted, in
    progress and skipped, and the median time per submitted document (first save -> submit,
    as in the report's per-annotator figures)."""
    from annotator.services.members import members

    rows = s.execute(
        select(Annotation.user_id, Annotation.status, Annotation.created_at, Annotation.submitted_at)
        .join(Document, Document.id == Annotation.document_id)
        .where(Document.project_id == project.id))
    counts: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    times: dict[int, list[float]] = defaultdict(list)
    for uid, status, created, submitted in rows:
        counts[uid][status] += 1
        if status == "submitted" and (t := _seconds(created, submitted)) is not None:
            times[uid].append(t)
    member_ids = {u.id for u in members(s, project)}
    people = s.execute(select(User).where(User.role != SYSTEM_ROLE,
                                          User.id.in_(member_ids | set(counts)))
                       .order_by(User.username)).scalars()
    return [{"username": u.username, "role": u.role, "active": u.active,
             "member": u.id in member_ids, "submitted": counts[u.id]["submitted"],
             "in_progress": counts[u.id]["in_progress"], "skipped": counts[u.id]["skipped"],
             "median_seconds": statistics.median(times[u.id]) if times[u.id] else None}
            for u in people]


def annotator_figures(s: Session, project: Project, docs: list[dict], pseudo: dict | None = None
                      ) -> dict[str, dict]:
    """Documents done, median time per document (first save -> submit), spans per document,
    honeypot F1 and accuracy against gold, for every person who worked on the project (and
    the model pseudo-annotator, marked ``pseudo``)."""
    rows = s.execute(
        select(User.username, Annotation.status, Annotation.created_at, Annotation.submitted_at)
        .join(User, User.id == Annotation.user_id).join(Document, Document.id == Annotation.document_id)
        .where(Document.project_id == project.id, User.role != SYSTEM_ROLE, *_honeypot_filter(False)))
    done: dict[str, int] = defaultdict(int)
    skipped: dict[str, int] = defaultdict(int)
    times: dict[str, list[float]] = defaultdict(list)
    users: set[str] = set()
    for user, status, created, submitted in rows:
        users.add(user)
        if status == "submitted":
            done[user] += 1
            t = _seconds(created, submitted)
            if t is not None:
                times[user].append(t)
        elif status == "skipped":
            skipped[user] += 1
    spans: dict[str, int] = defaultdict(int)
    for d in docs:
        for user, ann in d["annotations"].items():
            spans[user] += len(ann)
    honeypots = honeypot_scores(s, project)
    gold = gold_accuracy(s, project, {d["id"]: d["annotations"] for d in docs})
    out = {}
    for user in sorted(users | set(honeypots)):
        out[user] = {
            "documents_done": done[user],
            "skipped": skipped[user],
            "median_seconds": statistics.median(times[user]) if times[user] else None,
            "spans_per_document": spans[user] / done[user] if done[user] else None,
            "honeypot": honeypots.get(user),
            "gold": gold.get(user),
        }
    if pseudo is not None:
        n = pseudo["documents"]
        out[pseudo["name"]] = {"documents_done": n, "skipped": 0, "median_seconds": None,
                               "spans_per_document": spans[pseudo["name"]] / n if n else None,
                               "honeypot": None, "gold": gold.get(pseudo["name"]), "pseudo": True}
    return out


def label_summary(layers_out: dict) -> dict:
    """Per layer, mode and label: tp/fp/fn summed over all annotator pairs, and their F1
    (what the per-label bars show)."""
    out: dict = {}
    for layer, data in layers_out.items():
        out[layer] = {}
        for mode, block in data["span_f1"].items():
            sums: dict[str, list[int]] = {}
            for pair in block["pairs"].values():
                for label, c in pair["per_label"].items():
                    acc = sums.setdefault(label, [0, 0, 0])
                    acc[0] += c["tp"]
                    acc[1] += c["fp"]
                    acc[2] += c["fn"]
            out[layer][mode] = {label: prf(*c) for label, c in sorted(sums.items())}
    return out


def project_report(s: Session, project: Project, model: int | None = None) -> dict:
    """agreement.agreement_report over the ordinary documents, plus per-annotator figures.
    ``model``: a trained version joins as a read-only pseudo-annotator (learn.py) on the
    documents that people annotated and it did not learn from."""
    layers = project_layers(project_labels(s, project.id))
    docs = agreement_docs(s, project)
    pseudo = None
    if model is not None:
        from annotator.services.learn import pseudo_annotations

        name, predicted, left_out = pseudo_annotations(s, project, model)
        joined = 0
        for d in docs:
            if d["annotations"] and d["id"] in predicted:
                d["annotations"][name] = predicted[d["id"]]
                joined += 1
        pseudo = {"version": model, "name": name, "documents": joined,
                  "left_out_trained_on": left_out}
    report = _agreement().agreement_report(docs, layers)
    external = {d["id"]: d["external_id"] for d in docs}
    for entry in report["documents"]:
        entry["external_id"] = external[entry["id"]]
    report["project"] = {"id": project.id, "name": project.name, "k": project.k,
                         "layers": {name: sorted(labels) for name, labels in layers.items()},
                         "honeypot_threshold": team_settings(project)["honeypot_threshold"]}
    report["label_summary"] = label_summary(report["layers"])
    report["per_annotator"] = annotator_figures(s, project, docs, pseudo)
    report["suggestions"] = suggestion_section(s, project, layers["entity"], {d["id"]: d["text"] for d in docs})
    report["model"] = pseudo
    return report


def suggestion_section(s: Session, project: Project, entity_labels: set[str],
                       texts: dict[int, str] | None = None) -> dict:
    """What suggestions did (anchoring.suggestion_report) over every submitted annotation of
    persons, honeypots included (they are shown without suggestions): with the spans' origins,
    whether each document was shown with suggestions (suggestion_exposures; no row: without),
    the rejections and the gold."""
    from annotator.core.anchoring import suggestion_report

    where = [Document.project_id == project.id, Annotation.status == "submitted", _who(PERSONS)]
    conn = s.connection()
    anns: dict[int, dict] = {}
    for ann_id, doc_id, username, created, submitted, shown in conn.execute(
            select(Annotation.id, Annotation.document_id, User.username, Annotation.created_at,
                   Annotation.submitted_at, SuggestionExposure.shown)
            .join(User, User.id == Annotation.user_id).join(Document, Document.id == Annotation.document_id)
            .outerjoin(SuggestionExposure, (SuggestionExposure.document_id == Annotation.document_id)
                       & (SuggestionExposure.user_id == Annotation.user_id))
            .where(*where).order_by(Annotation.id)):
        anns[ann_id] = {"document": doc_id, "user": username, "shown": bool(shown),
                        "seconds": _seconds(created, submitted), "spans": []}
    for ann_id, start, end, label, origin, edited, version in conn.execute(
            select(Span.annotation_id, Span.start, Span.end, Label.name, Span.origin, Span.edited,
                   Span.origin_version)
            .join(Annotation, Annotation.id == Span.annotation_id).join(User, User.id == Annotation.user_id)
            .join(Document, Document.id == Annotation.document_id).join(Label, Label.id == Span.label_id)
            .where(*where)):
        span = {"start": start, "end": end, "label": label}
        if origin:
            span["origin"] = {"source": origin, "edited": bool(edited), "version": version}
        anns[ann_id]["spans"].append(span)
    rejections = [{"document": d, "user": u, "start": a, "end": b, "label": lab, "source": src}
                  for d, u, a, b, lab, src in conn.execute(
                      select(SuggestionRejection.document_id, User.username, SuggestionRejection.start,
                             SuggestionRejection.end, SuggestionRejection.label, SuggestionRejection.source)
                      .join(User, User.id == SuggestionRejection.user_id)
                      .join(Document, Document.id == SuggestionRejection.document_id)
                      .where(Document.project_id == project.id))]
    gold = {doc: by[GOLD_USER] for doc, by in load_annotations(s, project, honeypots=None, who=GOLD).items()}
    out = suggestion_report(anns.values(), rejections, gold, entity_labels)
    out["independence"] = _independence(s, project, list(anns.values()), texts or {})
    return out


def _independence(s: Session, project: Project, anns: list[dict], texts: dict[int, str]) -> dict:
    """anchoring.independence over the persons' submitted annotations: ``texts`` (the report's;
    honeypots' are loaded here), the gold and imported spans (``shared``: not a colleague's
    work) and what each model version learned from."""
    from annotator.core.anchoring import independence
    from annotator.services.learn import TRAINED_ON
    from annotator.storage.models import ModelVersion

    if not any((sp.get("origin") or {}).get("source") for a in anns for sp in a["spans"]):
        return independence([], {}, [], {})
    shared = [tuple(r) for r in s.connection().execute(
        select(Annotation.document_id, Span.start, Span.end, Label.name)
        .join(Annotation, Annotation.id == Span.annotation_id).join(User, User.id == Annotation.user_id)
        .join(Document, Document.id == Annotation.document_id).join(Label, Label.id == Span.label_id)
        .where(Document.project_id == project.id, Annotation.status == "submitted", User.role == SYSTEM_ROLE))]
    trained = {f"v{number}": set((scores or {}).get(TRAINED_ON) or ()) for number, scores in s.execute(
        select(ModelVersion.number, ModelVersion.scores).where(ModelVersion.project_id == project.id))}
    missing = sorted(({a["document"] for a in anns} | {r[0] for r in shared}) - set(texts))
    if missing:  # honeypots, and documents only gold or an import annotated
        texts = {**texts, **{d: t for d, _x, t in load_documents(s, project, honeypots=None, ids=missing)}}
    return independence(anns, texts, shared, trained)


def _document_diff(s: Session, doc: Document, anns: dict[str, list[dict]]) -> dict:
    """agreement.document_diff of ``anns`` with its ``summary``: distinct and disagreeing
    spans by the one definition the drill-down and the review page both show."""
    project = s.get(Project, doc.project_id)
    agreement = _agreement()
    diff = agreement.document_diff({"id": doc.id, "text": doc.text, "annotations": anns},
                                   project_layers(project_labels(s, project.id)))
    diff["summary"] = {**agreement.span_disagreements(diff["spans"]),
                       "definition": agreement.DISAGREEMENT_DEFINITION}
    return diff


def document_drilldown(s: Session, doc: Document) -> dict:
    """Every annotator's spans of one document, merged (agreement.document_diff); a span is
    ``agreed`` when every annotator of the document has it with the same attributes."""
    project = s.get(Project, doc.project_id)
    anns = load_annotations(s, project, honeypots=None, document_id=doc.id).get(doc.id, {})
    diff = _document_diff(s, doc, anns)
    diff["external_id"] = doc.external_id
    diff["text"] = doc.text
    diff["spans_by_annotator"] = anns
    diff["disagreements"] = diff["summary"]["disagreeing"]
    return diff


def disagreement_summary(s: Session, doc: Document, anns: dict[str, list[dict]]) -> dict:
    """The drill-down's counts for ``anns`` (the review page says the same)."""
    return _document_diff(s, doc, anns)["summary"]
