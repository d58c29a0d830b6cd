"""The authorization matrix: every endpoint and page of the app x every kind of caller, each
with its exact status code, and every cookie-authenticated state change refused without CSRF.

Callers: anonymous; an annotator and a lead who are members of project P; an annotator and a
lead who are members of another project Q only (cross-project); an admin (member of nothing:
admins see everything). Ids in the paths belong to P. API rows run twice, with the session
cookie (+ X-CSRF-Token, as the browser sends) and with a Bearer token.

Adding an endpoint: add one row to MATRIX (the completeness test names missing rows). A row
whose request needs a body, a query or a set-up step also gets an entry in REQUESTS.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import shutil

import pytest
from conftest import PASSWORD, PG_URL, Helper, reset_postgres

from annotator import create_app
from annotator.storage.db import migrate

ROLES = ("anon", "ann", "ann_x", "lead", "lead_x", "admin")

# Common rows, in ROLES order.
ANYONE = (200,) * 6
LOGGED_IN = (401, 200, 200, 200, 200, 200)
MEMBERS = (401, 200, 404, 200, 404, 200)  # members and admins; others 404, as if it did not exist
LEADS = (401, 403, 404, 200, 404, 200)  # lead-only: a member annotator 403, non-members 404
LEADS_201 = (401, 403, 404, 201, 404, 201)
MEMBERS_201 = (401, 201, 404, 201, 404, 201)
PAGE_MEMBERS = (302, 200, 404, 200, 404, 200)  # pages send the anonymous to /login
PAGE_LEADS = (302, 403, 404, 200, 404, 200)
ADMINS = (401, 403, 403, 403, 403, 200)

MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    # pages
    ("GET", "/"): (302, 200, 200, 200, 200, 200),
    ("GET", "/healthz"): ANYONE,
    ("GET", "/login"): ANYONE,
    ("POST", "/login"): (401, 302, 302, 302, 302, 302),  # anonymous: a wrong password
    ("POST", "/logout"): (302,) * 6,
    ("GET", "/static/<path:filename>"): ANYONE,
    ("GET", "/projects/<int:pid>"): (302, 302, 404, 200, 404, 200),  # annotators: on to annotate
    ("GET", "/projects/<int:pid>/annotate"): PAGE_MEMBERS,
    ("GET", "/projects/<int:pid>/documents/<int:did>/annotate"): PAGE_MEMBERS,
    ("POST", "/projects/<int:pid>/import"): (302, 403, 404, 302, 404, 302),  # 302: imported
    ("GET", "/projects/<int:pid>/report"): PAGE_LEADS,
    ("GET", "/projects/<int:pid>/export"): PAGE_LEADS,
    ("GET", "/projects/new"): (302, 403, 403, 200, 200, 200),
    ("GET", "/projects/<int:pid>/edit"): PAGE_LEADS,
    ("GET", "/projects/<int:pid>/settings"): PAGE_LEADS,
    ("GET", "/documents/<int:did>/adjudicate"): PAGE_LEADS,
    # JSON API
    ("GET", "/api/v1/health"): ANYONE,
    ("GET", "/api/v1/me"): LOGGED_IN,
    ("GET", "/api/v1/background"): (401, 403, 403, 200, 200, 200),  # leads and admins
    ("GET", "/api/v1/projects"): LOGGED_IN,
    ("POST", "/api/v1/projects"): (401, 403, 403, 201, 201, 201),
    ("GET", "/api/v1/projects/<int:pid>"): MEMBERS,
    ("PATCH", "/api/v1/projects/<int:pid>"): LEADS,
    ("POST", "/api/v1/guidelines/preview"): (401, 403, 403, 200, 200, 200),
    ("POST", "/api/v1/projects/<int:pid>/documents"): LEADS_201,
    ("GET", "/api/v1/projects/<int:pid>/documents"): MEMBERS,
    ("GET", "/api/v1/projects/<int:pid>/next"): MEMBERS,
    ("GET", "/api/v1/projects/<int:pid>/words"): MEMBERS,
    ("POST", "/api/v1/projects/<int:pid>/words"): MEMBERS,  # annotators may add words
    ("PUT", "/api/v1/projects/<int:pid>/words"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/patterns"): MEMBERS,
    ("PUT", "/api/v1/projects/<int:pid>/patterns"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/models"): LEADS,
    ("PUT", "/api/v1/projects/<int:pid>/model"): LEADS,
    ("POST", "/api/v1/projects/<int:pid>/train"): (401, 403, 404, 202, 404, 202),
    ("GET", "/api/v1/projects/<int:pid>/jobs"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/settings"): MEMBERS,
    ("PATCH", "/api/v1/projects/<int:pid>/settings"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/agreement"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/export"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/honeypots"): LEADS,
    ("GET", "/api/v1/projects/<int:pid>/honeypots/scores"): LEADS,  # honeypot_feedback is off
    ("GET", "/api/v1/projects/<int:pid>/members"): LEADS,
    ("POST", "/api/v1/projects/<int:pid>/members"): LEADS,
    ("DELETE", "/api/v1/projects/<int:pid>/members/<username>"): LEADS,
    ("GET", "/api/v1/documents/<int:did>"): MEMBERS,
    ("GET", "/api/v1/documents/<int:did>/annotation"): MEMBERS,
    ("PUT", "/api/v1/documents/<int:did>/annotation"): MEMBERS,
    ("GET", "/api/v1/documents/<int:did>/annotation/history"): MEMBERS,  # ?user=ann
    ("GET", "/api/v1/documents/<int:did>/suggestions"): MEMBERS,
    ("POST", "/api/v1/documents/<int:did>/suggestions/rejections"): MEMBERS_201,
    ("GET", "/api/v1/documents/<int:did>/annotations"): LEADS,  # the project is blind
    ("GET", "/api/v1/documents/<int:did>/diff"): LEADS,
    ("GET", "/api/v1/documents/<int:did>/review"): LEADS,
    ("PUT", "/api/v1/documents/<int:did>/gold"): LEADS,
    ("PUT", "/api/v1/documents/<int:did>/honeypot"): LEADS,
    ("DELETE", "/api/v1/documents/<int:did>/honeypot"): LEADS,
    # people (admins) and one's own account (everyone)
    ("GET", "/favicon.ico"): (301,) * 6,
    ("GET", "/people"): (302, 403, 403, 403, 403, 200),
    ("GET", "/account"): (302, 200, 200, 200, 200, 200),
    ("GET", "/api/v1/users"): ADMINS,
    ("POST", "/api/v1/users"): (401, 403, 403, 403, 403, 201),
    ("PATCH", "/api/v1/users/<username>"): ADMINS,
    ("POST", "/api/v1/users/<username>/password"): ADMINS,
    ("POST", "/api/v1/me/password"): (401, 422, 422, 422, 422, 422),  # the current one is wrong
}

_counter = itertools.count(1)


def _version(world, username: str) -> int:
    from annotator.services.annotations import find_annotation

    with world.h.session() as s:
        ann = find_annotation(s, world.doc.id, world.users[username].id)
        return ann.version if ann else 0


def _import_file(world, role):
    n = next(_counter)
    line = json.dumps({"id": f"import-{n}", "text": f"Imported text {n}."}) + "\n"
    return {"data": {"files": (io.BytesIO(line.encode()), f"m{n}.jsonl")},
            "content_type": "multipart/form-data"}


def _ensure_extra_member(world):
    world.h.add_members(world.p, [world.users["extra"]])


# (method, rule) -> function(world, role) returning keyword arguments for the test client
# (json=, data=, query_string=, ...); it may also set up state first. Rows without an entry
# send no body.
REQUESTS = {
    ("POST", "/login"): lambda w, role: {"data": {
        "username": "ann" if role == "anon" else w.users[role].username,
        "password": "wrong password" if role == "anon" else PASSWORD}},
    ("POST", "/projects/<int:pid>/import"): _import_file,
    ("POST", "/api/v1/projects"): lambda w, role: {"json": {"name": f"New {next(_counter)}"}},
    ("POST", "/api/v1/projects/<int:pid>/documents"): lambda w, role: {
        "data": json.dumps([{"id": f"api-{next(_counter)}", "text": "An imported text."}]),
        "content_type": "application/json"},
    ("GET", "/api/v1/projects/<int:pid>/export"):
        lambda w, role: {"query_string": {"format": "jsonl"}},
    ("POST", "/api/v1/documents/<int:did>/suggestions/rejections"): lambda w, role: {
        "json": {"start": 0, "end": 4, "label": "ORG", "source": "dictionary"}},
    ("PUT", "/api/v1/projects/<int:pid>/patterns"): lambda w, role: {
        "data": b'{"label": "ORG", "pattern": "Scale AI"}\n', "content_type": "application/jsonl"},
    ("PATCH", "/api/v1/projects/<int:pid>/settings"): lambda w, role: {"json": {"k": 2}},
    ("PATCH", "/api/v1/projects/<int:pid>"): lambda w, role: {"json": {"guidelines": "Tag names."}},
    ("POST", "/api/v1/guidelines/preview"): lambda w, role: {"json": {"guidelines": "*x*"}},
    ("PUT", "/api/v1/projects/<int:pid>/model"): lambda w, role: {"json": {"version": None}},
    ("POST", "/api/v1/projects/<int:pid>/members"):
        lambda w, role: {"json": {"usernames": ["extra"]}},
    ("DELETE", "/api/v1/projects/<int:pid>/members/<username>"):
        lambda w, role: _ensure_extra_member(w) or {},
    ("PUT", "/api/v1/documents/<int:did>/annotation"): lambda w, role: {"json": {
        "spans": [], "version": _version(w, role) if role != "anon" else 0}},
    ("GET", "/api/v1/documents/<int:did>/annotation/history"):
        lambda w, role: {"query_string": {"user": "ann"}},
    ("PUT", "/api/v1/documents/<int:did>/gold"): lambda w, role: {"json": {
        "spans": [], "version": _version(w, "gold")}},
    ("PUT", "/api/v1/documents/<int:did>/honeypot"): lambda w, role: {"json": {}},
    ("POST", "/api/v1/projects/<int:pid>/words"): lambda w, role: {"json": {"words": ["메타"]}},
    ("PUT", "/api/v1/projects/<int:pid>/words"): lambda w, role: {"json": {"words": []}},
    ("POST", "/api/v1/users"): lambda w, role: {"json": {"username": f"new{next(_counter)}",
                                                         "role": "annotator"}},
    ("PATCH", "/api/v1/users/<username>"): lambda w, role: {"json": {"active": True}},
    ("POST", "/api/v1/me/password"): lambda w, role: {"json": {"current": "not it",
                                                               "new": "a-new-password"}},
}


def _altered(token: str) -> str:
    return token[:-1] + ("B" if token.endswith("A") else "A")


class World:
    """Project P (members ann, lead, extra) and Q (members ann_x, lead_x); an admin; a
    document of P with ann's submitted annotation and a gold annotation."""

    def __init__(self, app):
        self.app = app
        self.h = h = Helper(app)
        roles = {"ann": "annotator", "ann_x": "annotator", "lead": "lead", "lead_x": "lead",
                 "admin": "admin", "extra": "annotator"}
        self.users = {name: h.user(name, role, member_of=[]) for name, role in roles.items()}
        with h.session() as s:
            from annotator.services.users import get_user

            self.users["gold"] = get_user(s, "gold")
        u = self.users
        self.p = h.project("P", k=2, members=[u["ann"], u["lead"], u["extra"]])
        self.q = h.project("Q", k=2, members=[u["ann_x"], u["lead_x"]])
        docs = h.docs(self.p, [{"id": f"p{i}", "text": f"Meta paid Scale AI, story {i}."}
                               for i in range(4)])
        h.docs(self.q, [{"id": "q0", "text": "Another project's text."}])
        self.doc = docs[0]
        self.tokens = {name: h.token(u[name]) for name in ROLES if name != "anon"}
        ann, lead = h.api(u["ann"]), h.api(u["lead"])
        spans = [{"start": 0, "end": 4, "label": "ORG", "attributes": {}}]
        status, body = ann.put(f"/api/v1/documents/{self.doc.id}/annotation",
                               {"spans": spans, "version": 0, "status": "submitted"})
        assert status == 200, body
        status, body = lead.put(f"/api/v1/documents/{self.doc.id}/gold",
                                {"spans": spans, "version": 0})
        assert status == 200, body
        self.params = {"pid": self.p.id, "did": self.doc.id, "username": "extra",
                       "filename": "css/app.css"}
        self.cookies = {name: self._log_in(name) for name in ROLES}

    def _log_in(self, role):
        """(session cookie, CSRF token) of a logged-in browser (anon: a fresh visitor's)."""
        client = self.app.test_client()
        client.get("/login")
        with client.session_transaction() as sess:
            csrf = sess["csrf"]
        if role != "anon":
            resp = client.post("/login", data={"username": role, "password": PASSWORD,
                                               "csrf_token": csrf})
            assert resp.status_code == 302, resp.data
            with client.session_transaction() as sess:
                csrf = sess["csrf"]
        return client.get_cookie("annotator_session").value, csrf

    def path(self, rule: str) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(self.params[m.group(1)]), rule)

    def prepare(self, method: str, rule: str, role: str) -> dict:
        """The request's keyword arguments (after its set-up step, if it has one)."""
        return REQUESTS.get((method, rule), lambda w, r: {})(self, role)

    def call(self, method: str, rule: str, role: str, auth: str, *, csrf: str | None = "right",
             kw: dict | None = None):
        """One request as ``role`` (auth: cookie, token or none); csrf: right, wrong or None."""
        kw = self.prepare(method, rule, role) if kw is None else kw
        client = self.app.test_client()
        headers = {"Accept": "application/json"} if rule.startswith("/api/") else {}
        if auth == "token":
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        else:
            cookie, token = self.cookies[role]
            client.set_cookie("annotator_session", cookie)
            if method not in ("GET", "HEAD") and csrf is not None:
                headers["X-CSRF-Token"] = token if csrf == "right" else _altered(token)
        resp = client.open(self.path(rule), method=method, headers=headers, **kw)
        resp.get_data()  # run streamed bodies (export) to the end
        resp.close()
        if rule == "/logout" and role != "anon" and resp.status_code == 302:
            self.cookies[role] = self._log_in(role)  # it ended every session of the role's user
        return resp


@pytest.fixture(scope="module")
def world(tmp_path_factory, template_db):
    if PG_URL:
        reset_postgres(PG_URL)
        migrate(PG_URL)
        url = PG_URL
    else:
        path = tmp_path_factory.mktemp("matrix") / "annotator.db"
        shutil.copy(template_db, path)
        url = f"sqlite:///{path}"
    app = create_app({"DATABASE_URL": url, "DATA_DIR": str(tmp_path_factory.mktemp("matrix-data")),
                      "SECRET_KEY": "test-secret-not-for-production", "TESTING": True,
                      "LOGIN_FAILURES": 1000, "LOGIN_FAILURES_PER_IP": 1000})
    yield World(app)
    app.extensions["annotator.db"].dispose()


def _cases():
    for (method, rule), expected in MATRIX.items():
        for role, status in zip(ROLES, expected, strict=True):
            if role == "anon":
                auths = ["none"]
            else:
                auths = ["cookie", "token"] if rule.startswith("/api/") else ["cookie"]
            for auth in auths:
                yield pytest.param(method, rule, role, auth, status,
                                   id=f"{method} {rule} {role} {auth}")


def app_rules(app) -> set[tuple[str, str]]:
    return {(m, r.rule) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}


def test_every_endpoint_of_the_app_is_in_the_matrix(world):
    rules = app_rules(world.app)
    missing = sorted(rules - set(MATRIX))
    assert not missing, ("endpoints without a row in MATRIX (add one, with its status for each of "
                         f"{ROLES}): {missing}")
    assert not sorted(set(MATRIX) - rules), "rows for endpoints that no longer exist"
    assert all(len(v) == len(ROLES) for v in MATRIX.values())
    assert set(REQUESTS) <= set(MATRIX)


@pytest.mark.parametrize("method,rule,role,auth,status", list(_cases()))
def test_status(world, method, rule, role, auth, status):
    resp = world.call(method, rule, role, auth)
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    if rule.startswith("/api/") and status >= 400:
        body = resp.get_json()
        assert body["ok"] is False and body["status"] == status and body["error"]
    if status == 302 and role == "anon" and rule != "/login":
        assert "/login" in resp.headers["Location"]


STATE_CHANGES = [(m, r) for (m, r) in MATRIX if m not in ("GET", "HEAD", "OPTIONS")]


@pytest.mark.parametrize("csrf", [None, "wrong"], ids=["no-csrf", "wrong-csrf"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,rule", STATE_CHANGES, ids=[f"{m} {r}" for m, r in STATE_CHANGES])
def test_cookie_state_changes_need_csrf(world, method, rule, role, csrf):
    kw = world.prepare(method, rule, role)
    before = world.h.counts()
    resp = world.call(method, rule, role, "cookie", csrf=csrf, kw=kw)
    assert resp.status_code == 403, resp.get_data(as_text=True)[:300]
    assert "CSRF" in resp.get_data(as_text=True)
    assert world.h.counts() == before


def test_a_hidden_project_answers_like_a_missing_one(world):
    """The outsider's 404 for P is word for word the 404 for an id that does not exist."""
    missing = 10**6
    for rule in ("/api/v1/projects/<int:pid>", "/api/v1/documents/<int:did>"):
        key = "pid" if "pid" in rule else "did"
        hidden = world.call("GET", rule, "ann_x", "token").get_json()
        world.params[key], real = missing, world.params[key]
        try:
            absent = world.call("GET", rule, "ann_x", "token").get_json()
        finally:
            world.params[key] = real
        assert hidden == json.loads(json.dumps(absent).replace(str(missing), str(real)))
