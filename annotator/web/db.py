"""The request's way into the database: one session per request (a write session for
state-changing methods, a read-only connection for look-ups), and the access rule: what the
caller may see. Engines, migrations and the schema are annotator.storage.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from sqlalchemy import JSON, DateTime, text
from sqlmodel import Session, select

from annotator.core.errors import Forbidden, NotFound
from annotator.storage.db import Database, is_sqlite, watch_disk_full
from annotator.storage.fastsql import RawConnection, Statement, connection_of
from annotator.storage.models import Document, Project, ProjectMember, User

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def init_app(app: Flask) -> None:
    # Configure the ORM mappers now, once, before any request (and, under gunicorn's preload,
    # before the workers fork). Left lazy, the first ORM query of a process configures them;
    # until then attribute access on a model_construct()-ed instance (the hot paths build the
    # caller's User so) fails with AttributeError, and threads serving the first requests race.
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    app.extensions["annotator.db"] = Database(app.config["DATABASE_URL"],
                                              app.config.get("BACKGROUND_CHECKPOINT", False))
    watch_disk_full(app.config["DATABASE_URL"], app.config["DATA_DIR"])

    def _close(_exc=None):
        discard_sessions(invalidate=False)

    # Both: a test's pushed app context can outlive many requests.
    app.teardown_request(_close)
    app.teardown_appcontext(_close)


def discard_sessions(invalidate: bool) -> None:
    """Close the request's sessions and connections (``invalidate``: drop them from the
    pool, after the database connection was lost). Never raises: it runs in teardown, where
    an exception would reach the WSGI server, which answers its own HTML page instead of our
    error shape (probed with PostgreSQL backends terminated under load: 5 of 11 failures)."""
    for key in ("db_session", "db_write_session", "db_reader"):
        s = g.pop(key, None)
        if s is None:
            continue
        try:
            s.invalidate() if invalidate else s.close()
        except Exception as e:
            current_app.logger.warning("closing a database session failed (%s: %s); "
                                       "its connection is dropped", type(e).__name__, e)
            try:
                s.invalidate()
            except Exception:
                pass


def get_db() -> Database:
    return current_app.extensions["annotator.db"]


def session() -> Session:
    """The request's session: a write session for state-changing methods."""
    if "db_session" not in g:
        from flask import has_request_context

        write = not has_request_context() or request.method not in SAFE_METHODS
        g.db_session = get_db().session(write=write)
    return g.db_session


def reader():
    """A read-only connection for look-ups that need not be inside the request's write
    transaction: the caller, the document, the label set (a ``fastsql.RawConnection``;
    pass it where a Session is accepted by ``fastsql.connection_of``).

    Profile (8 clients saving at once): a state-changing request took SQLite's write lock
    (BEGIN IMMEDIATE, and the writer file lock) at its first statement, which was the API
    token look-up, so authentication, the document load and span validation all ran
    inside the one-writer-at-a-time section. Read through this connection they run in
    parallel; the write transaction starts when the request first writes.
    """
    from flask import has_request_context

    if not has_request_context():
        return session()
    conn = g.get("db_reader")
    if conn is None:
        conn = g.db_reader = RawConnection(get_db().read_engine)
    return conn


def write_session() -> Session:
    """A write session even for a GET that changes state (the queue's reservation)."""
    from flask import has_request_context

    if not has_request_context() or request.method not in SAFE_METHODS:
        return session()
    if "db_write_session" not in g:
        g.db_write_session = get_db().session(write=True)
    return g.db_write_session



# --- access: existence and permission in one place -----------------------------------
#
# Admins see every project; leads and annotators only the projects they are members of
# (ProjectMember). A project, or a document of a project, that the caller may not see is
# answered exactly like one that does not exist (404), so ids reveal nothing. Lead-only
# actions also need the lead or admin role (403, asked only of members).

_IS_MEMBER = text("SELECT 1 FROM project_members WHERE project_id = :p AND user_id = :u")


def can_access(user: User, project_id: int) -> bool:
    if user.is_admin:
        return True
    found = session().connection().execute(_IS_MEMBER, {"p": project_id, "u": user.id}).first()
    return found is not None


def accessible_projects(user: User):
    """A Project query of what the caller may see (admins: everything), in id order."""
    query = select(Project).order_by(Project.id)
    if not user.is_admin:
        query = query.where(Project.id.in_(
            select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))
    return query


def require_lead(user: User) -> None:
    if not user.is_lead:
        raise Forbidden("Only a lead or an admin may do that.")


def get_project_or_404(project_id: int, user: User, *, lead: bool = False) -> Project:
    """The project, if it exists and the caller may see it (404 otherwise); ``lead=True``
    also requires the lead or admin role (403)."""
    project = session().get(Project, project_id)
    if project is None or not can_access(user, project.id):
        raise NotFound(f"Project {project_id} does not exist.")
    if lead:
        require_lead(user)
    return project


_DOCUMENT = Statement(
    "SELECT d.id, d.project_id, d.external_id, d.text, d.meta, d.content_hash, d.tokens, "
    "d.created_at, (SELECT COUNT(*) FROM project_members m WHERE m.project_id = d.project_id "
    "AND m.user_id = :u) AS member FROM documents d WHERE d.id = :id",
    results={4: JSON(), 6: JSON(), 7: DateTime(timezone=True)})
_DOCUMENT_FIELDS = ("id", "project_id", "external_id", "text", "meta", "content_hash", "tokens",
                    "created_at")


def get_document_or_404(document_id: int, user: User, *, lead: bool = False) -> Document:
    """The document, if it exists and the caller may see its project (404 otherwise);
    ``lead=True`` also requires the lead or admin role (403).

    A detached, read-only Document (hot path: every annotation read and save loads one,
    with the membership check in the same statement, outside the write lock).
    """
    row = _DOCUMENT.first(connection_of(reader()), {"id": document_id, "u": user.id})
    if row is None or not (row[8] or user.is_admin):
        raise NotFound(f"Document {document_id} does not exist.")
    if lead:
        require_lead(user)
    return Document.model_construct(**dict(zip(_DOCUMENT_FIELDS, row[:8])))


def get_user_by_name_or_404(username: str) -> User:
    user = session().exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"User {username!r} does not exist.")
    return user


def id_converter(url: str):
    """The URL converter for ``<int:...>``: ASCII digits only (werkzeug's ``\\d+`` also takes
    '١', read as 1: a second spelling of an id), and a number past what an id column holds
    (core.numbers.ID_MAX) matches no route (404), instead of reaching the driver."""
    from werkzeug.exceptions import NotFound as NoRoute
    from werkzeug.routing import IntegerConverter

    from annotator.core.numbers import DIGITS_REGEX, id_max, whole

    largest = id_max("sqlite" if is_sqlite(url) else "postgresql")

    class IdConverter(IntegerConverter):
        regex = DIGITS_REGEX

        # Raised, not a ValidationError: werkzeug would then answer 405 where another
        # method's rule has the same path (GET and POST .../documents).
        def to_python(self, value: str) -> int:
            number = whole(value, 0, largest)
            if number is None:
                raise NoRoute()
            return number

    return IdConverter
