"""Real parts: a temp-file SQLite database per test (or PostgreSQL when
ANNOTATOR_TEST_DATABASE_URL is set), the real Flask app, and a helper with verbs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from annotator import create_app
from annotator.storage.db import migrate, reset_postgres

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "annotator" / "data" / "corpus"
FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("ANNOTATOR_TEST_DATABASE_URL")
PASSWORD = "correct-horse-42"




@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """Migrate once; each test gets a copy of the file (fast and still a real database)."""
    if PG_URL:
        return None
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


_pg_engine = None


def fresh_postgres(url: str) -> None:
    """PostgreSQL as a fresh database would be: the schema at the newest version, every table
    empty and every id starting from 1 again. TRUNCATE takes ~40 ms where dropping the schema
    and migrating again took ~240 ms per test; a test that left the schema elsewhere (it
    dropped it, or migrated an old version) gets the whole reset."""
    global _pg_engine
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import ProgrammingError
    from sqlalchemy.pool import NullPool
    from sqlmodel import Session

    from annotator.storage.db import ensure_system_users, head_revision

    if _pg_engine is None:
        _pg_engine = create_engine(url, poolclass=NullPool)  # holds no connection between tests
    try:
        with _pg_engine.begin() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if current == head_revision():
                tables = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                with Session(bind=conn) as s:
                    ensure_system_users(s)
                    s.flush()
                return
    except ProgrammingError:  # no alembic_version: no schema
        pass
    reset_postgres(url)
    migrate(url)


@pytest.fixture
def db_url(tmp_path, template_db):
    if PG_URL:
        fresh_postgres(PG_URL)
        return PG_URL
    path = tmp_path / "annotator.db"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(db_url, tmp_path):
    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / "data"),
                      "SECRET_KEY": "test-secret-not-for-production", "TESTING": True})
    yield app
    app.extensions["annotator.db"].dispose()


_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    """A real scrypt hash of ``password`` (users.hash_password), made once per run: a hash costs
    ~0.13 s of CPU and the suite creates thousands of users. Every hash carries its own salt,
    so users sharing one is nothing a test can tell apart; users.create_user, which makes a
    fresh one, has tests of its own (test_cli, test_people, the API's POST /users)."""
    from annotator.services.users import hash_password

    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


class Api:
    """A script's view of the API: Bearer-token requests returning (status, json)."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method, path, body=None, raw=None, headers=None):
        kw = {"headers": {**self.headers, **(headers or {})}}
        if raw is not None:
            kw["data"] = raw
        elif body is not None:
            kw["data"] = json.dumps(body, ensure_ascii=False)
            kw["content_type"] = "application/json"
        resp = getattr(self.client, method)(path, **kw)
        return resp.status_code, (resp.get_json(silent=True) if resp.data else None)

    def get(self, path, **kw):
        return self._call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self._call("post", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self._call("put", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self._call("patch", path, body, **kw)

    def delete(self, path, **kw):
        return self._call("delete", path, **kw)


class Helper:
    """Verbs so tests read like use: h.user("alice"), h.project(), h.save(doc, alice, spans).

    Membership: only members (and admins) can see a project. So that tests stay short, the
    helper makes everyone it creates a member of everything it creates, whatever the order:
    ``h.project()`` (and ``h.demo()``) makes every person made by ``h.user()`` so far a
    member, and ``h.user()`` makes the new user a member of every project the helper made so
    far. Say who instead with ``h.project(members=[alice])`` (``members=[]``: nobody) and
    ``h.user("eve", member_of=[])`` (or a list of projects). Projects created through the
    API or the CLI are not the helper's: there the API's own rules apply (the creating lead
    becomes a member) and the CLI adds nobody.
    """

    def __init__(self, app):
        self.app = app
        self.db = app.extensions["annotator.db"]
        self.users: list = []
        self.projects: list = []

    def session(self):
        return self.db.session()

    def add_members(self, project, users) -> None:
        from annotator.services.members import add_member
        from annotator.storage.models import Project, User

        with self.session() as s:
            p = s.get(Project, project.id)
            for u in users:
                add_member(s, p, s.get(User, u.id))
            s.commit()

    def user(self, name: str, role: str = "annotator", password: str = PASSWORD, member_of=None):
        """A person who logs in with ``password``. Stored as users.create_user stores one,
        with a hash of the password made once for the whole run (password_hash)."""
        from annotator.storage.models import User

        with self.session() as s:
            u = User(username=name, role=role, password_hash=password_hash(password))
            s.add(u)
            s.commit()
        for p in self.projects if member_of is None else member_of:
            self.add_members(p, [u])
        self.users.append(u)
        return u

    def token(self, user) -> str:
        from annotator.services.users import create_token

        with self.session() as s:
            t = create_token(s, user)
            s.commit()
            return t

    def api(self, user) -> Api:
        return Api(self.app.test_client(), self.token(user))

    def project(self, name: str = "Test project", members=None, **kw):
        from annotator.services.projects import create_project

        with self.session() as s:
            p = create_project(s, name, **kw)
            s.commit()
        self.add_members(p, self.users if members is None else members)
        self.projects.append(p)
        return p

    def settings(self, project, **values) -> None:
        """Change team settings through the same rule as PATCH .../settings."""
        from annotator.services.routing import update_settings
        from annotator.storage.models import Project

        with self.session() as s:
            update_settings(s, s.get(Project, project.id), values)
            s.commit()

    def docs(self, project, records: list[dict]) -> list:
        from annotator.services.importing import import_records
        from annotator.storage.models import Document

        with self.session() as s:
            import_records(s, project, list(enumerate(records, 1)))
            s.commit()
            return list(s.execute(select(Document).where(Document.project_id == project.id)
                                  .order_by(Document.id)).scalars())

    def tokenize(self, project=None) -> int:
        """Store the documents' tokens, as `annotator serve`'s background job does after an
        import (annotator.services.tokenize_job); without it the first open of each computes them."""
        from annotator.services.tokenize_job import run_job

        return run_job(self.app.config["DATABASE_URL"], self.app.config["DATA_DIR"],
                       project.id if project is not None else None)

    def demo(self):
        """The demo project (its lead, alice and bob are members), plus the helper's users."""
        from annotator.services.demo import load_demo

        with self.session() as s:
            project, _ = load_demo(s)
            s.commit()
        self.add_members(project, self.users)
        if all(p.id != project.id for p in self.projects):
            self.projects.append(project)
        return project

    def counts(self) -> dict:
        """Row counts of every table: 'the database is unchanged' means equal counts."""
        from sqlmodel import SQLModel

        with self.session() as s:
            return {t.name: s.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in SQLModel.metadata.sorted_tables}

    def login(self, client, user, password: str = PASSWORD) -> str:
        """Log a test client in through the form; returns the CSRF token for API calls."""
        client.get("/login")
        with client.session_transaction() as sess:
            csrf = sess["csrf"]
        resp = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf})
        assert resp.status_code == 302, resp.data
        with client.session_transaction() as sess:
            return sess["csrf"]


@pytest.fixture
def h(app) -> Helper:
    return Helper(app)


def corpus_text(prefix: str) -> str:
    (path,) = CORPUS.glob(f"{prefix}_*.txt")
    return path.read_bytes().decode("utf-8")


def fixture_000() -> dict:
    return json.loads((FIXTURES / "annotated-000.jsonl").read_text(encoding="utf-8").splitlines()[0])
