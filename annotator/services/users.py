"""Users, password hashing (scrypt) and API tokens (stored as SHA-256 hashes, shown once)."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import update
from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from annotator.core.errors import Conflict, Invalid, NotFound
from annotator.storage.fastsql import Statement, connection_of
from annotator.storage.models import GOLD_USER, ROLES, SYSTEM_ROLE, ApiToken, User, utcnow

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" also matches before a final newline
TOKEN_PREFIX = "ann_"
MIN_PASSWORD = 8
_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to compare against when the user does not exist, so timing does not reveal names."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = generate_password_hash("not-a-password", method="scrypt")
    return _dummy_hash


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(s: Session, username: str, role: str, password: str) -> User:
    if not USERNAME_RE.fullmatch(username or ""):
        raise Invalid(f"Username {username!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-'.",
                      [{"field": "username", "reason": "invalid characters or length"}])
    check_role(role)
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"The password must have at least {MIN_PASSWORD} characters.",
                      [{"field": "password"}])
    if s.exec(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"User {username!r} already exists.", [{"field": "username"}])
    user = User(username=username, role=role, password_hash=hash_password(password))
    s.add(user)
    s.flush()
    return user


def check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid(f"Role {role!r} is not one of {', '.join(ROLES)}.", [{"field": "role"}])


def set_password(s: Session, user: User, password: str) -> None:
    """A new password; every log-in session of the user ends (API tokens stay: revoke them
    with ``annotator users token NAME --revoke``)."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"The password must have at least {MIN_PASSWORD} characters.",
                      [{"field": "password"}])
    user.password_hash = hash_password(password)
    s.add(user)
    end_sessions(s, user.id)


def end_sessions(s: Session, user_id: int) -> None:
    """Every session cookie of the user stops working (auth.py compares epochs); one UPDATE,
    so two workers ending sessions at once both count."""
    s.execute(update(User).where(User.id == user_id)
              .values(session_epoch=User.session_epoch + 1))


def authenticate(s: Session, username: str, password: str) -> User | None:
    # A name no user can have (e.g. with a NUL, which PostgreSQL refuses) is not looked up.
    ok_name = bool(USERNAME_RE.fullmatch(username or ""))
    user = s.exec(select(User).where(User.username == username)).first() if ok_name else None
    if user is None or not user.password_hash or not user.active or user.role == SYSTEM_ROLE:
        check_password_hash(_dummy(), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def get_user(s: Session, username: str) -> User:
    user = s.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"User {username!r} does not exist.")
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(s: Session, user: User) -> str:
    """Return a new token; only its hash is stored, so this is the one time it is shown."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), prefix=token[:12]))
    return token


def revoke_tokens(s: Session, user: User) -> int:
    n = 0
    for t in s.exec(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
        t.revoked_at = utcnow()
        s.add(t)
        n += 1
    return n


# Every API request runs one of these: compiled once, run on the driver's cursor (fastsql.py).
_BY_TOKEN = Statement("SELECT u.id, u.username, u.role, u.active FROM api_tokens t "
                      "JOIN users u ON u.id = t.user_id WHERE t.token_hash = :h AND t.revoked_at IS NULL "
                      "AND u.active = :yes AND u.role != 'system'")
_BY_SESSION = Statement("SELECT id, username, role, active FROM users WHERE id = :id "
                        "AND session_epoch = :epoch AND active = :yes AND role != 'system'")


def _caller(row) -> User | None:
    """A detached, read-only User for the request (no password hash loaded)."""
    if row is None:
        return None
    return User.model_construct(id=row[0], username=row[1], role=row[2], active=bool(row[3]))


def user_for_token(s, token: str) -> User | None:
    """``s``: a Session, or a read-only fastsql.RawConnection (db.reader())."""
    return _caller(_BY_TOKEN.first(connection_of(s), {"h": _token_hash(token), "yes": True}))


def session_user(s, user_id: int, epoch: int) -> User | None:
    """The caller of a session cookie: None once the user is inactive, or the session ended
    (logged out, or a new password) since the cookie's epoch."""
    return _caller(_BY_SESSION.first(connection_of(s), {"id": user_id, "epoch": epoch,
                                                        "yes": True}))


def gold_user(s: Session) -> User:
    """The system pseudo-user whose submitted annotation of a document is its gold."""
    user = s.exec(select(User).where(User.username == GOLD_USER, User.role == SYSTEM_ROLE)).first()
    if user is None:
        raise NotFound("The system user 'gold' is missing; run `annotator init`.")
    return user


# --- people, as an admin manages them (api_users.py, the People page) -----------------------

def people(s: Session) -> list[User]:
    """Every person (not the system users), by name."""
    return list(s.exec(select(User).where(User.role != SYSTEM_ROLE).order_by(User.username)))


def person_json(user: User) -> dict:
    return {"username": user.username, "role": user.role, "active": user.active,
            "created_at": user.created_at.isoformat() if user.created_at else None}


def get_person(s: Session, username: str) -> User:
    """A person by name; the system users (import, gold) are nobody's to manage."""
    user = get_user(s, username)
    if user.role == SYSTEM_ROLE:
        raise NotFound(f"User {username!r} does not exist.")
    return user


def add_person(s: Session, username: str, role: str) -> tuple[User, str]:
    """A new user with a one-time password, returned (the only time it is shown)."""
    password = generate_password()
    return create_user(s, username, role, password), password


def reset_password(s: Session, user: User) -> str:
    """A new one-time password for ``user``; every session of theirs ends."""
    password = generate_password()
    set_password(s, user, password)
    return password


def change_own_password(s: Session, user: User, current: str, new: str) -> None:
    """The caller's new password, given their current one (checked like a log-in)."""
    if authenticate(s, user.username, current or "") is None:
        raise Invalid("The current password is wrong.",
                      [{"field": "current", "reason": "wrong password"}])
    if new == current:
        raise Invalid("The new password is the current one.", [{"field": "new"}])
    try:
        set_password(s, user, new or "")
    except Invalid as e:
        raise Invalid(e.message, [{"field": "new", "reason": "too short"}]) from None


def set_role(s: Session, user: User, role: str, *, by: User) -> None:
    """Another person's role; nobody changes their own (an admin would lock themselves out)."""
    if role == user.role:
        return
    if user.id == by.id:
        raise Conflict("You cannot change your own role; ask another admin.",
                       [{"field": "role", "reason": "self"}])
    check_role(role)
    user.role = role
    s.add(user)


def set_active(s: Session, user: User, active: bool, *, by: User) -> None:
    """Deactivate (they can no longer log in or use a token; their work stays) or reactivate.
    Nobody deactivates themselves, so there is always an admin left who can undo it."""
    if not active and user.id == by.id:
        raise Conflict("You cannot deactivate yourself; ask another admin.",
                       [{"field": "active", "reason": "self"}])
    user.active = active
    s.add(user)
    if not active:
        end_sessions(s, user.id)
