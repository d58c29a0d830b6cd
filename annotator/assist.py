"""Suggestions for one person on one document, from the project's accepted spans (issue 12).

The rules are in ``suggest.py`` (pure); this module reads what they need: the document's
stored tokens (the background job's; never computed here, so a request never loads a
tokenizer), the project's entity labels, every (surface text, label) accepted in the project
(spans of submitted annotations: annotators', gold and imported), and the caller's own spans
on this document, which are both what suggestions must not overlap and, as "label all
occurrences", entries of the dictionary.
"""

from __future__ import annotations

from sqlalchemy import JSON

from .annotations import annotation_state, labels_for
from .fastsql import Statement, connection_of
from .models import Document, User
from .patterns import match, version_of
from .spans import ENTITY
from .suggest import Taken, dictionary_entries, suggest

# (surface, label, count) of every span of a submitted annotation in the project; substr counts
# characters on SQLite and PostgreSQL alike, i.e. code points, as our offsets do.
_ACCEPTED = Statement(
    'SELECT substr(d.text, s."start" + 1, s."end" - s."start") AS surface, l.name, COUNT(*) '
    "FROM spans s JOIN annotations a ON a.id = s.annotation_id "
    "JOIN documents d ON d.id = a.document_id JOIN labels l ON l.id = s.label_id "
    "WHERE d.project_id = :p AND a.status = 'submitted' AND l.kind = :kind "
    "GROUP BY surface, l.name")
_SETTINGS = Statement("SELECT settings FROM projects WHERE id = :p", results={0: JSON()})


def suggestions_for(reader, doc: Document, user: User) -> dict:
    """``{"items": [...], "pending": bool}``; pending: the document's tokens are not stored
    yet (the background job is on its way), so nothing can be matched on them."""
    if doc.tokens is None:
        return {"items": [], "pending": True}
    conn = connection_of(reader)
    specs, _ids = labels_for(conn, doc.project_id)
    # a label whose spans need an attribute value cannot be suggested without one
    entity_labels = {name for name, spec in specs.items() if spec.kind == ENTITY
                     and not any(a.get("required") for a in spec.attributes.values())}
    mine = annotation_state(conn, doc, user)["spans"]
    rows = [(surface, label, n) for surface, label, n in
            _ACCEPTED.all(conn, {"p": doc.project_id, "kind": ENTITY})]
    rows += [(doc.text[sp["start"]:sp["end"]], sp["label"], 1) for sp in mine
             if sp["label"] in entity_labels]
    taken = [Taken(sp["start"], sp["end"], sp["label"], sp["label"] in entity_labels)
             for sp in mine]
    settings = _SETTINGS.first(conn, {"p": doc.project_id})[0] or {}
    patterns = settings.get("patterns") or []
    found = match(doc.text, doc.tokens, patterns) if patterns else []
    items = suggest(doc.text, doc.tokens, dictionary_entries(rows), taken, entity_labels,
                    pattern_matches=found, patterns_version=version_of(patterns) if patterns else "")
    return {"items": items, "pending": False}


# --- the project's patterns ------------------------------------------------------------------

def entity_labels_of(s, project_id: int) -> set[str]:
    specs, _ids = labels_for(connection_of(s), project_id)
    return {name for name, spec in specs.items() if spec.kind == ENTITY}


def set_patterns(s, project, data: bytes) -> dict:
    """Replace the project's patterns by the JSON Lines ``data`` (all or nothing; an empty file
    removes them). Invalid names the first line that is not a pattern."""
    from .bodies import Utf8Error
    from .errors import Invalid
    from .patterns import PatternError, parse_patterns

    try:
        patterns = parse_patterns(data, entity_labels_of(s, project.id))
    except PatternError as e:
        raise Invalid(f"Nothing was stored: line {e.line} ({e.field}): {e.reason}.",
                      [{"line": e.line, "field": e.field, "reason": e.reason}]) from None
    except Utf8Error as e:
        raise Invalid(f"Nothing was stored: line {e.line} is not UTF-8 (byte {e.byte}).",
                      [{"line": e.line, "field": "body", "reason": "not UTF-8"}]) from None
    project.settings = {**(project.settings or {}), "patterns": patterns}  # a new dict: written
    s.add(project)
    return patterns_json(project)


def patterns_json(project) -> dict:
    patterns = (project.settings or {}).get("patterns") or []
    return {"items": patterns, "total": len(patterns),
            "version": version_of(patterns) if patterns else None}
