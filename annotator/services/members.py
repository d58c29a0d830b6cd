"""Project membership: who may see and work on a project (the rule itself is db.can_access).

Admins see every project without being members; leads and annotators see the projects they
are members of. A lead or admin who creates a project through the API becomes a member.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlmodel import Session

from annotator.core.errors import Invalid, NotFound
from annotator.services.users import USERNAME_RE
from annotator.storage.models import Project, ProjectMember, User

MAX_NAMES = 1000  # usernames one POST .../members adds


def members(s: Session, project: Project) -> list[User]:
    return list(
        s.execute(
            select(User)
            .join(ProjectMember, ProjectMember.user_id == User.id)
            .where(ProjectMember.project_id == project.id)
            .order_by(User.username)
        ).scalars()
    )


def member_json(user: User) -> dict:
    return {"username": user.username, "role": user.role, "active": user.active}


def add_member(s: Session, project: Project, user: User) -> bool:
    """Make ``user`` a member; False when they already were."""
    if not user.is_person:
        raise Invalid(
            f"{user.username!r} is a built-in pseudo-user and cannot be a member.",
            [{"field": "usernames", "username": user.username, "reason": "pseudo-user"}],
        )
    found = s.execute(
        select(ProjectMember.id).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
        )
    ).first()
    if found is not None:
        return False
    s.add(ProjectMember(project_id=project.id, user_id=user.id))
    s.flush()
    return True


def add_members(s: Session, project: Project, usernames) -> list[str]:
    """Add every named user, or none of them: unknown names and pseudo-users are refused
    together. Returns the names that were not members before."""
    if (
        not isinstance(usernames, list)
        or not usernames
        or not all(isinstance(n, str) for n in usernames)
    ):
        raise Invalid(
            "'usernames' must be a non-empty list of usernames.", [{"field": "usernames"}]
        )
    if len(usernames) > MAX_NAMES:  # one IN (...) per call; PostgreSQL's driver takes 65,535
        raise Invalid(
            f"At most {MAX_NAMES} usernames per call ({len(usernames)} were sent); send them in "
            "several calls.",
            [{"field": "usernames", "reason": "too many", "limit": MAX_NAMES, "got": len(usernames)}],
        )
    lookup = {n for n in usernames if USERNAME_RE.fullmatch(n)}  # others cannot exist (or a NUL)
    found = {
        u.username: u for u in s.execute(select(User).where(User.username.in_(lookup))).scalars()
    }
    problems = [
        {"field": "usernames", "username": n, "reason": "no such user"}
        for n in dict.fromkeys(usernames)
        if n not in found
    ]
    problems += [
        {"field": "usernames", "username": u.username, "reason": "pseudo-user"}
        for u in found.values()
        if not u.is_person
    ]
    if problems:
        first = problems[0]
        what = (
            "does not exist" if first["reason"] == "no such user" else "is a built-in pseudo-user"
        )
        raise Invalid(f"User {first['username']!r} {what}; nobody was added.", problems)
    return [n for n in dict.fromkeys(usernames) if add_member(s, project, found[n])]


def remove_member(s: Session, project: Project, username: str, *, by: User | None = None) -> None:
    """Remove a member (their saved work stays). A lead cannot remove themselves."""
    user = None
    if USERNAME_RE.fullmatch(username):
        user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is not None and by is not None and user.id == by.id and not by.is_admin:
        raise Invalid(
            "You cannot remove yourself from a project; ask another lead or an admin.",
            [{"field": "username", "username": username}],
        )
    if (
        user is None
        or s.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
            )
        ).rowcount
        == 0
    ):
        raise NotFound(
            f"{username!r} is not a member of this project.",
            [{"field": "username", "username": username}],
        )
