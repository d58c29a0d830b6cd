"""The JSON API under /api/v1. Thin: parse, check permission, call a service, shape JSON."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import func, or_, select

from annotator.core.bodies import MAX_JSON_BYTES, check_object, read_json_body, require_body, too_large
from annotator.core.errors import BadRequest, Forbidden, Invalid, NotFound, error_body
from annotator.core.numbers import whole
from annotator.services.annotations import (
    annotation_state,
    find_annotation,
    history,
    next_document,
    progress,
    save_annotation,
)
from annotator.services.export_records import export_labels
from annotator.services.importing import import_records, parse_upload, prodigy_answers
from annotator.services.projects import project_from_body, project_json, project_labels, update_project
from annotator.services.routing import check_can_read
from annotator.services.tokenize_job import in_background, kick_for_app, paused
from annotator.services.tokens import add_words, ensure_tokens, set_words, word_list
from annotator.services.users import get_user
from annotator.storage.db import database_health
from annotator.storage.models import Annotation, Document, Project, User
from annotator.web import db
from annotator.web.security import render_markdown

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 500


def json_body(empty=None):
    """The request body as JSON (every rule of bodies.read_json_body). The raw bytes are read
    whatever the Content-Type says, so `curl -d` works; ``empty`` given: what no body means."""
    data = json_bytes()
    if not data and empty is not None:
        return empty
    return read_json_body(data)


def json_bytes() -> bytes:
    """A JSON body's bytes (not an upload's): 413 past bodies.MAX_JSON_BYTES before reading,
    and past MAX_CONTENT_LENGTH (errors.py says so)."""
    size = request.content_length
    if size is not None and size > MAX_JSON_BYTES:
        raise too_large(size)
    return request.get_data(cache=True)


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """A query value that is a whole number (numbers.whole: ASCII digits, in range), else 422."""
    raw = request.args.get(name)
    if raw is None:
        return default
    value = whole(raw, lo, hi)
    if value is None:
        raise Invalid(f"'{name}' must be a whole number from {lo} to {hi} (digits 0-9).",
                      [{"field": name, "reason": "not a whole number in range", "min": lo, "max": hi}])
    return value


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
    """Liveness and the database: reachable, and taking writes (a full disk: 503)."""
    from annotator.core import faults

    # a database that cannot be reached raises: 503 with Retry-After (errors.fault_answer)
    state = database_health(db.get_db())
    if not state["writable"]:
        free = state["free_bytes"]
        where = f" ({free} bytes free on its volume)" if free is not None else ""
        body = error_body(f"The database's disk is full{where}: reads work, writes fail.", 503,
                          [{"database": "unwritable", **state}])
        return body, 503, {"Retry-After": str(faults.RETRY_AFTER_S)}
    return {"ok": True, "database": state}


@bp.get("/me")
def me():
    return {"id": g.user.id, "username": g.user.username, "role": g.user.role}


@bp.get("/projects")
def list_projects():
    rows = db.session().execute(db.accessible_projects(g.user)).scalars().all()
    return {"items": [project_json(p) for p in rows], "total": len(rows), "page": 1}


@bp.post("/projects")
def post_project():
    db.require_lead(g.user)
    s = db.session()
    p = project_from_body(s, json_body(), creator=g.user)
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


@bp.patch("/projects/<int:pid>")
def patch_project(pid: int):
    """Name, language, guidelines and label set (projects.update_project has the rules)."""
    s = db.session()
    p = db.get_project_or_404(pid, g.user, lead=True)
    update_project(s, p, json_body())
    s.commit()
    return get_project(pid)


@bp.post("/guidelines/preview")
def preview_guidelines():
    """The guidelines' Markdown as the project page shows it (sanitised), for a live preview."""
    db.require_lead(g.user)
    body = json_body()
    check_object(body, {"guidelines": (str,)}, required=("guidelines",))
    return {"guidelines_html": render_markdown(body["guidelines"])}


@bp.get("/background")
def background():
    """What background work is doing: the latest jobs of every project (jobs.py), and a
    paused tokenizing job says why."""
    db.require_lead(g.user)
    from annotator.storage.jobs import recent

    found = paused(current_app.config["DATABASE_URL"], current_app.config["DATA_DIR"])
    return {"tokenizing": {"paused": found is not None, **(found or {})},
            "jobs": recent(db.session(), None)}


@bp.post("/projects/<int:pid>/documents")
def post_documents(pid: int):
    s = db.session()
    p = db.get_project_or_404(pid, g.user, lead=True)
    data = require_body(request.get_data(cache=True))
    fmt = request.args.get("format", "auto")
    keep = prodigy_answers(request.args.get("prodigy_answers"))
    items, notes = parse_upload(data, "the request body", ".jsonl", fmt, export_labels(s, p), keep)
    result = import_records(s, p, items, current_app.config["MAX_DOCUMENT_CHARS"])
    s.commit()
    kick_for_app(current_app)  # their tokens, in the background (tokenize_job.py)
    return jsonify({"ok": True, **result, "notes": notes}), 201


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


def doc_for_page(d: Document, project: Project | None = None) -> dict:
    """A document with its tokens. Not stored yet: under ``annotator serve`` the web process
    never loads Kiwi or spaCy for them (~0.5 GB in every worker): the background job is kicked
    and the answer says ``tokens_pending`` (the page asks again), or, with the job turned off,
    ``tokens`` stays null until ``annotator tokenize`` stores them (the page snaps to words);
    elsewhere (tests, scripts) they are computed and stored now (annotator.services.tokens)."""
    out = doc_json(d)
    if d.tokens is None and current_app.config.get("SERVING"):
        if in_background(current_app):
            kick_for_app(current_app, min_interval=5)
            out["tokens_pending"] = True
        return out
    project = project or db.session().get(Project, d.project_id)
    out["tokens"] = ensure_tokens(db.get_db(), d, project)
    return out


@bp.get("/documents/<int:did>")
def get_document(did: int):
    return doc_for_page(db.get_document_or_404(did, g.user))


@bp.get("/projects/<int:pid>/next")
def next_doc(pid: int):
    s = db.write_session()  # a GET that writes (the reservation): take the write lock up front
    p = db.get_project_or_404(pid, g.user)
    doc = next_document(s, p, g.user)
    s.commit()  # the reservation
    if doc is None:
        return "", 204
    return doc_for_page(doc, p)


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


@bp.get("/documents/<int:did>/suggestions")
def get_suggestions(did: int):
    """Spans suggested to the caller (never annotations until accepted): assist.py. Whether
    the document is shown with suggestions is recorded on the first answer (a GET that
    writes, once per document and person, like the queue's reservation)."""
    from annotator.services.assist import record_shown, shown_unrecorded, suggestions_for

    doc = db.get_document_or_404(did, g.user)
    out = suggestions_for(db.reader(), doc, g.user)
    if shown_unrecorded(db.reader(), doc, g.user, out["shown"]):
        s = db.write_session()
        record_shown(s, doc, g.user, out["shown"])
        s.commit()
    return out


@bp.post("/documents/<int:did>/suggestions/rejections")
def post_rejection(did: int):
    """The caller rejected a suggestion: not offered to them on this document again."""
    from annotator.services.assist import reject_suggestion

    doc = db.get_document_or_404(did, g.user)
    s = db.session()
    out = reject_suggestion(s, db.reader(), doc, g.user, json_body())
    s.commit()
    return out, 201


@bp.get("/projects/<int:pid>/patterns")
def get_patterns(pid: int):
    from annotator.services.assist import patterns_json

    return patterns_json(db.get_project_or_404(pid, g.user))


@bp.put("/projects/<int:pid>/patterns")
def put_patterns(pid: int):
    """The project's spaCy-style patterns, as JSON Lines (all or nothing; empty: none)."""
    from annotator.services.assist import set_patterns

    s = db.session()
    project = db.get_project_or_404(pid, g.user, lead=True)
    out = set_patterns(s, project, json_bytes())
    s.commit()
    return out


@bp.get("/projects/<int:pid>/models")
def get_models(pid: int):
    """The project's trained model versions (held-out scores, learning curve) and which one
    suggests (learn.py)."""
    from annotator.services.learn import versions

    project = db.get_project_or_404(pid, g.user, lead=True)
    return {"items": versions(db.session(), project),
            "model": (project.settings or {}).get("model")}


@bp.put("/projects/<int:pid>/model")
def put_model(pid: int):
    """Choose the version that suggests: ``{"version": N}``, or ``null`` for none."""
    from annotator.core.bodies import check_object
    from annotator.services.learn import choose_version

    s = db.session()
    project = db.get_project_or_404(pid, g.user, lead=True)
    body = json_body()
    check_object(body, {"version": (int, None)}, required=("version",))
    out = choose_version(s, project, body["version"], g.user.id)
    s.commit()
    return out


@bp.post("/projects/<int:pid>/train")
def post_train(pid: int):
    """Queue the training of the project's next model version; the server's background
    process runs it (jobs.py), its progress at GET .../jobs."""
    from annotator.storage.jobs import enqueue, job_json

    s = db.session()
    project = db.get_project_or_404(pid, g.user, lead=True)
    job = enqueue(s, "train", project.id, {}, g.user.id)
    s.commit()
    return job_json(job), 202


@bp.get("/projects/<int:pid>/jobs")
def get_jobs(pid: int):
    """The project's latest background jobs (training, predicting) and the database's
    (tokenizing every project's new documents), newest first."""
    from annotator.storage.jobs import recent

    project = db.get_project_or_404(pid, g.user, lead=True)
    return {"items": recent(db.session(), project.id)}


@bp.get("/documents/<int:did>/annotation/history")
def get_history(did: int):
    s = db.session()
    doc = db.get_document_or_404(did, g.user)
    ann = find_annotation(s, doc.id, _target_user(doc).id)
    if ann is None:
        raise NotFound("There is no saved annotation of this document for that user.")
    return {"items": history(s, ann.id), "total": ann.version, "page": 1}


# --- the project word list (names the tokenizer does not know) ------------------------

def _words_body() -> list:
    return check_object(json_body(), {"words": (list,)}, required=("words",))["words"]


@bp.get("/projects/<int:pid>/words")
def get_words(pid: int):
    return {"words": word_list(db.get_project_or_404(pid, g.user))}


@bp.post("/projects/<int:pid>/words")
def post_words(pid: int):
    """Anyone working on the project may add words (the page offers it for a misaligned span)."""
    s = db.session()
    p = db.get_project_or_404(pid, g.user)
    words, added = add_words(s, p, _words_body())
    s.commit()
    if added:
        kick_for_app(current_app)  # the project's cleared tokens, in the background
    return {"words": words, "added": added}


@bp.put("/projects/<int:pid>/words")
def put_words(pid: int):
    s = db.session()
    p = db.get_project_or_404(pid, g.user, lead=True)
    words = set_words(s, p, _words_body())
    s.commit()
    kick_for_app(current_app)
    return {"words": words}
