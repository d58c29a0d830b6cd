"""Team settings of a project and the rules that use them: who may read whose annotation,
and when a honeypot (gold check) is mixed into an annotator's queue.

Settings live in Project columns (k, blind, reservation_minutes) and in Project.settings
(honeypot_*, suggestions, control_share, order); ``team_settings`` is the one place that knows the
defaults.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import exists, func, select
from sqlmodel import Session

from annotator.core.bodies import check_object
from annotator.core.errors import Forbidden, Invalid
from annotator.storage.models import Annotation, Document, Honeypot, Project, User

HONEYPOT_DEFAULTS = {"honeypot_rate": 0.0, "honeypot_threshold": 0.7, "honeypot_feedback": False}
# suggestions (issue 12): "off" shows none anywhere; control_share of each annotator's
# documents are shown without them (is_control), to measure what suggestions do to the work
ASSIST_DEFAULTS = {"suggestions": "on", "control_share": 0.1, "order": "document"}
SUGGESTIONS = ("off", "on")
# the queue's order among documents equally close to completion: by id, or the ones the
# model suggesting now is least certain about first (its stored predictions' uncertainty)
ORDERS = ("document", "uncertain")
EXTRA_DEFAULTS = {**HONEYPOT_DEFAULTS, **ASSIST_DEFAULTS}  # the ones kept in Project.settings
SETTING_KEYS = ("k", "blind", "reservation_minutes", *EXTRA_DEFAULTS)
# PATCH /projects/<id>/settings: field -> JSON types (bodies.check_object); ranges below
SETTING_FIELDS = {"k": (int,), "blind": (bool,), "reservation_minutes": (int,),
                  "honeypot_rate": (float,), "honeypot_threshold": (float,),
                  "honeypot_feedback": (bool,), "suggestions": (str,), "control_share": (float,),
                  "order": (str,)}


def team_settings(project: Project) -> dict:
    extra = project.settings or {}
    return {"k": project.k, "blind": project.blind, "reservation_minutes": project.reservation_minutes,
            **{key: extra.get(key, default) for key, default in EXTRA_DEFAULTS.items()}}


def _number(body: dict, key: str, lo: float, hi: float, whole: bool) -> float | int:
    value = body[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and whole:
        ok = isinstance(value, int)
    if not ok or not lo <= value <= hi:
        kind = "a whole number" if whole else "a number"
        raise Invalid(f"Field '{key}' must be {kind} from {lo:g} to {hi:g}, not {value!r}.",
                      [{"field": key, "reason": "out of range"}])
    return value


def update_settings(s: Session, project: Project, body) -> dict:
    """Apply a partial settings object (all checked before anything changes)."""
    check_object(body, SETTING_FIELDS, what="The settings")
    if not body:
        raise Invalid("Send one or more of: " + ", ".join(SETTING_KEYS) + ".",
                      [{"field": "body", "reason": "no settings"}])
    checked = dict(body)
    if "k" in body:
        checked["k"] = _number(body, "k", 1, 50, True)
    if "reservation_minutes" in body:
        checked["reservation_minutes"] = _number(body, "reservation_minutes", 1, 7 * 24 * 60, True)
    for key in ("honeypot_rate", "honeypot_threshold", "control_share"):
        if key in body:
            checked[key] = float(_number(body, key, 0, 1, False))
    if "suggestions" in body and body["suggestions"] not in SUGGESTIONS:
        raise Invalid(f"Field 'suggestions' must be one of {', '.join(SUGGESTIONS)}, "
                      f"not {body['suggestions']!r}.", [{"field": "suggestions", "reason": "unknown value"}])
    if "order" in body and body["order"] not in ORDERS:
        raise Invalid(f"Field 'order' must be one of {', '.join(ORDERS)}, not {body['order']!r}.",
                      [{"field": "order", "reason": "unknown value"}])
    for key in ("k", "blind", "reservation_minutes"):
        if key in checked:
            setattr(project, key, checked[key])
    extra_settings = dict(project.settings or {})
    extra_settings.update({key: checked[key] for key in EXTRA_DEFAULTS if key in checked})
    project.settings = extra_settings  # a new dict, so the JSON column is written
    s.add(project)
    s.flush()
    return team_settings(project)


# --- blindness ---------------------------------------------------------------------

def check_can_read(viewer: User, project: Project, owner: User, annotation: Annotation | None) -> None:
    """Leads read everything; annotators read their own, and others' submitted work only
    when the project is not blind. System users (gold, import) are for leads only."""
    if viewer.is_lead or viewer.id == owner.id:
        return
    if project.blind:
        raise Forbidden("This project is blind: annotators see only their own annotations.")
    if not owner.is_person or annotation is None or annotation.status != "submitted":
        raise Forbidden("Annotators may read only other annotators' submitted annotations.")


# --- honeypots in the queue ----------------------------------------------------------

def is_honeypot_clause():
    """SQL condition: the Document in the current query is a honeypot."""
    return exists().where(Honeypot.document_id == Document.id)


def honeypot_slot(position: int, rate: float, seed: str) -> bool:
    """Whether an annotator's document number ``position`` (0-based) is a honeypot slot.

    Each block of round(1/rate) documents holds one slot at a place derived from a hash
    of (seed, block): the rate is kept, and the annotator cannot tell which one it is.
    """
    if rate <= 0:
        return False
    every = max(1, round(1 / rate))
    block, place = divmod(position, every)
    digest = hashlib.sha256(f"{seed}:{block}".encode()).digest()
    return place == int.from_bytes(digest[:8], "big") % every


def is_control(user_id: int, document_id: int, share: float) -> bool:
    """Whether the document is one of the person's control documents (shown without
    suggestions): a hash of (user, document) placed in [0, 1) falls below ``share``. Stable
    (the same answer on every request and in every process), a different share of documents
    per person, and nothing the person can choose."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"control:{user_id}:{document_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < share


def unseen_honeypot(s: Session, project: Project, user: User) -> Document | None:
    return s.execute(
        select(Document).join(Honeypot, Honeypot.document_id == Document.id).where(
            Honeypot.project_id == project.id,
            ~exists().where(Annotation.document_id == Document.id, Annotation.user_id == user.id),
        ).order_by(Document.id).limit(1)).scalar_one_or_none()


def honeypot_due(s: Session, project: Project, user: User) -> bool:
    """Whether the caller's next document should be a honeypot (by the project's rate)."""
    rate = team_settings(project)["honeypot_rate"]
    if rate <= 0:
        return False
    position = s.execute(
        select(func.count()).select_from(Annotation).join(Document, Document.id == Annotation.document_id)
        .where(Document.project_id == project.id, Annotation.user_id == user.id,
               Annotation.status != "in_progress")).scalar_one()
    return honeypot_slot(position, rate, f"{project.id}:{user.id}")


def honeypots_enabled(project: Project) -> bool:
    return team_settings(project)["honeypot_rate"] > 0
