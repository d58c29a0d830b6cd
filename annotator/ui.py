"""HTML pages: log-in, log-out, home. Thin views; the annotate and lead pages live in ui_annotate."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, g, redirect, render_template, request, url_for

from . import auth, db
from .annotations import progress
from .users import authenticate

bp = Blueprint("ui", __name__)


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("ui.home")
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("ui.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        user = authenticate(db.session(), request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            auth.login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        error = "Wrong username or password."
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    auth.logout_user()
    return redirect(url_for("ui.login"))


@bp.get("/healthz")
def health():
    return {"ok": True}


@bp.get("/")
def home():
    s = db.session()
    projects = s.execute(db.accessible_projects(g.user)).scalars().all()
    rows = [(p, progress(s, p, g.user)) for p in projects]
    return render_template("home.html", rows=rows)
