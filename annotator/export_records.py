"""Database -> export records, in batches (three queries per batch, no N+1).

``iter_records(s, project, source="all", include_unfinished=False)`` yields the
plain records that :mod:`annotator.exporters` consumes, one per exported
annotation, documents in id order:

``source``
    ``all``                every annotation (persons as ``annotator:NAME``, the
                           import pseudo-user as ``import``, a ``gold`` user as ``gold``)
    ``annotator:NAME``     the annotations of user NAME
    ``import``             annotations that came with imported documents
    ``gold``               annotations of the system user ``gold`` (settled gold)
    ``majority``           per document, the spans chosen by more than half of its
                           annotators (persons), compared on start, end, label and
                           attributes; one record per document with >= 1 such annotator

Skipped annotations never appear; in-progress ones only with
``include_unfinished``.  Documents nobody annotated produce no record.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterator

from sqlalchemy import select
from sqlmodel import Session

from .errors import BadRequest, NotFound
from .models import SYSTEM_ROLE, Annotation, Document, Label, Project, Span, User
from .tokens import word_list

GOLD_USER = "gold"
IMPORT_USER = "import"
BATCH = 500
SOURCES = ("all", "gold", "import", "majority")


def export_labels(s: Session, project: Project) -> list[dict]:
    rows = s.execute(select(Label).where(Label.project_id == project.id).order_by(Label.position)).scalars()
    return [{"name": lab.name, "kind": lab.kind, "attributes": lab.attributes or {}} for lab in rows]


def export_words(project: Project) -> list[str]:
    """User dictionary for the tokenizer: the project's word list."""
    return word_list(project)


def check_source(s: Session, source: str) -> str:
    """Validate ``source``; returns it.  Raises BadRequest/NotFound with one clear sentence."""
    if source in SOURCES:
        return source
    if source.startswith("annotator:") and source.split(":", 1)[1]:
        name = source.split(":", 1)[1]
        if s.execute(select(User.id).where(User.username == name)).first() is None:
            raise NotFound(f"User {name!r} does not exist.", [{"field": "source"}])
        return source
    raise BadRequest(f"'source' must be one of {', '.join(SOURCES)} or annotator:NAME, not {source!r}.",
                     [{"field": "source"}])


def _source_of(username: str, role: str) -> tuple[str, str]:
    if role == SYSTEM_ROLE:
        return (username, username)  # "import", "gold"
    return (f"annotator:{username}", username)


def iter_records(s: Session, project: Project, source: str = "all",
                 include_unfinished: bool = False, batch: int = BATCH) -> Iterator[dict]:
    check_source(s, source)
    statuses = ["submitted", "in_progress"] if include_unfinished else ["submitted"]
    user_filter = []
    if source.startswith("annotator:"):
        user_filter = [User.username == source.split(":", 1)[1]]
    elif source in ("gold", "import"):
        user_filter = [User.username == (GOLD_USER if source == "gold" else IMPORT_USER),
                       User.role == SYSTEM_ROLE]
    elif source == "majority":
        user_filter = [User.role != SYSTEM_ROLE]
    last_id = 0
    while True:
        docs = s.execute(
            select(Document.id, Document.external_id, Document.text, Document.meta, Document.tokens)
            .where(Document.project_id == project.id, Document.id > last_id)
            .order_by(Document.id).limit(batch)).all()
        if not docs:
            return
        last_id = docs[-1][0]
        ids = [d[0] for d in docs]
        anns = s.execute(
            select(Annotation.id, Annotation.document_id, Annotation.status, User.username, User.role)
            .join(User, User.id == Annotation.user_id)
            .where(Annotation.document_id.in_(ids), Annotation.status.in_(statuses), *user_filter)
            .order_by(Annotation.document_id, User.username)).all()
        spans_by_ann: dict[int, list[dict]] = {}
        if anns:
            rows = s.execute(
                select(Span.annotation_id, Span.start, Span.end, Label.name, Span.attributes)
                .join(Label, Label.id == Span.label_id)
                .where(Span.annotation_id.in_([a[0] for a in anns]))
                .order_by(Span.annotation_id, Span.start, Span.end, Label.name)).all()
            for ann_id, start, end, label, attrs in rows:
                spans_by_ann.setdefault(ann_id, []).append(
                    {"start": start, "end": end, "label": label, "attributes": attrs or {}})
        anns_by_doc: dict[int, list] = {}
        for a in anns:
            anns_by_doc.setdefault(a[1], []).append(a)
        for doc_id, external_id, text, meta, tokens in docs:
            doc_anns = anns_by_doc.get(doc_id)
            if not doc_anns:
                continue
            document = {"id": doc_id, "external_id": external_id, "text": text, "meta": meta or {}}
            if source == "majority":
                yield {"document": document, "source": "majority", "annotator": "majority",
                       "status": "submitted" if all(a[2] == "submitted" for a in doc_anns) else "in_progress",
                       "spans": majority_spans([spans_by_ann.get(a[0], []) for a in doc_anns]),
                       "tokens": tokens, "annotators": len(doc_anns)}
                continue
            for ann_id, _, status, username, role in doc_anns:
                src, who = _source_of(username, role)
                yield {"document": document, "source": src, "annotator": who, "status": status,
                       "spans": spans_by_ann.get(ann_id, []), "tokens": tokens}


def majority_spans(annotations: list[list[dict]]) -> list[dict]:
    """Spans (start, end, label, attributes) present in more than half of the annotations.

    Entity-kind majority spans cannot overlap: two overlapping spans each chosen by
    more than half of the annotators would need one annotator choosing both."""
    import json

    n = len(annotations)
    votes: Counter = Counter()
    keep: dict = {}
    for spans in annotations:
        seen = set()
        for sp in spans:
            key = (sp["start"], sp["end"], sp["label"], json.dumps(sp.get("attributes") or {}, sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            votes[key] += 1
            keep.setdefault(key, sp)
    return [keep[k] for k in sorted(votes) if votes[k] * 2 > n]

