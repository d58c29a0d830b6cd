"""The lead's workspace pages: create and edit a project (with its label set), and its team
settings. Shells: static/js/project_form.js and static/js/settings.js use the JSON API, whose
rules (projects.py, routing.py) are the only ones."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from annotator.services.projects import LABEL_SETS
from annotator.web import db

bp = Blueprint("ui_lead", __name__)


@bp.get("/projects/new")
def new_project():
    db.require_lead(g.user)
    return render_template("project_form.html", project=None, labels=LABEL_SETS["news"])


@bp.get("/projects/<int:pid>/edit")
def edit_project(pid: int):
    project = db.get_project_or_404(pid, g.user, lead=True)
    return render_template("project_form.html", project=project, labels=None)


@bp.get("/projects/<int:pid>/settings")
def settings(pid: int):
    project = db.get_project_or_404(pid, g.user, lead=True)
    return render_template("settings.html", project=project)
