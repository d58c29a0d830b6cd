"""Who is calling: session cookie (+ CSRF on state changes) or a Bearer API token.

Log-in is required everywhere except the endpoints in PUBLIC_ENDPOINTS.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, g, redirect, request, session, url_for

from annotator.core.errors import Forbidden, Unauthorized
from annotator.services.users import end_sessions, session_user, user_for_token
from annotator.storage.models import User
from annotator.web import db

PUBLIC_ENDPOINTS = {"ui.login", "static", "api.health", "ui.health", "ui.favicon"}
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(sent), expected):
        raise Forbidden("The CSRF token is missing or wrong; reload the page and try again.",
                        [{"field": "csrf_token"}])


def login_user(user: User) -> None:
    session.clear()
    session["uid"] = user.id
    session["epoch"] = user.session_epoch  # see _load_user
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True


def logout_user() -> None:
    """Forget the cookie here, and end the session on the server: a copy of the cookie (and
    every other session of the same user) stops working."""
    if g.get("user") is not None and g.auth == "cookie":
        s = db.session()
        end_sessions(s, g.user.id)
        s.commit()
    session.clear()


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def _load_user():
        g.user = None
        g.auth = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            user = user_for_token(db.reader(), header[7:].strip())
            if user is None:
                raise Unauthorized("The API token is invalid or revoked.")
            g.user, g.auth = user, "token"
        elif "uid" in session:
            # One look-up: the user must be active and the cookie's epoch current (a cookie
            # from before the epochs counts as 0); logging out or a new password moves it on.
            user = session_user(db.reader(), session["uid"], session.get("epoch", 0))
            if user is not None:
                g.user, g.auth = user, "cookie"
            else:
                session.clear()
        # Cookie-authenticated (or anonymous form) state changes need the CSRF token.
        if request.method not in SAFE_METHODS and g.auth != "token":
            _check_csrf()
        if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if request.path.startswith("/api/") or request.endpoint is None:
                if request.endpoint is None:
                    return None  # let the 404 handler answer
                raise Unauthorized("Log in first, or send 'Authorization: Bearer <token>'.")
            return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
        return None
