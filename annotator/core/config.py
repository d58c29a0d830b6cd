"""Layered configuration: defaults, then ANNOTATOR_* environment variables, then overrides.

Every key is documented in docs/configuration.md (a test checks it).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from annotator.core.errors import AnnotatorError

# key -> (default, type, description)
SETTINGS: dict[str, tuple[object, type, str]] = {
    "DATA_DIR": ("annotator-data", str, "Folder for the SQLite database and the session secret."),
    "DATABASE_URL": ("", str, "SQLAlchemy URL; default: SQLite file DATA_DIR/annotator.db."),
    "SECRET_KEY": ("", str, "Session-signing secret; default: generated once into DATA_DIR/secret_key."),
    "MAX_UPLOAD_MB": (256, int, "Largest request body in MiB (larger: 413)."),
    "MAX_DOCUMENT_CHARS": (1_000_000, int, "Largest document, in characters."),
    "EXPORT_DIR": ("exports", str, "Default output folder of `annotator export`."),
    "SESSION_HOURS": (12, int, "How long a log-in lasts."),
    "SECURE_COOKIES": (False, bool, "Send cookies only over HTTPS (set behind a TLS proxy)."),
    "BEHIND_PROXY": (False, bool, "Trust one reverse proxy's X-Forwarded-For and -Proto."),
    "LOGIN_FAILURES": (5, int, "Failed log-ins per username and client address before 429."),
    "LOGIN_FAILURES_PER_IP": (20, int, "Failed log-ins per client address (any name) before 429."),
    "LOGIN_WINDOW_MINUTES": (5, int, "The window the failed log-ins are counted over."),
    "REQUEST_TIMEOUT": (10, int, "Under `annotator serve`, seconds a request may take to arrive after "
                        "its first byte (then 408); a larger body must also average 64 KiB/s."),
    "BACKGROUND_TOKENIZE": (True, bool, "Under `annotator serve`, tokenize imported documents in a "
                            "background job."),
    "BACKGROUND_JOBS": (True, bool, "Under `annotator serve`, run one background process for the "
                        "queued jobs (tokenizing, training, predicting)."),
    "TRAIN_MAX_EPOCHS": (60, int, "The most passes over the training examples one model training makes "
                         "(`annotator train`, the train button); it stops sooner once the held-out "
                         "score has not improved for 8 passes, after at least 15."),
    "SQLITE_MAX_PAGES": (0, int, ("Cap an SQLite database at this many pages (PRAGMA "
                                  "max_page_count; unset: no cap). Read from the environment.")),
}
PREFIX = "ANNOTATOR_"


def _parse(key: str, raw: str, typ: type):
    if typ is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
    elif typ is int:
        try:
            value = int(raw)
            if value > 0:
                return value
        except ValueError:
            pass
    else:
        return raw
    raise AnnotatorError(f"{PREFIX}{key}={raw!r} is not a valid {'positive whole number' if typ is int else 'yes/no'}.")


def env_setting(key: str):
    """One setting from the environment alone, for code below the app (database engines)."""
    default, typ, _d = SETTINGS[key]
    raw = os.environ.get(PREFIX + key)
    return default if raw is None else _parse(key, raw, typ)


def secret_from_file(data_dir: str) -> str:
    """The session secret: 32 random bytes written once into DATA_DIR/secret_key (mode 0600).

    Written to a temporary file and linked into place, so several processes starting at
    once agree on one secret and none reads a half-written file.
    """
    path = Path(data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process was first: use its secret
        finally:
            tmp.unlink(missing_ok=True)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise AnnotatorError(f"The session secret in {path} is too short; "
                             "delete the file to make a new one.")
    return secret


def load_config(overrides: dict | None = None) -> dict:
    conf: dict = {key: default for key, (default, _t, _d) in SETTINGS.items()}
    for key, (_default, typ, _d) in SETTINGS.items():
        raw = os.environ.get(PREFIX + key)
        if raw is not None:
            conf[key] = _parse(key, raw, typ)
    conf.update(overrides or {})
    conf["DATA_DIR"] = os.path.abspath(conf["DATA_DIR"])
    if not conf["DATABASE_URL"]:
        conf["DATABASE_URL"] = "sqlite:///" + os.path.join(conf["DATA_DIR"], "annotator.db")
    if not conf["SECRET_KEY"]:
        conf["SECRET_KEY"] = secret_from_file(conf["DATA_DIR"])
    conf["MAX_CONTENT_LENGTH"] = int(conf["MAX_UPLOAD_MB"]) * 1024 * 1024
    conf["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=int(conf["SESSION_HOURS"]))
    conf["SESSION_COOKIE_HTTPONLY"] = True
    conf["SESSION_COOKIE_SAMESITE"] = "Lax"
    conf["SESSION_COOKIE_SECURE"] = bool(conf["SECURE_COOKIES"])
    conf["SESSION_COOKIE_NAME"] = "annotator_session"
    return conf
