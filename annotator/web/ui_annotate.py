"""HTML pages of the annotator's work: the annotate page, and the lead's project page with import.

The annotate page is a shell: static/js/annotate/page.js loads the project, the document and the
annotation from the JSON API and saves through it. Nothing here renders span data.
"""

from __future__ import annotations

from pathlib import PurePath

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select

from annotator.core.errors import AnnotatorError
from annotator.services.export_records import export_labels
from annotator.services.importing import import_records, read_files
from annotator.services.projects import project_labels
from annotator.services.report import team_progress
from annotator.services.tokenize_job import kick_for_app, paused
from annotator.storage.models import Document
from annotator.web import db

bp = Blueprint("annotate", __name__)


def _annotate_page(project, document_id: int | None):
    s = db.session()
    return render_template("annotate.html", project=project, labels=project_labels(s, project.id),
                           document_id=document_id)


@bp.get("/projects/<int:pid>/annotate")
def annotate_next(pid: int):
    """The caller's next document (chosen by the queue in the browser, via /api/v1/.../next)."""
    return _annotate_page(db.get_project_or_404(pid, g.user), None)


@bp.get("/projects/<int:pid>/documents/<int:did>/annotate")
def annotate_document(pid: int, did: int):
    project = db.get_project_or_404(pid, g.user)
    doc = db.get_document_or_404(did, g.user)
    if doc.project_id != project.id:
        return redirect(url_for("annotate.annotate_document", pid=doc.project_id, did=doc.id))
    return _annotate_page(project, doc.id)


def _project_page(project, *, message=None, error=None, details=None, status=200):
    s = db.session()
    total = s.execute(select(func.count()).select_from(Document)
                      .where(Document.project_id == project.id)).scalar_one()
    conf = current_app.config
    return render_template("project.html", project=project, labels=project_labels(s, project.id),
                           total=total, users=team_progress(s, project), message=message,
                           error=error, details=details or [],
                           paused=paused(conf["DATABASE_URL"], conf["DATA_DIR"])), status


@bp.get("/projects/<int:pid>")
def project_page(pid: int):
    project = db.get_project_or_404(pid, g.user)
    if not g.user.is_lead:
        return redirect(url_for("annotate.annotate_next", pid=pid))
    message = request.args.get("imported") and f"Imported {request.args['imported']} documents."
    notes = get_flashed_messages(category_filter=["import-note"])
    return _project_page(project, message=" ".join([message, *notes]) if message else None)


@bp.post("/projects/<int:pid>/import")
def import_files(pid: int):
    """Upload .txt (one document each), .jsonl/.json or .csv files; all of them or nothing."""
    project = db.get_project_or_404(pid, g.user, lead=True)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if not files:
        return _project_page(project, error="Choose at least one .txt, .jsonl or .csv file.", status=400)
    try:
        s = db.session()
        items, notes = read_files([(PurePath(f.filename).name, f.read()) for f in files],
                                  labels=export_labels(s, project))
        result = import_records(s, project, items, current_app.config["MAX_DOCUMENT_CHARS"])
        s.commit()
        kick_for_app(current_app)
    except AnnotatorError as e:
        db.session().rollback()
        return _project_page(project, error=e.message, details=e.details, status=e.status)
    for note in notes:
        flash(note, "import-note")
    return redirect(url_for("annotate.project_page", pid=pid, imported=result["imported"]))
