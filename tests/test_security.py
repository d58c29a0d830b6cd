"""Security (issue 6, section 2): project membership, the log-in rate limit, password hashing,
the session secret, API tokens, CSRF, security headers and escaping of user text.

The full endpoint x caller table is tests/test_authz_matrix.py; the browser's view of
escaping is tests/browser/test_security_pages.py.
"""

from __future__ import annotations

import json
import stat
import subprocess
from concurrent.futures import ProcessPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from click.testing import CliRunner
from conftest import PASSWORD, ROOT
from sqlalchemy import select

from annotator import create_app
from annotator.cli import main
from annotator.storage.models import ApiToken, LoginFailure, ProjectMember, User

URL = "/api/v1"
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def error_shape(body, status):
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"].endswith(".")
    assert isinstance(body["details"], list)


def names(api) -> list[str]:
    status, body = api.get(f"{URL}/projects")
    assert status == 200
    return [p["name"] for p in body["items"]]


# --- membership --------------------------------------------------------------------------


@pytest.fixture
def two(h):
    """Projects A (alice, lena) and B (bob, ben), an admin in neither, a document in each."""
    alice, bob = h.user("alice", member_of=[]), h.user("bob", member_of=[])
    lena, ben = h.user("lena", "lead", member_of=[]), h.user("ben", "lead", member_of=[])
    root = h.user("root", "admin", member_of=[])
    a = h.project("A", members=[alice, lena])
    b = h.project("B", members=[bob, ben])
    (doc_a,) = h.docs(a, [{"id": "a1", "text": "Meta bought Scale AI."}])
    (doc_b,) = h.docs(b, [{"id": "b1", "text": "Scale AI sold to Meta."}])
    users = {u.username: u for u in (alice, bob, lena, ben, root)}
    return {
        "a": a,
        "b": b,
        "doc_a": doc_a,
        "doc_b": doc_b,
        "users": users,
        "api": {name: h.api(u) for name, u in users.items()},
    }


def test_project_lists_show_only_what_the_caller_may_see(h, client, two):
    api = two["api"]
    assert names(api["alice"]) == ["A"] and names(api["lena"]) == ["A"]
    assert names(api["bob"]) == ["B"] and names(api["ben"]) == ["B"]
    assert names(api["root"]) == ["A", "B"]  # admins see every project without membership
    h.login(client, two["users"]["alice"])
    page = client.get("/").get_data(as_text=True)
    assert ">A</h2>" in page and ">B</h2>" not in page


def test_other_projects_answer_404_everywhere(h, two):
    """Cross-project: bob reaches nothing of A (tests/test_authz_matrix.py has every endpoint)."""
    bob, a, doc = two["api"]["bob"], two["a"], two["doc_a"]
    for path in (
        f"/projects/{a.id}",
        f"/documents/{doc.id}",
        f"/documents/{doc.id}/annotation",
        f"/projects/{a.id}/documents",
        f"/projects/{a.id}/next",
        f"/projects/{a.id}/settings",
    ):
        status, body = bob.get(URL + path)
        assert status == 404, path
        error_shape(body, 404)
    before = h.counts()
    status, _ = bob.put(f"{URL}/documents/{doc.id}/annotation", {"spans": [], "version": 0})
    assert status == 404 and h.counts() == before
    # The page that moves to a document's own project does not leak it either.
    client = h.app.test_client()
    h.login(client, two["users"]["bob"])
    resp = client.get(f"/projects/{two['b'].id}/documents/{doc.id}/annotate")
    assert resp.status_code == 404 and "Location" not in resp.headers


def test_lead_only_needs_the_role_and_membership(two):
    api, a = two["api"], two["a"]
    assert api["lena"].get(f"{URL}/projects/{a.id}/agreement")[0] == 200
    assert api["alice"].get(f"{URL}/projects/{a.id}/agreement")[0] == 403  # member, not a lead
    assert api["ben"].get(f"{URL}/projects/{a.id}/agreement")[0] == 404  # a lead, not a member
    assert api["root"].get(f"{URL}/projects/{a.id}/agreement")[0] == 200


def test_the_lead_or_admin_who_creates_a_project_is_its_member(h, two):
    for name in ("lena", "root"):
        status, body = two["api"][name].post(f"{URL}/projects", {"name": f"By {name}"})
        assert status == 201, body
        status, listing = two["api"][name].get(f"{URL}/projects/{body['id']}/members")
        assert [m["username"] for m in listing["items"]] == [name]
    assert names(two["api"]["ben"]) == ["B"]


def test_members_api_adds_lists_and_removes(h, two):
    lena, a = two["api"]["lena"], two["a"]
    path = f"{URL}/projects/{a.id}/members"
    status, body = lena.get(path)
    assert status == 200
    assert body["items"] == [
        {"username": "alice", "role": "annotator", "active": True},
        {"username": "lena", "role": "lead", "active": True},
    ]
    status, body = lena.post(path, {"usernames": ["bob", "alice"]})
    assert status == 200 and body["added"] == ["bob"] and body["total"] == 3
    assert names(two["api"]["bob"]) == ["A", "B"]
    bob = two["api"]["bob"]
    status, _ = bob.put(
        f"{URL}/documents/{two['doc_a'].id}/annotation",
        {"spans": [{"start": 0, "end": 4, "label": "ORG"}], "version": 0},
    )
    assert status == 200
    status, body = lena.delete(f"{path}/bob")
    assert status == 200 and [m["username"] for m in body["items"]] == ["alice", "lena"]
    assert bob.get(f"{URL}/documents/{two['doc_a'].id}/annotation")[0] == 404
    # bob's work stays and is still readable by the lead
    status, body = lena.get(f"{URL}/documents/{two['doc_a'].id}/annotation?user=bob")
    assert status == 200 and body["version"] == 1


def test_members_api_refuses_bad_requests_whole(h, two):
    lena, a = two["api"]["lena"], two["a"]
    path = f"{URL}/projects/{a.id}/members"
    before = h.counts()
    for body, field in (
        ({"usernames": ["bob", "nobody"]}, "usernames"),
        ({"usernames": ["bob", "b\x00b"]}, "usernames[1]"),  # bodies.py: NUL, by path
        ({"usernames": ["gold"]}, "usernames"),
        ({"usernames": []}, "usernames"),
        ({"usernames": "bob"}, "usernames"),
        ({"names": ["bob"]}, "usernames"),
        ({"usernames": ["bob"], "x": 1}, "x"),
    ):
        status, resp = lena.post(path, body)
        assert status == 422, body
        error_shape(resp, 422)
        assert resp["details"][0]["field"] == field
    assert h.counts() == before  # "bob" was not added when "nobody" was refused
    status, resp = lena.delete(f"{path}/bob")
    assert status == 404 and "not a member" in resp["error"]
    assert lena.delete(f"{path}/b%00b")[0] == 404
    status, resp = lena.delete(f"{path}/lena")
    assert status == 422 and "yourself" in resp["error"]
    assert h.counts() == before
    assert two["api"]["root"].delete(f"{path}/lena")[0] == 200  # an admin may


def test_cli_members(db_url, h, two, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))

    def run(*args):
        return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    assert run("projects", "members", "A").output == "alice\tannotator\nlena\tlead\n"
    r = run("projects", "members", "A", "--add", "bob", "--add", "ben", "--remove", "alice")
    assert r.exit_code == 0 and r.output.splitlines() == [
        "'A' now has 3 member(s).",
        "ben\tlead",
        "bob\tannotator",
        "lena\tlead",
    ]
    r = run("projects", "members", "A", "--add", "carol")
    assert r.exit_code == 1 and r.output.startswith(
        "Error: User 'carol' does not exist; nobody was added."
    )
    assert "not a member" in run("projects", "members", "A", "--remove", "alice").output
    r = run("projects", "create", "From the CLI")  # the CLI is no user: nobody becomes a member
    assert run("projects", "members", "From the CLI").output == ""


def test_demo_users_are_members_of_the_demo(h):
    project = h.demo()
    with h.session() as s:
        rows = (
            s.execute(
                select(User.username)
                .join(ProjectMember, ProjectMember.user_id == User.id)
                .where(ProjectMember.project_id == project.id)
            )
            .scalars()
            .all()
        )
    assert sorted(rows) == ["alice", "bob", "lead"]


def upgraded(tmp_path, revision: str, fill) -> str:
    """A database migrated to ``revision``, ``fill(conn)`` run on it, then migrated to the
    head (on PostgreSQL when the tests run there); returns its URL."""
    from alembic import command
    from alembic.config import Config
    from conftest import PG_URL, reset_postgres

    from annotator.storage.db import MIGRATIONS, make_engine, migrate

    url = PG_URL or f"sqlite:///{tmp_path / 'old.db'}"
    if PG_URL:
        reset_postgres(PG_URL)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = make_engine(url, immediate=True)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        fill(conn)
    engine.dispose()
    migrate(url)
    return url


def test_upgrading_makes_existing_people_members_of_existing_projects(tmp_path):
    """Revision 0003 keeps what everyone could see before membership existed."""
    from sqlalchemy import text

    from annotator.storage.db import make_engine

    def fill(conn):
        conn.execute(
            text(
                "INSERT INTO projects (name, language, guidelines, k, blind, reservation_minutes, "
                "settings, created_at) VALUES ('Old', 'en', '', 2, true, 30, '{}', '2026-01-01')"
            )
        )
        for name, role in (
            ("ann", "annotator"),
            ("boss", "lead"),
            ("root", "admin"),
            ("import", "system"),
        ):
            conn.execute(
                text(
                    "INSERT INTO users (username, role, active, created_at) "
                    f"VALUES ('{name}', '{role}', true, '2026-01-01')"
                )
            )

    url = upgraded(tmp_path, "0002", fill)
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT u.username FROM project_members m JOIN users u ON u.id = m.user_id "
                    "ORDER BY u.username"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert rows == ["ann", "boss"]


# --- the log-in rate limit ---------------------------------------------------------------


def post_login(client, username, password, ip="10.0.0.1", json_accept=False):
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    headers = {"Accept": "application/json"} if json_accept else {}
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf},
        headers=headers,
        environ_base={"REMOTE_ADDR": ip},
    )


def test_five_failures_then_429_with_retry_after_even_for_the_right_password(h, client):
    h.user("alice")
    for _ in range(5):
        assert post_login(client, "alice", "wrong-password").status_code == 401
    resp = post_login(client, "alice", PASSWORD)
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 300
    assert "Too many failed log-ins; try again in 5 minutes." in resp.get_data(as_text=True)
    assert "<form" in resp.get_data(as_text=True)  # the log-in page, with the message
    resp = post_login(client, "alice", PASSWORD, json_accept=True)
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    error_shape(resp.get_json(), 429)
    assert resp.get_json()["details"] == [{"retry_after": int(resp.headers["Retry-After"])}]
    # the same user from another address, and another user from this one, may still log in
    assert post_login(client, "alice", PASSWORD, ip="10.0.0.2").status_code == 302
    h.user("bob")
    assert post_login(client, "bob", PASSWORD).status_code == 302


def test_odd_usernames_are_counted_not_crashed_on(h, client):
    """A NUL (PostgreSQL refuses it in text) or an overlong name is one more failure."""
    for name in ("ali\x00ce", "x" * 500, "", "alice'; --"):
        assert post_login(client, name, "pw").status_code == 401
    with h.session() as s:
        assert len(s.execute(select(LoginFailure)).all()) == 4


def test_success_clears_the_count(h, client):
    h.user("alice")
    for _ in range(4):
        assert post_login(client, "alice", "wrong-password").status_code == 401
    assert post_login(client, "alice", PASSWORD).status_code == 302
    for _ in range(4):
        assert post_login(client, "alice", "wrong-password").status_code == 401
    assert post_login(client, "alice", PASSWORD).status_code == 302
    with h.session() as s:
        assert s.execute(select(LoginFailure)).first() is None


def test_per_address_limit_counts_every_username(db_url, tmp_path):
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "DATA_DIR": str(tmp_path / "d"),
            "SECRET_KEY": "x" * 32,
            "LOGIN_FAILURES_PER_IP": 3,
        }
    )
    client = app.test_client()
    for name in ("u1", "u2", "u3"):  # names that do not even exist count
        assert post_login(client, name, "pw").status_code == 401
    assert post_login(client, "u4", "pw").status_code == 429
    assert post_login(client, "u4", "pw", ip="10.0.0.9").status_code == 401
    # IPv6 addresses count by their /64: the next address in it is the same caller
    for i in range(3):
        post_login(client, f"v{i}", "pw", ip=f"2001:db8::{i + 1}")
    assert post_login(client, "v9", "pw", ip="2001:db8::ffff").status_code == 429
    assert post_login(client, "v9", "pw", ip="2001:db8:0:1::1").status_code == 401
    app.extensions["annotator.db"].dispose()


def test_the_count_is_shared_by_every_worker_and_expires(db_url, tmp_path, h):
    """Two app instances (as two worker processes: separate engines, one database)."""
    from datetime import timedelta

    from annotator.storage.models import utcnow
    from annotator.web import ratelimit

    h.user("alice")
    apps = [
        create_app(
            {"DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / f"d{i}"), "SECRET_KEY": "x" * 32}
        )
        for i in range(2)
    ]
    clients = [a.test_client() for a in apps]
    for i in range(5):
        assert post_login(clients[i % 2], "alice", "wrong").status_code == 401
    assert [post_login(c, "alice", PASSWORD).status_code for c in clients] == [429, 429]
    with apps[0].app_context():
        with apps[0].extensions["annotator.db"].session() as s:
            now = utcnow()
            assert 290 <= ratelimit.retry_after(s, "alice", "10.0.0.1", now) <= 300
            assert (
                ratelimit.retry_after(s, "alice", "10.0.0.1", now + timedelta(minutes=5, seconds=1))
                == 0
            )
    for a in apps:
        a.extensions["annotator.db"].dispose()


# --- passwords, the session secret, tokens -----------------------------------------------


def test_passwords_are_hashed_with_scrypt(h):
    from annotator.services.users import authenticate

    h.user("alice")
    with h.session() as s:
        stored = s.execute(select(User.password_hash).where(User.username == "alice")).scalar_one()
        assert stored.startswith("scrypt:") and PASSWORD not in stored
        assert authenticate(s, "alice", PASSWORD).username == "alice"
        assert authenticate(s, "alice", PASSWORD + "x") is None
        assert authenticate(s, "import", "") is None  # pseudo-users cannot log in
        alice = s.execute(select(User).where(User.username == "alice")).scalar_one()
        alice.active = False
        s.commit()
        assert authenticate(s, "alice", PASSWORD) is None


def _secret(data_dir: str) -> str:
    from annotator.core.config import load_config

    return load_config({"DATA_DIR": data_dir})["SECRET_KEY"]


def test_session_secret_is_generated_once_private_and_never_a_default(tmp_path, monkeypatch):
    monkeypatch.delenv("ANNOTATOR_SECRET_KEY", raising=False)
    first = _secret(str(tmp_path / "one"))
    path = tmp_path / "one" / "secret_key"
    assert len(first) == 64 and int(first, 16)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _secret(str(tmp_path / "one")) == first  # stable across restarts
    assert _secret(str(tmp_path / "two")) != first  # every installation its own
    with ProcessPoolExecutor(4) as pool:  # several workers starting at once agree on one
        got = set(pool.map(_secret, [str(tmp_path / "three")] * 8))
    assert len(got) == 1 and len(got.pop()) == 64
    assert sorted(p.name for p in (tmp_path / "three").iterdir()) == ["secret_key"]
    monkeypatch.setenv("ANNOTATOR_SECRET_KEY", "s" * 40)
    assert (
        _secret(str(tmp_path / "four")) == "s" * 40
        and not (tmp_path / "four" / "secret_key").exists()
    )


def test_the_default_data_dir_is_outside_the_repository():
    """The default DATA_DIR (secret and database) is git-ignored, and no secret is tracked."""
    from annotator.core.config import SETTINGS

    default = SETTINGS["DATA_DIR"][0]
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{default}/secret_key"], cwd=ROOT)
    assert ignored.returncode == 0
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert not [f for f in tracked if Path(f).name == "secret_key"]


def test_api_tokens_are_hashed_revocable_and_shown_once(db_url, h, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    h.user("alice")

    def run(*args):
        return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    tokens = [run("users", "token", "alice").output.splitlines()[-1] for _ in range(2)]
    assert tokens[0] != tokens[1]
    with h.session() as s:
        stored = s.execute(select(ApiToken)).scalars().all()
    assert len(stored) == 2
    for t in tokens:
        assert all(t not in (row.token_hash, row.prefix) for row in stored)
    client = h.app.test_client()
    for t in tokens:
        assert client.get(f"{URL}/me", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    assert "Revoked 2" in run("users", "token", "alice", "--revoke").output
    for t in tokens:
        resp = client.get(f"{URL}/me", headers={"Authorization": f"Bearer {t}"})
        assert resp.status_code == 401
        error_shape(resp.get_json(), 401)
    # no endpoint hands a token out again: nothing in the API's answers contains one
    assert not [rule.rule for rule in h.app.url_map.iter_rules() if "token" in rule.rule]


# --- sessions end on the server: log-out and a new password -------------------------------

COOKIE = "annotator_session"


def copy_of_cookie(h, client):
    """Another client (another machine) holding a copy of ``client``'s session cookie."""
    thief = h.app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def signed_in(client) -> bool:
    resp = client.get(f"{URL}/me")
    if resp.status_code == 401:
        error_shape(resp.get_json(), 401)
    return resp.status_code == 200


def test_a_copied_session_cookie_stops_working_after_log_out(h, client):
    alice = h.user("alice")
    csrf = h.login(client, alice)
    thief = copy_of_cookie(h, client)
    assert signed_in(thief) and signed_in(client)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert not signed_in(client)
    assert not signed_in(thief)
    assert thief.get("/").status_code == 302  # the pages send it to the log-in form
    # ... and a state change with the copied cookie and its CSRF token is refused too
    assert thief.post("/logout", data={"csrf_token": csrf}).status_code in (302, 403)
    h.login(client, alice)  # logging in again works, with a new session
    assert signed_in(client) and not signed_in(thief)


def test_log_out_ends_every_session_of_the_user_and_no_one_elses(h):
    alice, bob = h.user("alice"), h.user("bob")
    laptop, desktop, bobs = (h.app.test_client() for _ in range(3))
    csrf = h.login(laptop, alice)
    h.login(desktop, alice)
    h.login(bobs, bob)
    token = h.token(alice)
    assert laptop.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert not signed_in(desktop)
    assert signed_in(bobs)
    # API tokens are not sessions: revoked only by `annotator users token NAME --revoke`
    assert h.app.test_client().get(f"{URL}/me", headers={
        "Authorization": f"Bearer {token}"}).status_code == 200


def test_a_new_password_ends_every_session(db_url, h, client, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    alice = h.user("alice")
    h.login(client, alice)
    thief = copy_of_cookie(h, client)
    res = CliRunner().invoke(main, ["--db", db_url, "users", "password", "alice", "--password",
                                    "a-new-password-7"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "every session of alice was logged out" in res.output
    assert not signed_in(client) and not signed_in(thief)
    assert post_login(client, "alice", PASSWORD).status_code == 401
    assert post_login(client, "alice", "a-new-password-7").status_code == 302
    assert signed_in(client) and not signed_in(thief)


@pytest.mark.parametrize("args, says", [
    (["users", "password", "alice", "--password", "short"], "at least 8 characters"),
    (["users", "password", "nobody", "--password", "long-enough-1"], "does not exist"),
    (["users", "password", "import", "--password", "long-enough-1"], "pseudo-user"),
])
def test_users_password_refuses_in_one_line(db_url, h, client, tmp_path, monkeypatch, args, says):
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    alice = h.user("alice")
    h.login(client, alice)
    res = CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)
    assert res.exit_code == 1 and says in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert signed_in(client)  # nothing changed


def test_a_session_from_before_the_epochs_keeps_working_until_log_out(h, client):
    """Upgrading (migration 0005) logs nobody out: a cookie without an epoch counts as 0."""
    alice = h.user("alice")
    csrf = h.login(client, alice)
    with client.session_transaction() as sess:
        del sess["epoch"]
    thief = copy_of_cookie(h, client)
    assert signed_in(client) and signed_in(thief)
    client.post("/logout", data={"csrf_token": csrf})
    assert not signed_in(thief)


def test_the_session_check_rides_on_the_caller_look_up(h, client):
    """A cookie request runs the same number of statements as before the epochs: one."""
    from test_query_counts import counting

    h.login(client, h.user("alice"))
    with counting(h.app) as statements:
        assert client.get(f"{URL}/me").status_code == 200
    assert len([q for q in statements if "FROM users" in q]) == 1, statements
    assert any("session_epoch" in q for q in statements)


def test_upgrading_keeps_users_and_their_sessions(tmp_path):
    """Revision 0005 adds users.session_epoch (0 for everyone) on SQLite and PostgreSQL."""
    from sqlalchemy import text

    from annotator.storage.db import make_engine

    url = upgraded(tmp_path, "0004", lambda conn: conn.execute(text(
        "INSERT INTO users (username, role, active, created_at) "
        "VALUES ('ann', 'annotator', true, '2026-01-01')")))
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT username, session_epoch FROM users "
                                 "WHERE username = 'ann'")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("ann", 0)]


# --- CSRF, headers, redirects ------------------------------------------------------------


def test_csrf_on_cookie_state_changes(h, client):
    """Every rule is in tests/test_authz_matrix.py; here: the form field, and Bearer needs none."""
    alice = h.user("alice")
    project = h.project("P")
    (doc,) = h.docs(project, [{"id": "d", "text": "Meta bought Scale AI."}])
    csrf = h.login(client, alice)
    body = {"spans": [], "version": 0}
    assert client.put(f"{URL}/documents/{doc.id}/annotation", json=body).status_code == 403
    assert (
        client.put(
            f"{URL}/documents/{doc.id}/annotation", json=body, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 200
    )
    assert client.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert (
        h.api(alice).put(f"{URL}/documents/{doc.id}/annotation", {"spans": [], "version": 1})[0]
        == 200
    )


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/",
        "/api/v1/health",
        "/api/v1/projects",
        "/nope",
        "/static/css/app.css",
        "/projects/1",
    ],
)
def test_security_headers_on_every_response(h, client, path):
    h.login(client, h.user("alice"))
    resp = client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_httponly_and_samesite(h, client):
    h.user("alice")
    resp = post_login(client, "alice", PASSWORD)
    cookie = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("annotator_session=")][
        0
    ]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
    ],
)
def test_log_in_never_redirects_to_another_site(h, client, target):
    h.user("alice")
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "alice", "password": PASSWORD, "csrf_token": csrf},
    )
    assert resp.status_code == 302
    # where a browser goes (browsers read a backslash in a URL as a slash)
    went = urlparse(urljoin("http://localhost/", resp.headers["Location"].replace("\\", "/")))
    assert went.scheme == "http" and went.netloc == "localhost", resp.headers["Location"]


# --- user text is escaped ----------------------------------------------------------------


def test_user_text_in_pages_is_escaped(h, client):
    lead = h.user("lena", "lead")
    project = h.project("News " + XSS, guidelines="# Rules\n" + XSS)
    (doc,) = h.docs(project, [{"id": "doc " + XSS, "text": "Text " + XSS}])
    h.login(client, lead)
    for path in (
        "/",
        f"/projects/{project.id}",
        f"/projects/{project.id}/annotate",
        f"/projects/{project.id}/report",
        f"/documents/{doc.id}/adjudicate",
    ):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_names_that_could_carry_markup_are_refused(h):
    from annotator.core.errors import Invalid
    from annotator.services.projects import check_label_set
    from annotator.services.users import create_user

    with pytest.raises(Invalid), h.session() as s:
        create_user(s, "<img src=x onerror=alert(1)>", "annotator", "a-long-password")
    with pytest.raises(Invalid):
        check_label_set([{"name": "<script>alert(1)</script>"}])
    with pytest.raises(Invalid):
        check_label_set([{"name": "ORG", "color": "red;background:url(x)"}])


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def test_guidelines_markdown_is_sanitised():
    from annotator.web.security import render_markdown

    html = render_markdown(
        "**bold** " + XSS + "\n\n[link](javascript:alert(1)) [ok](https://example.org)"
        '\n\n<a href="javascript:alert(1)" onclick="alert(1)">raw</a>'
    )
    assert "<strong>bold</strong>" in html
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    )  # as text
    tags = Tags()
    tags.feed(html)
    assert {t for t, _ in tags.found} == {"p", "strong", "a"}
    assert [a for t, a in tags.found if t == "a"] == [
        {"href": "https://example.org", "rel": "noopener noreferrer"}
    ]


def test_json_answers_carry_text_as_data(h):
    """A skip reason (or any text) comes back exactly, as JSON that no browser sniffs as HTML."""
    alice = h.user("alice")
    project = h.project("P")
    (doc,) = h.docs(project, [{"id": "d", "text": XSS}])
    api = h.api(alice)
    status, body = api.put(
        f"{URL}/documents/{doc.id}/annotation",
        {"spans": [], "version": 0, "status": "skipped", "skip_reason": XSS},
    )
    assert status == 200 and body["skip_reason"] == XSS
    resp = api.client.get(f"{URL}/documents/{doc.id}", headers=api.headers)
    assert (
        resp.mimetype == "application/json" and resp.headers["X-Content-Type-Options"] == "nosniff"
    )
    assert json.loads(resp.data)["text"] == XSS


def test_no_template_marks_user_text_safe():
    """Jinja autoescaping stays on: no |safe, no autoescape false, no Markup() in views."""
    for path in (ROOT / "templates").glob("*.html"):
        source = path.read_text(encoding="utf-8")
        assert "|safe" not in source.replace(" ", "") and "autoescape false" not in source, (
            path.name
        )
    modules = list((ROOT / "annotator").rglob("*.py"))
    scripts = list((ROOT / "static" / "js").rglob("*.js"))
    assert len(modules) > 40 and (ROOT / "static/js/annotate/page.js") in scripts
    for path in modules:
        assert "Markup(" not in path.read_text(encoding="utf-8"), path.name
    for path in scripts:
        source = path.read_text(encoding="utf-8")
        uses = [
            line.strip()
            for line in source.splitlines()
            if "innerHTML" in line and "= ''" not in line
        ]
        assert all("guidelines_html" in u for u in uses), (path.name, uses)  # nh3-sanitised
