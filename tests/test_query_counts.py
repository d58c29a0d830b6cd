"""No N+1 queries on the hot endpoints: each runs a fixed, small number of SQL statements,
the same for 1 span or 60, for 3 documents or 120.

Counted with SQLAlchemy ``before_cursor_execute`` listeners on the app's engines; the
hot-path statements that run on the driver's cursor (annotator/storage/fastsql.py) announce
themselves there too. A correctness test of the query plan, not a timing test.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from sqlalchemy import event

# The bound of each endpoint: what it runs today on SQLite (2, 4, 9, 7, 5 and 11 with
# spans; PostgreSQL one fewer where SQLite needs its BEGIN) plus 2 for a permission check,
# and never a statement per span or per document.
BOUNDS = {
    "get_document": 4,
    "get_annotation": 6,
    "put_annotation": 11,
    "next": 9,
    "list_documents": 7,
    "import": 13,
}


@contextmanager
def counting(app):
    database = app.extensions["annotator.db"]
    engines = {database.read_engine, database.write_engine}
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    for e in engines:
        event.listen(e, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", listener)


def spans(text: str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        out.append({"start": 2 * i, "end": 2 * i + 1, "label": "ORG", "attributes": {}})
    assert out[-1]["end"] <= len(text)
    return out


@pytest.fixture
def setup(h):
    lead = h.user("lead", "lead")
    alice = h.user("alice")
    project = h.project("Counts", language="en")
    text = "a b c d e f g h " * 20
    docs = h.docs(project, [{"id": f"d{i}", "text": f"{i} {text}"} for i in range(3)])
    return {"lead": h.api(lead), "alice": h.api(alice), "project": project, "docs": docs}


def count(app, call) -> int:
    with counting(app) as statements:
        status, body = call()
    assert status < 300, body
    return len(statements)


def test_annotation_read_and_save_do_not_grow_with_spans(app, setup):
    alice, docs = setup["alice"], setup["docs"]
    seen = {}
    for n, doc in ((1, docs[0]), (60, docs[1])):
        body = {"spans": spans(doc.text, n), "version": 0}
        first = count(app, lambda: alice.put(f"/api/v1/documents/{doc.id}/annotation", body))
        body = {"spans": spans(doc.text, n), "version": 1}
        again = count(app, lambda: alice.put(f"/api/v1/documents/{doc.id}/annotation", body))
        read = count(app, lambda: alice.get(f"/api/v1/documents/{doc.id}/annotation"))
        status, state = alice.get(f"/api/v1/documents/{doc.id}/annotation")
        assert len(state["spans"]) == n and state["version"] == 2
        seen[n] = (first, again, read)
    assert seen[1] == seen[60], seen
    first, again, read = seen[1]
    assert max(first, again) <= BOUNDS["put_annotation"], seen
    assert read <= BOUNDS["get_annotation"], seen


def test_document_next_and_list_do_not_grow_with_documents(app, h, setup):
    lead, alice, project = setup["lead"], setup["alice"], setup["project"]
    pid = project.id

    def measure(newcomer: str) -> dict:
        h.tokenize(project)  # as the server's background job would have (else a first open stores them)
        doc_id = setup["docs"][0].id
        fresh = h.api(h.user(newcomer))  # the queue's longest path: nothing of theirs yet
        return {
            "get_document": count(app, lambda: alice.get(f"/api/v1/documents/{doc_id}")),
            "list_documents": count(app, lambda: lead.get(f"/api/v1/projects/{pid}/documents?per_page=500")),
            "next": count(app, lambda: fresh.get(f"/api/v1/projects/{pid}/next")),
            "next again": count(app, lambda: fresh.get(f"/api/v1/projects/{pid}/next")),
        }

    few = measure("carol")
    h.docs(project, [{"id": f"more{i}", "text": f"more text {i}"} for i in range(117)])
    # a few annotations from others, so the queue's counts have rows to count
    bob = h.api(h.user("bob"))
    for d in setup["docs"][1:]:
        bob.put(f"/api/v1/documents/{d.id}/annotation", {"spans": [], "version": 0, "status": "submitted"})
    many = measure("dave")
    assert few == many, (few, many)
    status, listing = lead.get(f"/api/v1/projects/{pid}/documents?per_page=500")
    assert listing["total"] == 120 and len(listing["items"]) == 120
    for key, n in many.items():
        assert n <= BOUNDS[key.split()[0]], (key, n)


def test_import_is_a_fixed_number_of_statements(app, setup):
    lead, pid = setup["lead"], setup["project"].id

    def body(n: int, tag: str, with_spans: bool) -> bytes:
        lines = []
        for i in range(n):
            rec = {"id": f"{tag}{i}", "text": f"document {tag} {i} with words"}
            if with_spans:
                rec["spans"] = [{"start": 0, "end": 8, "label": "ORG", "attributes": {}}]
            lines.append(json.dumps(rec))
        return "\n".join(lines).encode()

    for with_spans in (False, True):
        counts = []
        for n, tag in ((1, f"s{with_spans}"), (200, f"m{with_spans}")):
            raw = body(n, tag, with_spans)
            counts.append(count(app, lambda: lead.post(f"/api/v1/projects/{pid}/documents", raw=raw,
                                                       headers={"Content-Type": "application/x-ndjson"})))
        assert counts[0] == counts[1], (with_spans, counts)
        assert counts[1] <= BOUNDS["import"], (with_spans, counts)
