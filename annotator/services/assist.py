"""Suggestions for one person on one document, from the project's accepted spans, its
patterns and its model's stored predictions (issue 12).

The rules are in ``suggest.py`` (pure); this module reads what they need: the document's
stored tokens (the background job's; never computed here, so a request never loads a
tokenizer), the project's entity labels, every (surface text, label) accepted in the project
(spans of submitted annotations: annotators', gold and imported), and the caller's own spans
on this document, which are both what suggestions must not overlap and, as "label all
occurrences", entries of the dictionary.

Anchoring safeguards: with the project's ``suggestions`` off, on the person's control
documents (routing.is_control) and on honeypots, the answer is empty and says so, and the
page offers nothing of its own either. A honeypot answers exactly like a control document,
so that nobody can tell a gold check by its suggestions.
"""

from __future__ import annotations

import threading

from sqlalchemy import JSON, Boolean, DateTime

from annotator.core.patterns import match, version_of
from annotator.core.spans import ENTITY
from annotator.core.suggest import (
    ORG,
    Taken,
    dictionary_entries,
    patch_entries,
    prefixes_of,
    subtract_counts,
    suggest,
    unwanted_pairs,
    variants_of,
)
from annotator.services.annotations import annotation_state, labels_for
from annotator.storage.fastsql import Statement, connection_of
from annotator.storage.models import SYSTEM_ROLE, Document, User

# (surface, label, count) of every span of a submitted annotation in the project; substr counts
# characters on SQLite and PostgreSQL alike, i.e. code points, as our offsets do.
_ACCEPTED = Statement(
    'SELECT substr(d.text, s."start" + 1, s."end" - s."start") AS surface, l.name, COUNT(*) '
    "FROM spans s JOIN annotations a ON a.id = s.annotation_id "
    "JOIN documents d ON d.id = a.document_id JOIN labels l ON l.id = s.label_id "
    "WHERE d.project_id = :p AND a.status = 'submitted' AND l.kind = :kind "
    "GROUP BY surface, l.name")
# (surface, label, count) of the suggestions people rejected in the project, leaving out a
# rejection of the bounds, not of the label: the same person's annotation of the document has a
# span of that label over it ("Meta" rejected inside "Meta Superintelligence Labs" says nothing
# against "Meta" as an ORG; counted, three such rejections hid every "Meta" of the next article)
_BOUNDS_ONLY = ("EXISTS (SELECT 1 FROM annotations a JOIN spans s ON s.annotation_id = a.id "
                "JOIN labels l ON l.id = s.label_id WHERE a.document_id = r.document_id "
                'AND a.user_id = r.user_id AND l.name = r.label AND s."start" < r."end" '
                'AND r."start" < s."end")')
_REJECTED_PAIRS = Statement(
    'SELECT substr(d.text, r."start" + 1, r."end" - r."start") AS surface, r.label, COUNT(*) '
    "FROM suggestion_rejections r JOIN documents d ON d.id = r.document_id "
    f"WHERE d.project_id = :p AND NOT {_BOUNDS_ONLY} GROUP BY surface, r.label")
# Independence (issue 23): for a person on document d, nothing derives from another person's
# annotation of d. Their submitted spans on d (people's: gold and imported spans stay) and
# their rejections on d are taken out of the project's counts for this request.
_OTHERS_ON_DOCUMENT = Statement(
    'SELECT substr(d.text, s."start" + 1, s."end" - s."start") AS surface, l.name, COUNT(*) '
    "FROM spans s JOIN annotations a ON a.id = s.annotation_id "
    "JOIN documents d ON d.id = a.document_id JOIN labels l ON l.id = s.label_id "
    "JOIN users u ON u.id = a.user_id "
    "WHERE a.document_id = :d AND a.status = 'submitted' AND a.user_id <> :u AND u.role <> :system "
    "AND l.kind = :kind GROUP BY surface, l.name")
_OTHERS_REJECTED_ON_DOCUMENT = Statement(
    'SELECT substr(d.text, r."start" + 1, r."end" - r."start") AS surface, r.label, COUNT(*) '
    "FROM suggestion_rejections r JOIN documents d ON d.id = r.document_id "
    f"WHERE r.document_id = :d AND r.user_id <> :u AND NOT {_BOUNDS_ONLY} GROUP BY surface, r.label")
# with the newest one's time: ids come again after a reset (PostgreSQL's RESTART IDENTITY)
_STATE_OF_REJECTIONS = Statement(
    "SELECT COUNT(*), MAX(r.id), MAX(r.created_at) FROM suggestion_rejections r JOIN documents d "
    "ON d.id = r.document_id WHERE d.project_id = :p")
_SETTINGS = Statement("SELECT settings FROM projects WHERE id = :p", results={0: JSON()})
_PREDICTED = Statement("SELECT p.spans, v.id, v.created_at FROM predictions p JOIN model_versions v "
                       "ON v.id = p.model_version_id WHERE v.project_id = :p AND v.number = :n "
                       "AND p.document_id = :d", results={0: JSON()})
_HONEYPOT = Statement("SELECT 1 FROM honeypots WHERE document_id = :d")
_REJECTED = Statement('SELECT "start", "end", label FROM suggestion_rejections '
                      "WHERE document_id = :d AND user_id = :u")
_REJECT = Statement('INSERT INTO suggestion_rejections (document_id, user_id, "start", "end", label, '
                    "source, version, created_at) VALUES (:d, :u, :s, :e, :l, :src, :v, :now) "
                    'ON CONFLICT (document_id, user_id, "start", "end", label) DO NOTHING',
                    now=DateTime(timezone=True))


def suggestions_for(reader, doc: Document, user: User) -> dict:
    """``{"items": [...], "pending": bool, "control": bool, "shown": bool}``; pending: the
    document's tokens are not stored yet (the background job is on its way), so nothing can
    be matched on them; control: a control document (or a honeypot, which answers the same);
    shown: whether this document is shown with suggestions at all (false also when the
    project's ``suggestions`` are off), which the page reads before offering its own."""
    from annotator.services.routing import ASSIST_DEFAULTS, is_control

    conn = connection_of(reader)
    settings = {**ASSIST_DEFAULTS, **(_SETTINGS.first(conn, {"p": doc.project_id})[0] or {})}
    if settings["suggestions"] == "off":
        return {"items": [], "pending": False, "control": False, "shown": False}
    if (_HONEYPOT.first(conn, {"d": doc.id}) is not None
            or is_control(user.id, doc.id, settings["control_share"])):
        return {"items": [], "pending": False, "control": True, "shown": False}
    if doc.tokens is None:
        return {"items": [], "pending": True, "control": False, "shown": True}
    specs, _ids = labels_for(conn, doc.project_id)
    # a label whose spans need an attribute value cannot be suggested without one
    entity_labels = {name for name, spec in specs.items() if spec.kind == ENTITY
                     and not any(a.get("required") for a in spec.attributes.values())}
    state = annotation_state(conn, doc, user)
    mine = state["spans"]
    project_state = _project_state(conn, doc.project_id)
    rows, entries, prefixes, unwanted, rejected_rows, variants = _project_dictionary(
        conn, doc.project_id, tuple(sorted(specs)), project_state)
    tables = [variants]
    params = {"d": doc.id, "u": user.id}
    others = [tuple(r) for r in _OTHERS_ON_DOCUMENT.all(conn, {**params, "system": SYSTEM_ROLE,
                                                                 "kind": ENTITY})]
    others_rejected = [tuple(r) for r in _OTHERS_REJECTED_ON_DOCUMENT.all(conn, params)]
    if others or others_rejected:  # a colleague's work on this document suggests nothing here
        rows = subtract_counts(rows, others)
        entries = patch_entries(entries, rows, {surface for surface, _l, _n in others})
        unwanted = unwanted_pairs(rows, subtract_counts(rejected_rows, others_rejected))
        if others:
            tables = [variants_of(entries)]  # their names on this document imply none here
    own = [(doc.text[sp["start"]:sp["end"]], sp["label"], 1) for sp in mine
           if sp["label"] in entity_labels]
    if own:  # "label all occurrences": what the caller drew here counts too, whatever others rejected
        mine_entries = dictionary_entries(own)
        entries = patch_entries(entries, rows + own, set(mine_entries))  # only their texts change
        prefixes = prefixes | prefixes_of(mine_entries)
        unwanted = unwanted - {(surface, label) for surface, label, _n in own}
        orgs = {s for s, (label, _x) in entries.items() if label == ORG}
        tables = [*tables, variants_of(mine_entries, orgs)]
    taken = [Taken(sp["start"], sp["end"], sp["label"], sp["label"] in entity_labels)
             for sp in mine]
    patterns = settings.get("patterns") or []
    found = match(doc.text, doc.tokens, patterns) if patterns else []
    rejected = {tuple(r) for r in _REJECTED.all(conn, {"d": doc.id, "u": user.id})}
    model = settings.get("model")
    predicted = (_PREDICTED.first(conn, {"p": doc.project_id, "n": model, "d": doc.id})
                 if model is not None else None)
    withheld = None
    # a version is known by its id and when it was made (an id comes again after a reset)
    version = (predicted[1], str(predicted[2])) if predicted else None
    if predicted and state["status"] != "submitted" and doc.id in _trained_on(conn, version):
        predicted, withheld = None, "trained on this document"  # it would say back what it learned
    if predicted:  # once reviewed enough, a label suggests by what annotators did with it
        decided = _live_decisions(conn, doc.project_id, model, version, project_state)
        if decided:
            predicted = ([{**m, "offered": decided.get(m["label"], m.get("offered", True))}
                          for m in predicted[0]], *predicted[1:])
    variants_off = _variants_off(conn, doc.project_id, project_state)
    items = suggest(doc.text, doc.tokens, entries, taken, entity_labels,
                    pattern_matches=found, patterns_version=version_of(patterns) if patterns else "",
                    rejected=rejected, prefixes=prefixes,
                    model_spans=predicted[0] if predicted else (), model_version=f"v{model}",
                    unwanted=unwanted, variants=tables, variants_off=variants_off)
    out = {"items": items, "pending": False, "control": False, "shown": True}
    if withheld:
        out["withheld"] = {"model": withheld}
    return out


_TRAINED_ON = Statement("SELECT scores FROM model_versions WHERE id = :v", results={0: JSON()})
_trained: dict[tuple, frozenset] = {}


def _trained_on(conn, version: tuple) -> frozenset:
    """The documents a model version learned from (a version never changes: kept per process,
    per database)."""
    key = (str(conn.engine.url), version)
    found = _trained.get(key)
    if found is None:
        from annotator.services.learn import TRAINED_ON

        row = _TRAINED_ON.first(conn, {"v": version[0]})
        found = _remember(_trained, key, frozenset(((row[0] if row else None) or {}).get(TRAINED_ON) or ()))
    return found


# The variants source's own live-precision rule (core/live.py): per label, over its last 20
# reviewed suggestions in the project; until then it suggests.
_VARIANT_SPANS = Statement(
    "SELECT a.submitted_at, l.name, s.edited FROM spans s JOIN annotations a ON a.id = s.annotation_id "
    "JOIN documents d ON d.id = a.document_id JOIN labels l ON l.id = s.label_id "
    "WHERE d.project_id = :p AND a.status = 'submitted' AND s.origin = 'variants'",
    results={0: DateTime(timezone=True)})
_VARIANT_REJECTIONS = Statement(
    "SELECT r.created_at, r.label FROM suggestion_rejections r JOIN documents d ON d.id = r.document_id "
    "WHERE d.project_id = :p AND r.source = 'variants'", results={0: DateTime(timezone=True)})
_variants_live: dict[tuple, frozenset] = {}


def _variants_off(conn, project_id: int, state: tuple) -> frozenset:
    """The labels whose variants fell below the bar (live.live_labels), kept until a
    submission or a rejection in the project changes them."""
    from annotator.core.live import ACCEPTED, EDITED, REJECTED, WINDOW, live_labels

    key = (str(conn.engine.url), project_id, state)
    found = _variants_live.get(key)
    if found is None:
        events = [(when, label, EDITED if edited else ACCEPTED)
                  for when, label, edited in _VARIANT_SPANS.all(conn, {"p": project_id})]
        events += [(when, label, REJECTED) for when, label in _VARIANT_REJECTIONS.all(conn, {"p": project_id})]
        labels = {label for _w, label, _o in events}
        live = live_labels(events, labels, labels)
        found = _remember(_variants_live, key, frozenset(
            label for label, x in live.items() if x["reviewed"] >= WINDOW and not x["active"]))
    return found


_live: dict[tuple, dict] = {}


def _live_decisions(conn, project_id: int, number: int, version: tuple, state: tuple) -> dict[str, bool]:
    """{label: suggests} for the labels of version ``number`` reviewed often enough for their
    live precision to decide (learn.live_of; the others keep the held-out decision stored with
    each prediction), kept until a submission or a rejection in the project changes them."""
    from annotator.core.live import WINDOW
    from annotator.services.learn import live_of

    key = (str(conn.engine.url), version, state)
    found = _live.get(key)
    if found is None:
        row = _TRAINED_ON.first(conn, {"v": version[0]})
        live = live_of(conn, project_id, number, (row[0] if row else None) or {})
        found = _remember(_live, key, {label: x["active"] for label, x in live.items()
                                       if x["reviewed"] >= WINDOW})
    return found


# --- whether a document was shown with suggestions ---------------------------------------
#
# Recorded by the server when it answers GET .../suggestions, per (document, person): the
# server knows what it answered, whatever the client (the page, a script), and the report
# needs it after the settings that decided it may have changed. ``shown`` is the document's
# arm (with suggestions: on, and neither control nor honeypot), recorded even while tokens are
# pending, because the page's own "other occurrences" are on in that arm. It only goes from
# false to true (suggestions turned on later, and seen): a person who saw suggestions on a
# document once was anchored by them. Nothing is written when the row already says as much,
# so only the first request per document and person writes. A person who never asked (a
# script that only saves) has no row and saw none: counted as without.

_SHOWN = Statement("SELECT shown FROM suggestion_exposures WHERE document_id = :d AND user_id = :u")
_RECORD_SHOWN = Statement(
    "INSERT INTO suggestion_exposures (document_id, user_id, shown, created_at) "
    "VALUES (:d, :u, :shown, :now) ON CONFLICT (document_id, user_id) "
    "DO UPDATE SET shown = (suggestion_exposures.shown OR excluded.shown)",
    shown=Boolean(), now=DateTime(timezone=True))


def shown_unrecorded(reader, doc: Document, user: User, shown: bool) -> bool:
    """Whether record_shown has something to add (read outside the write lock)."""
    row = _SHOWN.first(connection_of(reader), {"d": doc.id, "u": user.id})
    return row is None or (shown and not row[0])


def record_shown(s, doc: Document, user: User, shown: bool) -> None:
    from annotator.storage.models import utcnow

    _RECORD_SHOWN.rowcount(s.connection(), {"d": doc.id, "u": user.id, "shown": shown, "now": utcnow()})


# What people accepted in a project changes only when an annotation is submitted (or a
# submitted one saved again), what they rejected when a rejection is stored: the dictionary is
# kept per process until then. Measured with
# 2,000 accepted spans: the query 10 ms, building the entries and their prefixes 5 ms, against
# ~1 ms for the key that says whether they are still current.
_STATE_OF_SUBMITTED = Statement(
    "SELECT COUNT(*), MAX(a.updated_at) FROM annotations a JOIN documents d "
    "ON d.id = a.document_id WHERE d.project_id = :p AND a.status = 'submitted'")
_dictionaries: dict[int, tuple] = {}
_dictionaries_lock = threading.Lock()


def _project_state(conn, project_id: int) -> tuple:
    """What says whether the caches below are current: the project's submissions and rejections."""
    return (tuple(_STATE_OF_SUBMITTED.first(conn, {"p": project_id})),
            tuple(_STATE_OF_REJECTIONS.first(conn, {"p": project_id})))


def _remember(store: dict, key, value, most: int = 256):
    """``store[key] = value``, the store emptied first when it holds ``most`` (a bounded cache)."""
    with _dictionaries_lock:
        if len(store) > most:
            store.clear()
        store[key] = value
    return value


def _project_dictionary(conn, project_id: int, labels: tuple, state: tuple) -> tuple:
    """The accepted (surface, label, count) rows, the dictionary, its prefixes, the pairs
    rejected more often than accepted (suggest.unwanted_pairs), the rejected rows and the
    variant tables (suggest.variants_of); cached until a submission or a rejection changes them."""
    key = (state, labels)
    cached = _dictionaries.get(project_id)
    if cached is not None and cached[0] == key:
        return cached[1:]
    rows = [tuple(r) for r in _ACCEPTED.all(conn, {"p": project_id, "kind": ENTITY})]
    entries = dictionary_entries(rows)
    rejected = [tuple(r) for r in _REJECTED_PAIRS.all(conn, {"p": project_id})]
    unwanted = unwanted_pairs(rows, rejected)
    value = _remember(_dictionaries, project_id,
                      (key, rows, entries, prefixes_of(entries), unwanted, rejected, variants_of(entries)), 64)
    return value[1:]


REJECTION_FIELDS = {"start": (int,), "end": (int,), "label": (str,), "source": (str,),
                    "version": (str, None)}


def reject_suggestion(s, reader, doc: Document, user: User, body) -> dict:
    """Record that ``user`` rejected a suggestion on ``doc`` (once; again is no error)."""
    from annotator.core.bodies import check_object
    from annotator.core.errors import Invalid
    from annotator.core.spans import ORIGINS
    from annotator.storage.models import utcnow

    check_object(body, REJECTION_FIELDS, required=("start", "end", "label", "source"))
    start, end, label, source = body["start"], body["end"], body["label"], body["source"]
    problems = []
    if not 0 <= start < end <= len(doc.text):
        problems.append({"field": "end", "reason": f"[{start}, {end}) is not a span of the text "
                         f"({len(doc.text)} characters)"})
    specs, _ids = labels_for(connection_of(reader), doc.project_id)
    if label not in specs:
        problems.append({"field": "label", "reason": f"{label!r} is not in this project's label set"})
    if source not in ORIGINS:
        problems.append({"field": "source", "reason": f"one of {', '.join(ORIGINS)}"})
    version = body.get("version") or ""
    if len(version) > 64:
        problems.append({"field": "version", "reason": "at most 64 characters"})
    if problems:
        raise Invalid(f"Not a suggestion of this document: {problems[0]['field']}: "
                      f"{problems[0]['reason']}.", problems)
    _REJECT.rowcount(s.connection(), {"d": doc.id, "u": user.id, "s": start, "e": end, "l": label,
                                      "src": source, "v": version, "now": utcnow()})
    return {"ok": True}


# --- the project's patterns ------------------------------------------------------------------

def entity_labels_of(s, project_id: int) -> set[str]:
    specs, _ids = labels_for(connection_of(s), project_id)
    return {name for name, spec in specs.items() if spec.kind == ENTITY}


def set_patterns(s, project, data: bytes) -> dict:
    """Replace the project's patterns by the JSON Lines ``data`` (all or nothing; an empty file
    removes them). Invalid names the first line that is not a pattern."""
    from annotator.core.bodies import Utf8Error
    from annotator.core.errors import Invalid
    from annotator.core.patterns import PatternError, parse_patterns

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
