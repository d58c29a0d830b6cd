"""Honeypots (gold checks): documents whose reference annotation is their gold annotation.

They are served to every annotator at the project's honeypot rate (routing.py), look like
any other document, never count toward k and stay out of the agreement figures. Each
annotator's span F1 against the references is computed in report.honeypot_scores.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlmodel import Session

from annotator.core.bodies import check_object
from annotator.core.errors import Forbidden, Invalid
from annotator.services.annotations import annotation_state, save_annotation
from annotator.services.report import honeypot_scores
from annotator.services.routing import team_settings
from annotator.services.users import gold_user
from annotator.storage.models import Annotation, Document, Honeypot, Project, Span, User

MARK_FIELDS = {"spans": (list,), "version": (int,)}  # PUT /documents/<id>/honeypot


def mark(s: Session, doc: Document, lead: User, body: dict) -> dict:
    """Make ``doc`` a honeypot. With ``{spans, version}`` the reference (gold) is saved first;
    with ``{}``, the document must already have a gold annotation."""
    given = isinstance(body, dict) and ("spans" in body or "version" in body)
    check_object(body, MARK_FIELDS, required=("spans", "version") if given else (),
                 what="The body ({} or {'spans', 'version'})")
    gold = gold_user(s)
    if "spans" in body or "version" in body:
        save_annotation(s, doc, gold, {"spans": body["spans"], "version": body["version"],
                                       "status": "submitted"}, saved_by=lead)
    reference = annotation_state(s, doc, gold)
    if reference["status"] != "submitted":
        raise Invalid("A honeypot needs a reference: send {'spans', 'version'} or adjudicate the "
                      "document first.", [{"field": "spans", "reason": "no gold annotation"}])
    exists = s.execute(select(Honeypot).where(Honeypot.document_id == doc.id)).scalar_one_or_none()
    if exists is None:
        s.add(Honeypot(project_id=doc.project_id, document_id=doc.id, created_by=lead.id))
        s.flush()
    return {"document_id": doc.id, "external_id": doc.external_id, "honeypot": True,
            "reference": reference}


def unmark(s: Session, doc: Document) -> dict:
    """Turn a honeypot back into an ordinary document (its gold annotation stays)."""
    s.execute(delete(Honeypot).where(Honeypot.document_id == doc.id))
    return {"document_id": doc.id, "external_id": doc.external_id, "honeypot": False}


def listing(s: Session, project: Project) -> list[dict]:
    gold = gold_user(s)
    spans = (select(func.count()).select_from(Span).join(Annotation, Annotation.id == Span.annotation_id)
             .where(Annotation.document_id == Document.id, Annotation.user_id == gold.id)
             .correlate(Document).scalar_subquery())
    rows = s.execute(select(Document.id, Document.external_id, spans)
                     .join(Honeypot, Honeypot.document_id == Document.id)
                     .where(Honeypot.project_id == project.id).order_by(Document.id)).all()
    return [{"document_id": i, "external_id": ext, "reference_spans": n} for i, ext, n in rows]


def scores_for(s: Session, project: Project, viewer: User) -> dict:
    """Leads see every annotator's honeypot F1; an annotator sees their own, and only when
    the lead allows it (``honeypot_feedback``). Never which documents were honeypots."""
    settings = team_settings(project)
    scores = honeypot_scores(s, project)
    if not viewer.is_lead:
        if not settings["honeypot_feedback"]:
            raise Forbidden("The lead has not shared gold-check scores in this project.")
        scores = {viewer.username: scores[viewer.username]} if viewer.username in scores else {}
    return {"threshold": settings["honeypot_threshold"], "annotators": scores}
