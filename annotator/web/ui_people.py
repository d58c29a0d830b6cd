"""Pages about people: the admin's People page and everyone's Account page (their password).

Shells: static/js/people.js talks to the JSON API (api_users.py).
"""

from __future__ import annotations

from flask import Blueprint, g, render_template

from annotator.core.errors import Forbidden

bp = Blueprint("ui_people", __name__)


@bp.get("/people")
def people():
    if not g.user.is_admin:
        raise Forbidden("Only an admin may manage users.")
    return render_template("people.html")


@bp.get("/account")
def account():
    return render_template("account.html")
