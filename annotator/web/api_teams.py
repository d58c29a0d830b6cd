"""JSON API for teams: settings, agreement report, drill-down, adjudication, honeypots.

Thin: parse, check permission, call a service, shape JSON. Mounted under /api/v1 too.
"""

from __future__ import annotations

from flask import Blueprint, g, request

from annotator.core.errors import Forbidden
from annotator.services import adjudication, honeypots
from annotator.services.report import document_drilldown, load_annotations, project_report
from annotator.services.routing import team_settings, update_settings
from annotator.storage.models import Project
from annotator.web import db
from annotator.web.api import json_body

bp = Blueprint("api_teams", __name__, url_prefix="/api/v1")


def _project_of(doc) -> Project:
    return db.session().get(Project, doc.project_id)


@bp.get("/projects/<int:pid>/settings")
def get_settings(pid: int):
    return team_settings(db.get_project_or_404(pid, g.user))


@bp.patch("/projects/<int:pid>/settings")
def patch_settings(pid: int):
    s = db.session()
    p = db.get_project_or_404(pid, g.user, lead=True)
    out = update_settings(s, p, json_body())
    s.commit()
    return out


@bp.get("/projects/<int:pid>/agreement")
def agreement(pid: int):
    """The agreement report; ``?model=N``: trained version N joins as a pseudo-annotator."""
    from annotator.web.api import int_arg

    s = db.session()
    project = db.get_project_or_404(pid, g.user, lead=True)
    model = int_arg("model", 0, 1, 10**6) if request.args.get("model") else None
    return project_report(s, project, model)


@bp.get("/documents/<int:did>/diff")
def diff(did: int):
    return document_drilldown(db.session(), db.get_document_or_404(did, g.user, lead=True))


@bp.get("/documents/<int:did>/annotations")
def others(did: int):
    """Every person's submitted annotation of the document (leads; annotators when not blind)."""
    s = db.session()
    doc = db.get_document_or_404(did, g.user)
    project = _project_of(doc)
    if not g.user.is_lead and project.blind:
        raise Forbidden("This project is blind: annotators see only their own annotations.")
    anns = load_annotations(s, project, honeypots=None, document_id=doc.id).get(doc.id, {})
    items = [{"user": name, "status": "submitted", "spans": spans} for name, spans in anns.items()]
    return {"items": items, "total": len(items), "page": 1}


@bp.get("/documents/<int:did>/review")
def review(did: int):
    return adjudication.review(db.session(), db.get_document_or_404(did, g.user, lead=True))


@bp.put("/documents/<int:did>/gold")
def put_gold(did: int):
    s = db.session()
    doc = db.get_document_or_404(did, g.user, lead=True)
    out = adjudication.save_gold(s, doc, g.user, json_body())
    s.commit()
    return out


@bp.get("/projects/<int:pid>/honeypots")
def list_honeypots(pid: int):
    s = db.session()
    items = honeypots.listing(s, db.get_project_or_404(pid, g.user, lead=True))
    return {"items": items, "total": len(items), "page": 1}


@bp.get("/projects/<int:pid>/honeypots/scores")
def honeypot_scores(pid: int):
    s = db.session()
    return honeypots.scores_for(s, db.get_project_or_404(pid, g.user), g.user)


@bp.put("/documents/<int:did>/honeypot")
def put_honeypot(did: int):
    s = db.session()
    doc = db.get_document_or_404(did, g.user, lead=True)
    out = honeypots.mark(s, doc, g.user, json_body(empty={}))
    s.commit()
    return out


@bp.delete("/documents/<int:did>/honeypot")
def delete_honeypot(did: int):
    s = db.session()
    out = honeypots.unmark(s, db.get_document_or_404(did, g.user, lead=True))
    s.commit()
    return out
