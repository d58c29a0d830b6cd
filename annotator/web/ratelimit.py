"""The log-in rate limit: failed log-ins counted in the database (LoginFailure).

Two limits over the last LOGIN_WINDOW_MINUTES: LOGIN_FAILURES per (username, client address)
and LOGIN_FAILURES_PER_IP per client address whatever the username (IPv6 addresses count
by their /64 network). Over either, the log-in form answers 429 with Retry-After without
checking the password. A successful log-in deletes its (username, address) failures. The
counts live in the database, so they hold across worker processes and on PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, timedelta

from flask import current_app, request
from sqlalchemy import delete, insert, select
from sqlmodel import Session

from annotator.storage.models import LoginFailure, utcnow

NAME_MAX = 64


def _name(username: str) -> str:
    """The name as counted: cut to the column's length, NUL (refused by PostgreSQL) replaced."""
    return username[:NAME_MAX].replace("\x00", "\ufffd")


def client_address() -> str:
    """The caller's address (the proxy's X-Forwarded-For when BEHIND_PROXY); IPv6 by /64."""
    raw = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _window() -> timedelta:
    return timedelta(minutes=current_app.config["LOGIN_WINDOW_MINUTES"])


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite keeps UTC, naive


def retry_after(s: Session, username: str, ip: str, now: datetime | None = None) -> int:
    """Seconds until a log-in may be tried again; 0 when it may be tried now."""
    now = now or utcnow()
    cutoff = now - _window()
    conf = current_app.config
    wait = 0.0
    for limit, where in (
        (
            conf["LOGIN_FAILURES"],
            [LoginFailure.ip == ip, LoginFailure.username == _name(username)],
        ),
        (conf["LOGIN_FAILURES_PER_IP"], [LoginFailure.ip == ip]),
    ):
        # The limit-th most recent failure in the window: once it is older than the window,
        # fewer than `limit` remain.
        t = s.execute(
            select(LoginFailure.failed_at)
            .where(LoginFailure.failed_at > cutoff, *where)
            .order_by(LoginFailure.failed_at.desc())
            .offset(limit - 1)
            .limit(1)
        ).scalar()
        if t is not None:
            wait = max(wait, (_aware(t) + _window() - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else 0


def record_failure(s: Session, username: str, ip: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    s.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - _window()))
    s.execute(
        insert(LoginFailure.__table__),
        [{"username": _name(username), "ip": ip, "failed_at": now}],
    )


def clear(s: Session, username: str, ip: str) -> None:
    s.execute(
        delete(LoginFailure).where(
            LoginFailure.ip == ip, LoginFailure.username == _name(username)
        )
    )


def wait_message(seconds: int) -> str:
    when = f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"
    return f"Too many failed log-ins; try again in {when}."
