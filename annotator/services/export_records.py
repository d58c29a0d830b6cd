"""Database -> export records, in batches (three queries per batch, no N+1).

``iter_records(s, project, source="all", include_unfinished=False)`` yields the
plain records that :mod:`annotator.core.exporters` consumes, one per exported
annotation, documents in id order:

``source``
    ``all``                every annotation (persons as ``annotator:NAME``, the
                           import pseudo-user as ``import``, a ``gold`` user as ``gold``)
    ``annotator:NAME``     the annotations of user NAME
    ``import``             annotations that came with imported documents
    ``gold``               annotations of the system user ``gold`` (settled gold)
    ``majority``           per document, the spans chosen by more than half of its
                           annotators (persons), compared on start, end, label and
                           attributes; one record per document with >= 1 such annotator
    ``best``               per document, what a model should learn from: its gold where a
                           lead settled it, else the majority of its annotators, else its
                           imported spans; one record per document (``source`` says which)

Skipped annotations never appear; in-progress ones only with
``include_unfinished``.  Documents nobody annotated produce no record.
"""
from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator

from orjson import Fragment
from sqlalchemy import select
from sqlmodel import Session

from annotator.core.errors import BadRequest, NotFound
from annotator.services.tokens import word_list
from annotator.storage.db import json_loads
from annotator.storage.fastsql import Statement
from annotator.storage.models import GOLD_USER, IMPORT_USER, SYSTEM_ROLE, Label, Project, User

BATCH = 500
SOURCES = ("all", "gold", "import", "majority", "best")
TRAINING_SOURCE = "best"  # what to train on: one record per document (all: every copy of it)


def export_labels(s: Session, project: Project) -> list[dict]:
    rows = s.execute(select(Label).where(Label.project_id == project.id).order_by(Label.position)).scalars()
    return [{"name": lab.name, "kind": lab.kind, "attributes": lab.attributes or {}} for lab in rows]


def export_words(project: Project) -> list[str]:
    """User dictionary for the tokenizer: the project's word list."""
    return word_list(project)


def check_source(s: Session, source: str) -> str:
    """Validate ``source``; returns it.  Raises BadRequest/NotFound with one clear sentence."""
    if source in SOURCES:
        return source
    if source.startswith("annotator:") and source.split(":", 1)[1]:
        name = source.split(":", 1)[1]
        if s.execute(select(User.id).where(User.username == name)).first() is None:
            raise NotFound(f"User {name!r} does not exist.", [{"field": "source"}])
        return source
    raise BadRequest(f"'source' must be one of {', '.join(SOURCES)} or annotator:NAME, not {source!r}.",
                     [{"field": "source"}])


def _source_of(username: str, role: str) -> tuple[str, str]:
    if role == SYSTEM_ROLE:
        return (username, username)  # "import", "gold"
    return (f"annotator:{username}", username)


def _json(raw):
    """A JSON column value from the driver: text from SQLite (``{}`` is by far the most
    common span attributes value and is not parsed), already a value from psycopg."""
    if isinstance(raw, str):
        return {} if raw == "{}" else json_loads(raw)
    return raw


def _user_clause(source: str) -> tuple[str, dict]:
    if source.startswith("annotator:"):
        return "AND u.username = :who ", {"who": source.split(":", 1)[1]}
    if source in ("gold", "import"):
        return ("AND u.username = :who AND u.role = 'system' ",
                {"who": GOLD_USER if source == "gold" else IMPORT_USER})
    if source == "majority":
        return "AND u.role != 'system' ", {}
    return "", {}


@functools.cache
def _statements(statuses: tuple[str, ...], users: str, tokens: bool, json_text: bool,
                provenance: bool = False) -> tuple:
    """The three statements of a batch (fastsql: the rows go to plain tuples without
    SQLAlchemy's per-row result processing, profiled at ~40% of a 10,000-document export)."""
    status_in = ", ".join(f"'{x}'" for x in statuses)  # constants from STATUSES, not input
    text_cols = "JSON_TEXT(text), meta" if json_text else \
        "text, " + ("tokens" if tokens else "NULL") + ", meta"
    docs = Statement(f"SELECT id, external_id, {text_cols} FROM documents "
                     "WHERE project_id = :p AND id > :after ORDER BY id LIMIT :n")
    anns = Statement(
        "SELECT a.id, a.document_id, a.status, u.username, u.role FROM annotations a "
        "JOIN users u ON u.id = a.user_id JOIN documents d ON d.id = a.document_id "
        f"WHERE d.project_id = :p AND a.document_id > :lo AND a.document_id <= :hi "
        f"AND a.status IN ({status_in}) {users}ORDER BY a.document_id, u.username")
    origin_cols = ", s.origin, s.origin_version, s.edited" if provenance else ""
    spans = Statement(
        f'SELECT s.annotation_id, s."start", s."end", l.name, s.attributes{origin_cols} FROM spans s '
        "JOIN labels l ON l.id = s.label_id JOIN annotations a ON a.id = s.annotation_id "
        "JOIN users u ON u.id = a.user_id JOIN documents d ON d.id = a.document_id "
        f"WHERE d.project_id = :p AND a.document_id > :lo AND a.document_id <= :hi "
        f"AND a.status IN ({status_in}) {users}"
        'ORDER BY s.annotation_id, s."start", s."end", l.name')
    return docs, anns, spans


def iter_records(s: Session, project: Project, source: str = "all",
                 include_unfinished: bool = False, batch: int = BATCH,
                 tokens: bool = True, json_text: bool = False,
                 provenance: bool = False) -> Iterator[dict]:
    """``tokens=False`` leaves the stored tokens unread (``record["tokens"]`` is None).

    ``provenance=True`` gives each span its ``origin``: ``{"source": "hand"}``, or the
    suggestion it was accepted from, ``{"source", "version", "edited"}`` (not for ``majority``,
    whose spans are several people's: check_provenance).

    ``json_text=True`` (implies ``tokens=False``; for ``exporters.jsonl.plain_line``) gives
    each document's ``text``, where the database quotes it (SQLite; fastsql ``JSON_TEXT``),
    as an ``orjson.Fragment`` of its JSON string literal, never decoded into ``str``, with
    ``text_length`` (code points) beside it; elsewhere as ``str``."""
    check_source(s, source)
    statuses = ("submitted", "in_progress") if include_unfinished else ("submitted",)
    users, user_params = _user_clause(source)
    q_docs, q_anns, q_spans = _statements(statuses, users, tokens and not json_text, json_text,
                                          provenance)
    conn = s.connection()
    last_id = 0
    while True:
        docs = q_docs.all(conn, {"p": project.id, "after": last_id, "n": batch})
        if not docs:
            return
        rng = {"p": project.id, "lo": last_id, "hi": docs[-1][0], **user_params}
        last_id = docs[-1][0]
        anns = q_anns.all(conn, rng)
        spans_by_ann: dict[int, list[dict]] = {}
        if anns:
            for ann_id, start, end, label, attrs, *origin in q_spans.all(conn, rng):
                span = {"start": start, "end": end, "label": label, "attributes": _json(attrs) or {}}
                if provenance:
                    span["origin"] = origin_of(*origin)
                spans_by_ann.setdefault(ann_id, []).append(span)
        anns_by_doc: dict[int, list] = {}
        for a in anns:
            anns_by_doc.setdefault(a[1], []).append(a)
        for doc_id, external_id, text, extra, meta in docs:  # extra: tokens, or the length
            doc_anns = anns_by_doc.get(doc_id)
            if not doc_anns:
                continue
            if json_text:
                document = {"id": doc_id, "external_id": external_id,
                            "text": Fragment(text) if isinstance(text, bytes) else text,
                            "text_length": extra, "meta": _json(meta) or {}}
                toks = None
            else:
                toks = _json(extra) if extra is not None else None
                document = {"id": doc_id, "external_id": external_id, "text": text,
                            "meta": _json(meta) or {}}
            if source == "best":
                doc_anns, source_here = _best_of(doc_anns)
            else:
                source_here = source
            if source_here == "majority":
                yield {"document": document, "source": "majority", "annotator": "majority",
                       "status": "submitted" if all(a[2] == "submitted" for a in doc_anns) else "in_progress",
                       "spans": majority_spans([spans_by_ann.get(a[0], []) for a in doc_anns]),
                       "tokens": toks, "annotators": len(doc_anns)}
                continue
            for ann_id, _, status, username, role in doc_anns:
                src, who = _source_of(username, role)
                yield {"document": document, "source": src, "annotator": who, "status": status,
                       "spans": spans_by_ann.get(ann_id, []), "tokens": toks}


def _best_of(doc_anns: list) -> tuple[list, str]:
    """Of one document's annotations (id, document, status, username, role): its gold, else
    its people's (for their majority), else its imported ones."""
    gold = [a for a in doc_anns if a[4] == SYSTEM_ROLE and a[3] == GOLD_USER]
    people = [a for a in doc_anns if a[4] != SYSTEM_ROLE]
    if gold:
        return gold, "gold"
    if people:
        return people, "majority"
    return [a for a in doc_anns if a[4] == SYSTEM_ROLE and a[3] == IMPORT_USER], "import"


def origin_of(source: str | None, version: str | None, edited: bool | None) -> dict:
    """A span's provenance in an export: drawn by hand, or accepted from a suggestion."""
    if not source:
        return {"source": "hand"}
    return {"source": source, "version": version or "", "edited": bool(edited)}


PROVENANCE_FORMATS = ("jsonl",)


def check_provenance(fmt: str, source: str) -> None:
    """Provenance goes only where it can be carried, and means something."""
    if fmt not in PROVENANCE_FORMATS:
        raise BadRequest(f"Provenance is exported with format jsonl only ({fmt} has no place "
                         "for it).", [{"field": "provenance"}])
    if source in ("majority", "best"):
        raise BadRequest("Provenance is per annotator: a majority span was drawn or accepted by "
                         "several people, each their own way. Export --source all (every "
                         "annotator's copy), annotator:NAME, gold or import with provenance.",
                         [{"field": "provenance"}])


def majority_spans(annotations: list[list[dict]]) -> list[dict]:
    """Spans (start, end, label, attributes) present in more than half of the annotations.

    Entity-kind majority spans cannot overlap: two overlapping spans each chosen by
    more than half of the annotators would need one annotator choosing both."""
    import json

    n = len(annotations)
    votes: Counter = Counter()
    keep: dict = {}
    for spans in annotations:
        seen = set()
        for sp in spans:
            key = (sp["start"], sp["end"], sp["label"], json.dumps(sp.get("attributes") or {}, sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            votes[key] += 1
            keep.setdefault(key, sp)
    return [keep[k] for k in sorted(votes) if votes[k] * 2 > n]

