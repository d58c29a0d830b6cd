"""People over the JSON API: admins add users (a one-time password is shown once), reset a
password, change a role, deactivate and reactivate; everyone changes their own password.

Thin: parse, check permission, call users.py, shape JSON.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from annotator.core.bodies import check_object
from annotator.core.errors import Forbidden
from annotator.services import users
from annotator.storage.models import User
from annotator.web import auth, db
from annotator.web.api import json_body

bp = Blueprint("api_users", __name__, url_prefix="/api/v1")


def _require_admin() -> None:
    if not g.user.is_admin:
        raise Forbidden("Only an admin may manage users.")


@bp.get("/users")
def list_users():
    _require_admin()
    items = [users.person_json(u) for u in users.people(db.session())]
    return {"items": items, "total": len(items), "page": 1}


@bp.post("/users")
def post_user():
    _require_admin()
    body = json_body()
    check_object(body, {"username": (str,), "role": (str,)}, required=("username", "role"))
    s = db.session()
    user, password = users.add_person(s, body["username"], body["role"])
    s.commit()
    return jsonify({**users.person_json(user), "password": password}), 201


@bp.patch("/users/<username>")
def patch_user(username: str):
    _require_admin()
    body = json_body()
    check_object(body, {"active": (bool,), "role": (str,)})
    s = db.session()
    user = users.get_person(s, username)
    me = s.get(User, g.user.id)
    if "role" in body:
        users.set_role(s, user, body["role"], by=me)
    if "active" in body:
        users.set_active(s, user, body["active"], by=me)
    s.commit()
    return users.person_json(user)


@bp.post("/users/<username>/password")
def reset_password(username: str):
    """A new one-time password for USERNAME; their sessions end."""
    _require_admin()
    s = db.session()
    user = users.get_person(s, username)
    password = users.reset_password(s, user)
    s.commit()
    if user.id == g.user.id and g.auth == "cookie":
        auth.login_user(user)  # this session goes on; the others end
    return {"username": user.username, "password": password}


@bp.post("/me/password")
def change_my_password():
    """The caller's own new password, given the current one; their other sessions end."""
    body = json_body()
    check_object(body, {"current": (str,), "new": (str,)}, required=("current", "new"))
    s = db.session()
    me = s.get(User, g.user.id)
    users.change_own_password(s, me, body["current"], body["new"])
    s.commit()
    if g.auth == "cookie":
        auth.login_user(me)  # this session goes on with the new epoch; the others end
    return {"ok": True, "username": me.username}
