"""Project members over the JSON API (leads and admins who can see the project).

Thin: parse, check permission (db.get_project_or_404), call members.py, shape JSON.
"""

from __future__ import annotations

from flask import Blueprint, g

from annotator.core.errors import Invalid
from annotator.services import members
from annotator.web import db
from annotator.web.api import json_body

bp = Blueprint("api_members", __name__, url_prefix="/api/v1")


def _listing(s, project) -> dict:
    items = [members.member_json(u) for u in members.members(s, project)]
    return {"items": items, "total": len(items), "page": 1}


@bp.get("/projects/<int:pid>/members")
def list_members(pid: int):
    s = db.session()
    return _listing(s, db.get_project_or_404(pid, g.user, lead=True))


@bp.post("/projects/<int:pid>/members")
def add_members(pid: int):
    s = db.session()
    project = db.get_project_or_404(pid, g.user, lead=True)
    body = json_body()
    if not isinstance(body, dict) or "usernames" not in body:
        raise Invalid(
            'The body must be a JSON object {"usernames": [...]}.', [{"field": "usernames"}]
        )
    extra = sorted(set(body) - {"usernames"})
    if extra:
        raise Invalid(
            f"Unknown field {extra[0]!r}.", [{"field": extra[0], "reason": "unknown field"}]
        )
    added = members.add_members(s, project, body["usernames"])
    s.commit()
    return {**_listing(s, project), "added": added}


@bp.delete("/projects/<int:pid>/members/<username>")
def remove_member(pid: int, username: str):
    s = db.session()
    project = db.get_project_or_404(pid, g.user, lead=True)
    members.remove_member(s, project, username, by=g.user)
    s.commit()
    return _listing(s, project)
