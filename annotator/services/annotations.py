"""Saving annotations (versioned, optimistic), reading them back, and the annotator's queue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import JSON, DateTime, and_, delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from annotator.core.bodies import check_object
from annotator.core.errors import Conflict, Invalid
from annotator.core.spans import LabelSpec, SpanErrors, validate_spans
from annotator.storage.fastsql import Statement, connection_of
from annotator.storage.models import (
    STATUSES,
    SYSTEM_ROLE,
    Annotation,
    AnnotationVersion,
    Document,
    Project,
    Reservation,
    User,
    utcnow,
)

# PUT /documents/<id>/annotation: field -> JSON types (bodies.check_object)
BODY_FIELDS = {"spans": (list,), "version": (int,), "status": (str, None),
               "skip_reason": (str, None)}


_SPANS_OF = Statement('SELECT s."start", s."end", l.name, s.attributes, s.origin, s.origin_version, '
                      "s.edited FROM spans s "
                      "JOIN labels l ON l.id = s.label_id WHERE s.annotation_id = :a "
                      'ORDER BY s."start", s."end", l.name', results={3: JSON()})
_STATE = Statement("SELECT id, version, status, skip_reason, updated_at FROM annotations "
                   "WHERE document_id = :d AND user_id = :u", results={4: DateTime(timezone=True)})


def spans_of(s, annotation_id: int) -> list[dict]:
    """The spans, each with its ``origin`` when it was accepted from a suggestion."""
    rows = _SPANS_OF.all(connection_of(s), {"a": annotation_id})
    out = []
    for a, b, lab, attrs, origin, version, edited in rows:
        span = {"start": a, "end": b, "label": lab, "attributes": attrs or {}}
        if origin:
            span["origin"] = {"source": origin, "version": version or "", "edited": bool(edited)}
        out.append(span)
    return out


def find_annotation(s: Session, document_id: int, user_id: int) -> Annotation | None:
    return s.execute(select(Annotation).where(
        Annotation.document_id == document_id, Annotation.user_id == user_id)).scalar_one_or_none()


def annotation_state(s, doc: Document, user: User) -> dict:
    """``s``: a Session or a read-only db.reader() (two statements either way)."""
    conn = connection_of(s)
    row = _STATE.first(conn, {"d": doc.id, "u": user.id})
    if row is None:
        return {"spans": [], "version": 0, "status": None}
    ann_id, version, status, skip_reason, updated_at = row
    return {"spans": spans_of(conn, ann_id), "version": version, "status": status,
            "skip_reason": skip_reason, "updated_at": updated_at.isoformat()}


def check_body(body) -> tuple[list, int, str | None, str | None]:
    check_object(body, BODY_FIELDS, required=("spans", "version"))
    version = body["version"]
    if version < 0:
        raise Invalid(f"Field 'version' must be 0 or more, not {version}.",
                      [{"field": "version", "reason": "negative"}])
    status = body.get("status")
    if status is not None and status not in STATUSES:
        raise Invalid(f"Field 'status' must be one of {', '.join(STATUSES)}, not {status!r}.",
                      [{"field": "status", "reason": "unknown status"}])
    reason = body.get("skip_reason")
    if reason is not None and len(reason) > 2000:
        raise Invalid(f"Field 'skip_reason' has {len(reason)} characters; the limit is 2000.",
                      [{"field": "skip_reason", "reason": "too long"}])
    return body["spans"], version, status, reason


def _stale(sent: int, current: int) -> Conflict:
    return Conflict(
        f"This annotation was saved elsewhere (another tab or device): you sent version {sent}, "
        f"the saved version is {current}. Reload to see it; nothing was overwritten.",
        [{"field": "version", "sent": sent, "current": current}])


# Hot path: statements compiled once per dialect and run on the driver's cursor (fastsql.py;
# profiled: SQLAlchemy's per-statement work was ~7x SQLite's own on a save).
_TS = DateTime(timezone=True)
_LABELS = Statement("SELECT id, name, kind, attributes FROM labels WHERE project_id = :p ORDER BY position",
                    results={3: JSON()})
_FIND = Statement("SELECT id, version, status FROM annotations WHERE document_id = :d AND user_id = :u")
_CREATE = Statement("INSERT INTO annotations (document_id, user_id, status, version, skip_reason, "
                    "created_at, updated_at, submitted_at) VALUES (:d, :u, :status, 1, :skip, :now, :now, :sub) "
                    "RETURNING id", now=_TS, sub=_TS)
_UPDATE = Statement("UPDATE annotations SET version = :v + 1, status = :status, skip_reason = :skip, "
                    "updated_at = :now, submitted_at = COALESCE(submitted_at, :sub) "
                    "WHERE id = :id AND version = :v", now=_TS, sub=_TS)
_DELETE_SPANS = Statement("DELETE FROM spans WHERE annotation_id = :a")
_INSERT_SPAN = Statement('INSERT INTO spans (annotation_id, "start", "end", label_id, attributes, '
                         "origin, origin_version, edited) VALUES (:a, :s, :e, :l, :attrs, :o, :ov, :ed)",
                         attrs=JSON())
_INSERT_VERSION = Statement("INSERT INTO annotation_versions (annotation_id, version, status, spans, "
                            "saved_at, saved_by) VALUES (:a, :v, :status, :spans, :now, :by)",
                            spans=JSON(), now=_TS)
_TOUCH = Statement("UPDATE reservations SET touched_at = :now WHERE document_id = :d AND user_id = :u",
                   now=_TS)
_RESERVE = Statement("INSERT INTO reservations (document_id, user_id, touched_at) VALUES (:d, :u, :now)",
                     now=_TS)
_RELEASE = Statement("DELETE FROM reservations WHERE document_id = :d AND user_id = :u")


def labels_for(s, project_id: int) -> tuple[dict[str, LabelSpec], dict[str, int]]:
    rows = _LABELS.all(connection_of(s), {"p": project_id})
    specs = {name: LabelSpec(name, kind, attrs or {}) for _id, name, kind, attrs in rows}
    return specs, {name: id_ for id_, name, _k, _a in rows}


def save_annotation(s: Session, doc: Document, user: User, body, saved_by: User | None = None,
                    reader=None) -> dict:
    """Validate everything, then write the new version and its history row; raise on any error.

    ``saved_by`` is who wrote it when that is not the owner (a lead saving the gold user's).
    ``reader`` (a read Session or db.reader()) loads the label set, so that validation happens before the
    write transaction starts (on SQLite it is the one-writer-at-a-time section).
    """
    spans_in, version, status, skip_reason = check_body(body)
    specs, label_ids = labels_for(reader or s, doc.project_id)
    try:
        spans = validate_spans(doc.text, spans_in, specs)
    except SpanErrors as e:
        raise Invalid(str(e), e.details) from None
    conn = s.connection()
    now = utcnow()
    key = {"d": doc.id, "u": user.id}
    row = _FIND.first(conn, key)
    if row is None:
        if version != 0:
            raise _stale(version, 0)
        status = status or "in_progress"
        skip = skip_reason if status == "skipped" else None
        try:
            with s.begin_nested():
                ann_id = _CREATE.first(conn, {**key, "status": status, "skip": skip, "now": now,
                                              "sub": now if status == "submitted" else None})[0]
        except (IntegrityError, conn.dialect.loaded_dbapi.IntegrityError):  # raced by another tab
            raise _stale(version, 1) from None
        new_version = 1
    else:
        ann_id, current, old_status = row
        if version != current:
            raise _stale(version, current)
        status = status or old_status
        skip = skip_reason if status == "skipped" else None
        if _UPDATE.rowcount(conn, {"id": ann_id, "v": version, "status": status, "skip": skip,
                                   "now": now, "sub": now if status == "submitted" else None}) != 1:
            raise _stale(version, version + 1)
        _DELETE_SPANS.rowcount(conn, {"a": ann_id})
        new_version = version + 1
    if spans:
        _INSERT_SPAN.many(conn, [{"a": ann_id, "s": sp["start"], "e": sp["end"],
                                  "l": label_ids[sp["label"]], "attrs": sp["attributes"],
                                  **_origin_params(sp.get("origin"))} for sp in spans])
    _INSERT_VERSION.rowcount(conn, {"a": ann_id, "v": new_version, "status": status, "spans": spans,
                                    "now": now, "by": (saved_by or user).id})
    if status == "in_progress":
        if _TOUCH.rowcount(conn, {**key, "now": now}) == 0:
            _RESERVE.rowcount(conn, {**key, "now": now})
    else:
        _RELEASE.rowcount(conn, key)
    return {"spans": spans, "version": new_version, "status": status, "skip_reason": skip,
            "updated_at": now.isoformat()}


def _origin_params(origin: dict | None) -> dict:
    if origin is None:
        return {"o": None, "ov": None, "ed": None}
    return {"o": origin["source"], "ov": origin["version"], "ed": origin["edited"]}


def history(s: Session, annotation_id: int) -> list[dict]:
    rows = s.execute(select(AnnotationVersion).where(AnnotationVersion.annotation_id == annotation_id)
                     .order_by(AnnotationVersion.version)).scalars()
    return [{"version": v.version, "status": v.status, "spans": v.spans,
             "saved_at": v.saved_at.isoformat(), "saved_by": v.saved_by} for v in rows]


# --- the queue -------------------------------------------------------------------------

def _persons():
    return select(User.id).where(User.role != SYSTEM_ROLE)


def next_document(s: Session, project: Project, user: User) -> Document | None:
    """The caller's next document, or None when their queue is empty.

    First the caller's own unfinished work (reserved or in progress). Then a honeypot when
    the caller's position is a honeypot slot (routing.honeypot_due). Otherwise a document
    the caller has not annotated whose submitted annotations plus live reservations by others
    are fewer than k, preferring documents closest to completion (then, when the project asks,
    the ones its model is least certain about); honeypots never count here.
    When none is left, honeypots the caller has not seen (if honeypots are on).
    Reservations untouched for ``project.reservation_minutes`` no longer hold a place, and
    are dropped when someone else takes the document.
    """
    from annotator.services.routing import honeypot_due, honeypots_enabled, is_honeypot_clause, unseen_honeypot

    mine_open = or_(
        exists().where(Annotation.document_id == Document.id, Annotation.user_id == user.id,
                       Annotation.status == "in_progress"),
        and_(exists().where(Reservation.document_id == Document.id, Reservation.user_id == user.id),
             ~exists().where(Annotation.document_id == Document.id, Annotation.user_id == user.id,
                             Annotation.status != "in_progress")),
    )
    doc = s.execute(select(Document).where(Document.project_id == project.id, mine_open)
                    .order_by(Document.id).limit(1)).scalar_one_or_none()
    if doc is not None:
        return doc
    now = utcnow()
    cutoff = now - timedelta(minutes=project.reservation_minutes)
    if honeypot_due(s, project, user):
        doc = unseen_honeypot(s, project, user)
        if doc is not None:
            return _reserve(s, doc, user, now, cutoff)
    submitted = (select(func.count()).select_from(Annotation)
                 .where(Annotation.document_id == Document.id, Annotation.status == "submitted",
                        Annotation.user_id.in_(_persons())).correlate(Document).scalar_subquery())
    reserved = (select(func.count()).select_from(Reservation)
                .where(Reservation.document_id == Document.id, Reservation.user_id != user.id,
                       Reservation.touched_at > cutoff).correlate(Document).scalar_subquery())
    doc = s.execute(
        select(Document).where(
            Document.project_id == project.id,
            ~exists().where(Annotation.document_id == Document.id, Annotation.user_id == user.id),
            submitted + reserved < project.k,
            ~is_honeypot_clause(),
        ).order_by(submitted.desc(), *_usefulness(project), Document.id).limit(1)
    ).scalar_one_or_none()
    if doc is None and honeypots_enabled(project):
        doc = unseen_honeypot(s, project, user)
    return None if doc is None else _reserve(s, doc, user, now, cutoff)


def _usefulness(project: Project) -> tuple:
    """With the project's ``order`` "uncertain" and a model suggesting: the documents its
    predictions are least certain about first (learn.py; unpredicted ones after them)."""
    from annotator.services.routing import team_settings
    from annotator.storage.models import ModelVersion, Prediction

    model = (project.settings or {}).get("model")
    if team_settings(project)["order"] != "uncertain" or model is None:
        return ()
    uncertainty = (select(Prediction.uncertainty)
                   .join(ModelVersion, ModelVersion.id == Prediction.model_version_id)
                   .where(ModelVersion.project_id == project.id, ModelVersion.number == model,
                          Prediction.document_id == Document.id)
                   .correlate(Document).scalar_subquery())
    return (func.coalesce(uncertainty, -1.0).desc(),)


def _reserve(s: Session, doc: Document, user: User, now, cutoff) -> Document:
    """Reserve ``doc`` for ``user``; stale reservations of others on it are released."""
    s.execute(delete(Reservation).where(
        Reservation.document_id == doc.id,
        or_(Reservation.user_id == user.id, Reservation.touched_at <= cutoff)))
    s.execute(insert(Reservation.__table__), [
        {"document_id": doc.id, "user_id": user.id, "touched_at": now}])
    return doc


def progress(s: Session, project: Project, user: User) -> dict:
    """Submitted by the caller / documents available to them, and the project's overall state."""
    total = s.execute(select(func.count()).select_from(Document)
                      .where(Document.project_id == project.id)).scalar_one()
    counts = dict(s.execute(
        select(Annotation.status, func.count()).join(Document, Document.id == Annotation.document_id)
        .where(Document.project_id == project.id, Annotation.user_id == user.id)
        .group_by(Annotation.status)).all())
    return {"documents": total, "submitted": counts.get("submitted", 0),
            "skipped": counts.get("skipped", 0), "in_progress": counts.get("in_progress", 0)}
