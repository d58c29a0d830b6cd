"""The demo project: five Korean news articles about Meta, Scale AI and Alexandr Wang."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from annotator.services.importing import decode_upload, import_records
from annotator.services.members import add_member
from annotator.services.projects import create_project
from annotator.services.users import create_user, generate_password
from annotator.storage.models import Project, User

DATA = Path(__file__).parent.parent / "data"
DEMO_NAME = "Meta & Scale AI news"
DEMO_USERS = {"lead": "lead", "alice": "annotator", "bob": "annotator"}


def corpus_files() -> list[Path]:
    return sorted((DATA / "corpus").glob("*.txt"))


def load_demo(s: Session) -> tuple[Project, dict[str, tuple[str, str | None]]]:
    """Create the project (once) and the demo users, all three its members.

    A user who exists already keeps their password (None in the answer): running the demo a
    second time must not lock out people who are working (`annotator users password NAME`
    sets a new one). New users get a fresh one-time password."""
    project = s.execute(select(Project).where(Project.name == DEMO_NAME)).scalar_one_or_none()
    if project is None:
        guidelines = (DATA / "guidelines-news.md").read_text(encoding="utf-8")
        project = create_project(s, DEMO_NAME, language="ko", guidelines=guidelines, k=2,
                                 label_set="news")
        items = [(i, {"id": p.stem, "text": decode_upload(p.read_bytes(), p.name)[0]})
                 for i, p in enumerate(corpus_files(), 1)]
        import_records(s, project, items)
    passwords: dict[str, tuple[str, str | None]] = {}
    for name, role in DEMO_USERS.items():
        user = s.execute(select(User).where(User.username == name)).scalar_one_or_none()
        pw = None
        if user is None:
            pw = generate_password()
            user = create_user(s, name, role, pw)
        add_member(s, project, user)
        passwords[name] = (user.role, pw)
    return project, passwords
