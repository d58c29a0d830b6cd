"""The JSON API under /api/v1. Thin: parse, check permission, call a service, shape JSON."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import func, or_, select

from . import db
from .annotations import annotation_state, find_annotation, history, next_document, progress, save_annotation
from .errors import BadRequest, Forbidden, Invalid, NotFound
from .importing import import_records, parse_json_upload
from .models import Annotation, Document, Project, User
from .projects import create_project, project_json, project_labels
from .routing import check_can_read
from .security import render_markdown
from .tokenize_job import kick_for_app
from .users import get_user

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 500


def json_body():
    if not request.data:
        raise BadRequest("The request body is empty; send JSON.", [{"field": "body"}])
    try:
        return json.loads(request.get_data(as_text=True))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"The request body is not valid JSON: {e}.", [{"field": "body"}]) from None


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f"'{name}' must be a whole number from {lo} to {hi}.", [{"field": name}])
    return int(raw)


def doc_json(d: Document, full: bool = True) -> dict:
    out = {"id": d.id, "project_id": d.project_id, "external_id": d.external_id, "meta": d.meta,
           "content_hash": d.content_hash, "length": len(d.text)}
    if full:
        out["text"] = d.text
        out["tokens"] = d.tokens
    else:
        out["preview"] = d.text[:160]
    return out


@bp.get("/health")
def health():
    return {"ok": True}


@bp.get("/me")
def me():
    return {"id": g.user.id, "username": g.user.username, "role": g.user.role}


@bp.get("/projects")
def list_projects():
    from .models import Project

    rows = db.session().execute(select(Project).order_by(Project.id)).scalars().all()
    return {"items": [project_json(p) for p in rows], "total": len(rows), "page": 1}


@bp.post("/projects")
def post_project():
    db.require_lead(g.user)
    body = json_body()
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object.", [{"field": "body"}])
    allowed = {"name", "language", "guidelines", "k", "labels", "label_set"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise Invalid(f"Unknown field {extra[0]!r}.", [{"field": extra[0], "reason": "unknown field"}])
    s = db.session()
    p = create_project(s, body.get("name", ""), language=body.get("language", "en"),
                       guidelines=body.get("guidelines", ""), k=body.get("k", 2),
                       label_set=body.get("labels") or body.get("label_set", "news"))
    s.commit()
    return jsonify(project_json(p, project_labels(s, p.id))), 201


@bp.get("/projects/<int:pid>")
def get_project(pid: int):
    s = db.session()
    p = db.get_project_or_404(pid, g.user)
    out = project_json(p, project_labels(s, p.id))
    out["guidelines"] = p.guidelines
    out["guidelines_html"] = render_markdown(p.guidelines)
    out["progress"] = progress(s, p, g.user)
    return out


@bp.post("/projects/<int:pid>/documents")
def post_documents(pid: int):
    db.require_lead(g.user)
    s = db.session()
    p = db.get_project_or_404(pid, g.user)
    result = import_records(s, p, parse_json_upload(request.get_data(), "the request body"),
                            current_app.config["MAX_DOCUMENT_CHARS"])
    s.commit()
    kick_for_app(current_app)  # tokenizing happens in the background (tokenize_job.py)
    return jsonify({"ok": True, **result}), 201


@bp.get("/projects/<int:pid>/documents")
def list_documents(pid: int):
    s = db.session()
    p = db.get_project_or_404(pid, g.user)
    page = int_arg("page", 1, 1, 10**9)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    q = request.args.get("q", "").strip()
    where = [Document.project_id == p.id]
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Document.external_id.like(like, escape="\\"), Document.text.like(like, escape="\\")))
    submitted = (select(func.count()).select_from(Annotation)
                 .where(Annotation.document_id == Document.id, Annotation.status == "submitted")
                 .correlate(Document).scalar_subquery())
    status = request.args.get("status")
    if status == "new":
        where.append(submitted == 0)
    elif status == "partial":
        where.append(submitted > 0)
        where.append(submitted < p.k)
    elif status == "complete":
        where.append(submitted >= p.k)
    elif status:
        raise BadRequest("'status' must be one of new, partial, complete.", [{"field": "status"}])
    total = s.execute(select(func.count()).select_from(Document).where(*where)).scalar_one()
    rows = s.execute(select(Document, submitted).where(*where).order_by(Document.id)
                     .offset((page - 1) * per_page).limit(per_page)).all()
    items = []
    for d, n in rows:
        item = doc_json(d, full=False)
        item["submitted"] = n
        items.append(item)
    return {"items": items, "total": total, "page": page, "per_page": per_page}


@bp.get("/documents/<int:did>")
def get_document(did: int):
    doc = db.get_document_or_404(did, g.user)
    if doc.tokens is None:
        kick_for_app(current_app, min_interval=10)  # opened before its tokens were stored
    return doc_json(doc)


@bp.get("/projects/<int:pid>/next")
def next_doc(pid: int):
    s = db.write_session()  # a GET that writes (the reservation): take the write lock up front
    p = db.get_project_or_404(pid, g.user)
    doc = next_document(s, p, g.user)
    s.commit()  # the reservation
    if doc is None:
        return "", 204
    return doc_json(doc)


def _target_user(doc: Document) -> User:
    """The caller, or the user named by ?user= when the caller may read their work
    (leads always; annotators only others' submitted work, and only when not blind)."""
    name = request.args.get("user")
    if not name or name == g.user.username:
        return g.user
    s = db.session()
    project = s.get(Project, doc.project_id)
    if not g.user.is_lead and project.blind:
        raise Forbidden("Annotators may read only their own annotations.")
    owner = get_user(s, name)
    check_can_read(g.user, project, owner, find_annotation(s, doc.id, owner.id))
    return owner


@bp.get("/documents/<int:did>/annotation")
def get_annotation(did: int):
    doc = db.get_document_or_404(did, g.user)
    return annotation_state(db.reader(), doc, _target_user(doc))


@bp.put("/documents/<int:did>/annotation")
def put_annotation(did: int):
    s = db.session()
    doc = db.get_document_or_404(did, g.user)
    if request.args.get("user") not in (None, g.user.username):
        raise Forbidden("You can save only your own annotation.")
    out = save_annotation(s, doc, g.user, json_body(), reader=db.reader())
    s.commit()
    return out


@bp.get("/documents/<int:did>/annotation/history")
def get_history(did: int):
    s = db.session()
    doc = db.get_document_or_404(did, g.user)
    ann = find_annotation(s, doc.id, _target_user(doc).id)
    if ann is None:
        raise NotFound("There is no saved annotation of this document for that user.")
    return {"items": history(s, ann.id), "total": ann.version, "page": 1}
