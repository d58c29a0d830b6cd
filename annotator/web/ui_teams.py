"""Lead pages for teams: the agreement report and the adjudication (review) page.

The pages are shells; static/js/report.js and static/js/adjudicate.js fetch the JSON API.
"""

from __future__ import annotations

from flask import Blueprint, g, render_template

from annotator.web import db

bp = Blueprint("ui_teams", __name__)


@bp.get("/projects/<int:pid>/report")
def report(pid: int):
    from annotator.services.learn import versions

    project = db.get_project_or_404(pid, g.user, lead=True)
    return render_template("report.html", project=project,
                           versions=[v["number"] for v in versions(db.session(), project)])


@bp.get("/projects/<int:pid>/export")
def export_page(pid: int):
    """The export page: options, the report before downloading, the download, and the command
    that trains on it (static/js/export.js over GET /api/v1/projects/<pid>/export)."""
    from annotator.services.export_records import TRAINING_SOURCE
    from annotator.services.members import members

    project = db.get_project_or_404(pid, g.user, lead=True)
    people = [u.username for u in members(db.session(), project)]
    return render_template("export.html", project=project, people=people,
                           default_source=TRAINING_SOURCE)


@bp.get("/documents/<int:did>/adjudicate")
def adjudicate(did: int):
    doc = db.get_document_or_404(did, g.user, lead=True)
    return render_template("adjudicate.html", doc=doc,
                           project=db.get_project_or_404(doc.project_id, g.user))
