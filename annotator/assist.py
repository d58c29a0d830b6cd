"""Suggestions for one person on one document, from the project's accepted spans (issue 12).

The rules are in ``suggest.py`` (pure); this module reads what they need: the document's
stored tokens (the background job's; never computed here, so a request never loads a
tokenizer), the project's entity labels, every (surface text, label) accepted in the project
(spans of submitted annotations: annotators', gold and imported), and the caller's own spans
on this document, which are both what suggestions must not overlap and, as "label all
occurrences", entries of the dictionary.
"""

from __future__ import annotations

from .annotations import annotation_state, labels_for
from .fastsql import Statement, connection_of
from .models import Document, User
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
    items = suggest(doc.text, doc.tokens, dictionary_entries(rows), taken, entity_labels)
    return {"items": items, "pending": False}
