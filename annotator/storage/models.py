"""SQLModel tables and the cheap invariants the database repeats as constraints.

Business rules live in spans.py and the service modules, not here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


ROLES = ("admin", "lead", "annotator")
SYSTEM_ROLE = "system"  # pseudo-users such as "import": never a person, cannot log in
IMPORT_USER = "import"
STATUSES = ("in_progress", "submitted", "skipped")


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'lead', 'annotator', 'system')", name="ck_users_role"),
    )
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(max_length=16)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    # Log-in sessions are signed cookies carrying the epoch they began in; logging out and a
    # new password move it on, which ends every session begun before (auth.py).
    session_epoch: int = Field(default=0, sa_column=Column(Integer, nullable=False,
                                                           server_default="0"))

    @property
    def is_lead(self) -> bool:
        return self.role in ("lead", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_person(self) -> bool:
        return self.role != SYSTEM_ROLE


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False, index=True))
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = (CheckConstraint("k >= 1", name="ck_projects_k"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    language: str = Field(default="en", max_length=16)
    guidelines: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    k: int = Field(default=2)
    blind: bool = Field(default=True)
    reservation_minutes: int = Field(default=30)
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Label(SQLModel, table=True):
    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_labels_project_name"),
        CheckConstraint("kind IN ('entity', 'span')", name="ck_labels_kind"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    name: str = Field(max_length=64)
    color: str = Field(default="#888888", max_length=16)
    hotkey: str | None = Field(default=None, max_length=4)
    kind: str = Field(default="entity", max_length=8)
    # attribute name -> {"values": [...], "required": bool}
    attributes: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    position: int = Field(default=0)


class Document(SQLModel, table=True):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("project_id", "external_id", name="uq_documents_project_external"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    external_id: str = Field(max_length=255)
    # Stored exactly as imported: no normalisation of any kind.
    text: str = Field(sa_column=Column(Text, nullable=False))
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    # Token boundaries [[start, end], ...] in code points, filled by the tokenizer (may lag import).
    tokens: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Annotation(SQLModel, table=True):
    """One per (document, user). Absent row = did not annotate; submitted with no spans = found nothing."""

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("document_id", "user_id", name="uq_annotations_document_user"),
        CheckConstraint("status IN ('in_progress', 'submitted', 'skipped')", name="ck_annotations_status"),
        CheckConstraint("version >= 1", name="ck_annotations_version"),
    )
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False, index=True))
    status: str = Field(default="in_progress", max_length=16)
    version: int = Field(default=1)
    skip_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Span(SQLModel, table=True):
    __tablename__ = "spans"
    __table_args__ = (
        CheckConstraint('"start" >= 0', name="ck_spans_start"),
        CheckConstraint('"start" < "end"', name="ck_spans_order"),
    )
    id: int | None = Field(default=None, primary_key=True)
    annotation_id: int = Field(sa_column=Column(Integer, ForeignKey("annotations.id", ondelete="CASCADE"),
                                                nullable=False, index=True))
    start: int
    end: int
    label_id: int = Field(sa_column=Column(Integer, ForeignKey("labels.id"), nullable=False))
    attributes: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # provenance (issue 12): null when drawn by hand; else the suggestion's source and version,
    # and whether the person changed it after accepting
    origin: str | None = Field(default=None, max_length=16)
    origin_version: str | None = Field(default=None, max_length=64)
    edited: bool | None = Field(default=None)


class SuggestionRejection(SQLModel, table=True):
    """A suggestion a person rejected on a document: never offered to them there again, and
    counted when the quality of suggestions is measured."""

    __tablename__ = "suggestion_rejections"
    __table_args__ = (UniqueConstraint("document_id", "user_id", "start", "end", "label",
                                       name="uq_rejections_doc_user_span"),)
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False))
    start: int
    end: int
    label: str = Field(max_length=64)
    source: str = Field(max_length=16)
    version: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class SuggestionExposure(SQLModel, table=True):
    """Whether a person's document was shown with suggestions, as the server answered when
    they asked for them (assist.record_shown): the report compares documents annotated with
    and without suggestions, and the rule that decides it (the setting, the control share, the
    honeypots) may change after the work is done. ``shown`` only ever goes from false to true."""

    __tablename__ = "suggestion_exposures"
    __table_args__ = (UniqueConstraint("document_id", "user_id", name="uq_exposures_document_user"),)
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False))
    shown: bool
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class AnnotationVersion(SQLModel, table=True):
    """Every saved version, kept forever: nothing an annotator saved is ever lost."""

    __tablename__ = "annotation_versions"
    __table_args__ = (UniqueConstraint("annotation_id", "version", name="uq_versions_annotation_version"),)
    id: int | None = Field(default=None, primary_key=True)
    annotation_id: int = Field(sa_column=Column(Integer, ForeignKey("annotations.id", ondelete="CASCADE"),
                                                nullable=False, index=True))
    version: int
    status: str = Field(max_length=16)
    # Self-contained snapshot: [{"start", "end", "label", "attributes"}] with label names.
    spans: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    saved_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    saved_by: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False))


class Reservation(SQLModel, table=True):
    """A document handed to an annotator by the queue; released when untouched for too long."""

    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("document_id", "user_id", name="uq_reservations_document_user"),)
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False, index=True))
    touched_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


# --- teams: honeypots and adjudication (issue 5) ---------------------------------------

GOLD_USER = "gold"  # system pseudo-user whose submitted annotation is a document's gold
DECISIONS = ("accepted", "added", "rejected")


class Honeypot(SQLModel, table=True):
    """A gold check: a document whose reference annotation is its gold annotation.

    Served to every annotator at the project's honeypot rate; never counts toward k.
    """

    __tablename__ = "honeypots"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, unique=True))
    created_by: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class GoldDecision(SQLModel, table=True):
    """One adjudicated span of a document: in gold or not, who had it, who was overruled.

    Rewritten whole each time the document's gold is saved (the gold annotation's own
    history keeps earlier versions).
    """

    __tablename__ = "gold_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('accepted', 'added', 'rejected')", name="ck_gold_decisions_decision"),
    )
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    gold_version: int
    start: int
    end: int
    label: str = Field(max_length=64)
    attributes: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    decision: str = Field(max_length=16)
    unanimous: bool = Field(default=False)
    # user ids: annotators who had this exact span, and annotators the decision went against
    supporters: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    overruled: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    decided_by: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False))
    decided_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


# --- security: project membership and log-in throttling (issue 6) ----------------------

class ProjectMember(SQLModel, table=True):
    """A lead or annotator who may see and work on a project (admins see every project).

    The rule that reads this table lives in db.can_access; nothing else decides access.
    """

    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_project_members_project_user"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class LoginFailure(SQLModel, table=True):
    """One failed log-in: counted per (username, client address) and per address over a window.

    Kept in the database so the limit holds across worker processes; rows older than the
    window are deleted as new failures arrive, and a successful log-in deletes its pair's.
    """

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_ip_failed_at", "ip", "failed_at"),
        Index("ix_login_failures_username_ip", "username", "ip"),
    )
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)  # as typed (cut to 64), whether or not such a user exists
    ip: str = Field(max_length=64)
    failed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))


JOB_KINDS = ("tokenize", "train", "predict")
JOB_STATES = ("queued", "running", "done", "failed")


class Job(SQLModel, table=True):
    """Background work (jobs.py): queued here so that it survives a restart, run by the one
    background process of a server (background.py). ``owner`` (host:pid) and ``heartbeat_at``
    say who runs it; a running job whose owner died goes back to the queue."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('tokenize', 'train', 'predict')", name="ck_jobs_kind"),
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="ck_jobs_state"),
        Index("ix_jobs_state_id", "state", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    project_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True))
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="queued", max_length=16)
    progress: float = Field(default=0.0)
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    owner: str | None = Field(default=None, max_length=128)
    created_by: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    heartbeat_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ModelVersion(SQLModel, table=True):
    """One trained model of a project (training.py): kept with its held-out scores and
    learning curve, in ``DATA_DIR/models/project-P/vN``. Which one suggests is the project's
    setting ``model`` (its number)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_model_versions_project_number"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    number: int
    source: str = Field(max_length=16)  # what it learned from: gold, majority or import
    scores: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    path: str = Field(max_length=512)
    job_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Prediction(SQLModel, table=True):
    """What a model version predicts on one document, computed in the background (never while
    a person waits): served as suggestions of source ``model``."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("model_version_id", "document_id", name="uq_predictions_version_document"),)
    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(sa_column=Column(
        Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False))
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    spans: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    uncertainty: float = Field(default=0.0)
