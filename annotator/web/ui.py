"""HTML pages: log-in, log-out, home. Thin views; the annotate and lead pages live in ui_annotate."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, g, redirect, render_template, request, url_for

from annotator.core.errors import TooManyRequests
from annotator.services.annotations import progress
from annotator.services.users import authenticate
from annotator.web import auth, db, ratelimit
from annotator.web.errors import wants_json

bp = Blueprint("ui", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: browsers read "/\\host" as "//host", so no backslashes."""
    if not target or "\\" in target or any(ord(ch) < 32 for ch in target):
        return url_for("ui.home")
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("ui.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The log-in form; failures are rate-limited (ratelimit.py) before the password is checked."""
    if request.method == "GET":
        return render_template("login.html", error=None)
    s = db.session()
    username, ip = request.form.get("username", ""), ratelimit.client_address()
    wait = ratelimit.retry_after(s, username, ip)
    if wait:
        message = ratelimit.wait_message(wait)
        if wants_json():
            raise TooManyRequests(message, wait)
        return render_template("login.html", error=message), 429, {"Retry-After": str(wait)}
    user = authenticate(s, username, request.form.get("password", ""))
    if user is None:
        ratelimit.record_failure(s, username, ip)
        s.commit()
        return render_template("login.html", error="Wrong username or password."), 401
    ratelimit.clear(s, username, ip)
    s.commit()
    auth.login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout():
    auth.logout_user()
    return redirect(url_for("ui.login"))


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on every page that names no icon (error pages, JSON)."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.get("/healthz")
def health():
    return {"ok": True}


@bp.get("/")
def home():
    s = db.session()
    projects = s.execute(db.accessible_projects(g.user)).scalars().all()
    rows = [(p, progress(s, p, g.user)) for p in projects]
    return render_template("home.html", rows=rows)
