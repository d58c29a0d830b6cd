"""The JSON API against the real app and a real database file."""

import json

import pytest
from conftest import corpus_text

URL = "/api/v1"


def assert_error_shape(body, status):
    assert body["ok"] is False
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"].endswith(".")
    assert isinstance(body["details"], list)


@pytest.fixture
def world(h):
    lead = h.user("lena", "lead")
    alice = h.user("alice")
    bob = h.user("bob")
    project = h.project("News", language="ko", k=2)
    docs = h.docs(project, [{"id": f"d{i}", "text": t} for i, t in enumerate(
        ["메타는 Scale AI에 투자했다.", "알렉산드르 왕은 CEO다.", "Meta paid $14.3 billion."])])
    return {"lead": lead, "alice": alice, "bob": bob, "project": project, "docs": docs,
            "api": {u.username: h.api(u) for u in (lead, alice, bob)}}


def put(api, doc_id, spans, version, **extra):
    return api.put(f"{URL}/documents/{doc_id}/annotation", {"spans": spans, "version": version, **extra})


def test_health_is_public_and_everything_else_needs_login(client):
    assert client.get(f"{URL}/health").status_code == 200
    r = client.get(f"{URL}/projects")
    assert r.status_code == 401
    assert_error_shape(r.get_json(), 401)
    assert client.get("/").status_code == 302


def test_bad_token_is_refused(client):
    r = client.get(f"{URL}/projects", headers={"Authorization": "Bearer ann_nope"})
    assert r.status_code == 401
    assert_error_shape(r.get_json(), 401)


def test_lead_creates_project_with_default_labels(h, world):
    status, body = world["api"]["lena"].post(f"{URL}/projects", {"name": "Second", "language": "ko", "k": 3})
    assert status == 201
    assert [lab["name"] for lab in body["labels"]] == ["PERSON", "ORG", "MONEY", "CLAIM"]
    claim = body["labels"][3]
    assert claim["kind"] == "span" and claim["attributes"]["stance"]["required"] is True
    status, listing = world["api"]["lena"].get(f"{URL}/projects")  # the creator is a member
    assert status == 200 and listing["total"] == 2 and listing["page"] == 1
    status, listing = world["api"]["alice"].get(f"{URL}/projects")  # alice is not, yet
    assert status == 200 and [p["name"] for p in listing["items"]] == ["News"]


def test_annotator_cannot_create_projects_or_import(h, world):
    before = h.counts()
    status, body = world["api"]["alice"].post(f"{URL}/projects", {"name": "Mine"})
    assert status == 403
    assert_error_shape(body, 403)
    status, body = world["api"]["alice"].post(f"{URL}/projects/{world['project'].id}/documents",
                                              raw=json.dumps([{"text": "x"}]))
    assert status == 403
    assert h.counts() == before


def test_first_save_then_version_increments_and_history_keeps_every_version(h, world):
    api, doc = world["api"]["alice"], world["docs"][0]
    status, body = api.get(f"{URL}/documents/{doc.id}/annotation")
    assert (status, body) == (200, {"spans": [], "version": 0, "status": None})
    versions = [[{"start": 0, "end": 2, "label": "ORG", "attributes": {}}],
                [{"start": 0, "end": 2, "label": "ORG", "attributes": {}},
                 {"start": 4, "end": 12, "label": "ORG", "attributes": {}}],
                []]
    for v, spans in enumerate(versions):
        status, body = put(api, doc.id, spans, v)
        assert status == 200, body
        assert body["version"] == v + 1
    status, body = put(api, doc.id, [], 3, status="submitted")
    assert body["status"] == "submitted"
    status, hist = api.get(f"{URL}/documents/{doc.id}/annotation/history")
    assert [x["version"] for x in hist["items"]] == [1, 2, 3, 4]
    assert [x["spans"] for x in hist["items"][:3]] == versions
    assert hist["items"][3]["status"] == "submitted"


def test_stale_version_is_409_and_writes_nothing(h, world):
    api, doc = world["api"]["alice"], world["docs"][0]
    assert put(api, doc.id, [], 0)[0] == 200
    assert put(api, doc.id, [{"start": 0, "end": 2, "label": "ORG"}], 1)[0] == 200
    before = h.counts()
    status, body = put(api, doc.id, [{"start": 4, "end": 9, "label": "ORG"}], 1)  # second tab
    assert status == 409
    assert_error_shape(body, 409)
    assert body["details"][0] == {"field": "version", "sent": 1, "current": 2}
    assert h.counts() == before
    assert api.get(f"{URL}/documents/{doc.id}/annotation")[1]["spans"][0]["end"] == 2
    # A first save that is not version 0 is also stale.
    status, _ = put(world["api"]["bob"], doc.id, [], 5)
    assert status == 409


INVALID = [
    ([{"start": 2, "end": 2, "label": "ORG"}], "end"),
    ([{"start": 3, "end": 1, "label": "ORG"}], "end"),
    ([{"start": -1, "end": 2, "label": "ORG"}], "start"),
    ([{"start": 0, "end": 999, "label": "ORG"}], "end"),
    ([{"start": 0, "end": 2, "label": "NOPE"}], "label"),
    ([{"start": 0, "end": 3, "label": "ORG"}, {"start": 1, "end": 2, "label": "PERSON"}], "start"),
    ([{"start": 0, "end": 2, "label": "ORG"}, {"start": 0, "end": 2, "label": "ORG"}], "span"),
    ([{"start": 0, "end": 2, "label": "CLAIM"}], "attributes.stance"),
    ([{"start": 0, "end": 2, "label": "CLAIM", "attributes": {"stance": "yes"}}], "attributes.stance"),
    ([{"start": 0, "end": 4, "label": "ORG"}], "end"),  # trailing space
]


@pytest.mark.parametrize("spans,field", INVALID)
def test_invalid_spans_are_422_with_details_and_nothing_written(h, world, spans, field):
    api, doc = world["api"]["alice"], world["docs"][0]
    assert put(api, doc.id, [{"start": 0, "end": 2, "label": "ORG"}], 0)[0] == 200
    before = h.counts()
    status, body = put(api, doc.id, spans, 1)
    assert status == 422
    assert_error_shape(body, 422)
    assert any(d["field"] == field and "span" in d for d in body["details"]), body
    assert h.counts() == before
    assert api.get(f"{URL}/documents/{doc.id}/annotation")[1]["version"] == 1


@pytest.mark.parametrize("body,status", [
    ({"spans": []}, 422),
    ({"version": 0}, 422),
    ({"spans": [], "version": "0"}, 422),
    ({"spans": [], "version": 0, "extra": 1}, 422),
    ({"spans": [], "version": 0, "status": "done"}, 422),
    ([], 422),
])
def test_malformed_bodies_are_refused(h, world, body, status):
    api, doc = world["api"]["alice"], world["docs"][0]
    before = h.counts()
    got, resp = api.put(f"{URL}/documents/{doc.id}/annotation", body)
    assert got == status
    assert_error_shape(resp, status)
    assert h.counts() == before


def test_body_that_is_not_json_is_400(world):
    api, doc = world["api"]["alice"], world["docs"][0]
    status, body = api.put(f"{URL}/documents/{doc.id}/annotation", raw="{not json")
    assert status == 400
    assert_error_shape(body, 400)


def test_annotator_cannot_read_anothers_annotation_but_lead_can(world):
    doc = world["docs"][0]
    assert put(world["api"]["bob"], doc.id, [{"start": 0, "end": 2, "label": "ORG"}], 0)[0] == 200
    status, body = world["api"]["alice"].get(f"{URL}/documents/{doc.id}/annotation?user=bob")
    assert status == 403
    assert_error_shape(body, 403)
    status, body = world["api"]["lena"].get(f"{URL}/documents/{doc.id}/annotation?user=bob")
    assert status == 200 and body["spans"][0]["label"] == "ORG"
    status, _ = world["api"]["alice"].get(f"{URL}/documents/{doc.id}/annotation/history?user=bob")
    assert status == 403


def test_unknown_ids_are_404(world):
    api = world["api"]["alice"]
    for path in (f"{URL}/documents/9999", f"{URL}/projects/9999", f"{URL}/documents/9999/annotation"):
        status, body = api.get(path)
        assert status == 404
        assert_error_shape(body, 404)


def test_import_is_all_or_nothing_and_names_the_line(h, world):
    api, pid = world["api"]["lena"], world["project"].id
    before = h.counts()
    body = "\n".join([
        json.dumps({"id": "a", "text": "좋은 문서"}, ensure_ascii=False),
        json.dumps({"id": "b", "text": "두 번째", "spans": [{"start": 0, "end": 99, "label": "ORG"}]},
                   ensure_ascii=False),
        json.dumps({"id": "c", "text": "세 번째"}, ensure_ascii=False),
    ])
    status, resp = api.post(f"{URL}/projects/{pid}/documents", raw=body.encode())
    assert status == 422
    assert_error_shape(resp, 422)
    assert resp["details"][0]["line"] == 2
    assert "line 2" in resp["error"]
    assert h.counts() == before


@pytest.mark.parametrize("records,line,word", [
    ([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}], 2, "duplicate"),
    ([{"id": "d0", "text": "already there"}], 1, "already"),
    ([{"text": ""}], 1, "empty"),
    ([{"id": "y"}], 1, "text"),
    ([{"id": "y", "text": "ok", "colour": "red"}], 1, "unknown"),
    ([{"id": "y", "text": "ok"}, "just a string"], 2, "object"),
    ([{"id": "y", "text": "ok", "meta": []}], 1, "meta"),
])
def test_import_refusals(h, world, records, line, word):
    api, pid = world["api"]["lena"], world["project"].id
    before = h.counts()
    status, resp = api.post(f"{URL}/projects/{pid}/documents", raw=json.dumps(records).encode())
    assert status == 422, resp
    assert resp["details"][0]["item"] == line  # a JSON list names the item (and its line)
    assert word in resp["details"][0]["reason"]
    assert h.counts() == before


def test_import_with_spans_creates_a_submitted_annotation_of_the_import_pseudo_user(h, world):
    api, pid = world["api"]["lena"], world["project"].id
    text = "Meta hired Wang."
    rec = {"id": "s1", "text": text, "meta": {"src": "x"},
           "spans": [{"start": 0, "end": 4, "label": "ORG"}, {"start": 11, "end": 15, "label": "PERSON"}]}
    status, resp = api.post(f"{URL}/projects/{pid}/documents", raw=(json.dumps(rec) + "\n").encode())
    assert status == 201 and resp["imported"] == 1 and resp["with_spans"] == 1
    docs = api.get(f"{URL}/projects/{pid}/documents?q=s1")[1]["items"]
    assert len(docs) == 1
    status, ann = api.get(f"{URL}/documents/{docs[0]['id']}/annotation?user=import")
    assert ann["status"] == "submitted"
    assert [text[s["start"]:s["end"]] for s in ann["spans"]] == ["Meta", "Wang"]
    # The pseudo-user never counts as a person: the document still needs k=2 annotators.
    got = set()
    for name in ("alice", "bob"):
        api_u = world["api"][name]
        for _ in range(5):
            status, d = api_u.get(f"{URL}/projects/{pid}/next")
            if status == 204:
                break
            got.add(d["external_id"])
            put(api_u, d["id"], [], 0, status="submitted")
    assert "s1" in got


def test_queue_honours_k_and_never_gives_a_document_twice(h, world):
    pid = world["project"].id
    seen = {"alice": [], "bob": []}
    carol_api = h.api(h.user("carol"))
    for name in ("alice", "bob"):
        api = world["api"][name]
        while True:
            status, d = api.get(f"{URL}/projects/{pid}/next")
            if status == 204:
                break
            assert d["id"] not in seen[name]
            seen[name].append(d["id"])
            assert put(api, d["id"], [], 0, status="submitted")[0] == 200
    assert len(seen["alice"]) == len(seen["bob"]) == 3
    # k = 2 is met for every document: the third annotator's queue is empty.
    assert carol_api.get(f"{URL}/projects/{pid}/next")[0] == 204


def test_queue_resumes_unfinished_work_and_counts_reservations(h, world):
    pid = world["project"].id
    alice, bob = world["api"]["alice"], world["api"]["bob"]
    d1 = alice.get(f"{URL}/projects/{pid}/next")[1]
    assert alice.get(f"{URL}/projects/{pid}/next")[1]["id"] == d1["id"]  # same until done
    put(alice, d1["id"], [], 0)  # in progress
    assert alice.get(f"{URL}/projects/{pid}/next")[1]["id"] == d1["id"]
    put(alice, d1["id"], [], 1, status="submitted")
    assert alice.get(f"{URL}/projects/{pid}/next")[1]["id"] != d1["id"]
    # k=2: bob still gets d1 (one submitted so far) first: closest to completion.
    assert bob.get(f"{URL}/projects/{pid}/next")[1]["id"] == d1["id"]


def test_empty_submitted_and_no_annotation_are_different(world):
    doc = world["docs"][1]
    api = world["api"]["alice"]
    assert api.get(f"{URL}/documents/{doc.id}/annotation")[1]["status"] is None
    put(api, doc.id, [], 0, status="submitted")
    status, body = api.get(f"{URL}/documents/{doc.id}/annotation")
    assert body == {**body, "spans": [], "status": "submitted", "version": 1}
    status, listing = world["api"]["lena"].get(f"{URL}/projects/{world['project'].id}/documents")
    subs = {d["external_id"]: d["submitted"] for d in listing["items"]}
    assert subs == {"d0": 0, "d1": 1, "d2": 0}


def test_document_listing_is_paged_and_searchable(h, world):
    api, pid = world["api"]["lena"], world["project"].id
    h.docs(world["project"], [{"id": f"p{i}", "text": f"문서 {i}"} for i in range(30)])
    status, page2 = api.get(f"{URL}/projects/{pid}/documents?page=2&per_page=10")
    assert status == 200 and page2["total"] == 33 and page2["page"] == 2 and len(page2["items"]) == 10
    assert api.get(f"{URL}/projects/{pid}/documents?q=Scale")[1]["total"] == 1
    assert api.get(f"{URL}/projects/{pid}/documents?q=100%25")[1]["total"] == 0
    status, body = api.get(f"{URL}/projects/{pid}/documents?per_page=0")
    assert status == 422
    assert_error_shape(body, 422)


def test_span_after_emoji_in_article_001_round_trips(h, world):
    text = corpus_text("001")
    p = h.project("Emoji", language="ko")
    (doc,) = h.docs(p, [{"id": "001", "text": text}])
    emoji_at = next(i for i, ch in enumerate(text) if ord(ch) > 0xFFFF)
    target = "Bloomberg"
    start = text.index(target, emoji_at)
    assert len(text[:start].encode("utf-16-le")) // 2 != start  # offsets differ in UTF-16
    span = {"start": start, "end": start + len(target), "label": "ORG", "attributes": {}}
    api = world["api"]["alice"]
    assert put(api, doc.id, [span], 0)[0] == 200
    saved = api.get(f"{URL}/documents/{doc.id}/annotation")[1]["spans"][0]
    assert text[saved["start"]:saved["end"]] == target
    assert api.get(f"{URL}/documents/{doc.id}")[1]["text"] == text


def test_cookie_api_calls_need_the_csrf_header(h, client, world):
    csrf = h.login(client, world["alice"])
    doc = world["docs"][0]
    body = json.dumps({"spans": [], "version": 0})
    r = client.put(f"{URL}/documents/{doc.id}/annotation", data=body, content_type="application/json")
    assert r.status_code == 403
    assert_error_shape(r.get_json(), 403)
    r = client.put(f"{URL}/documents/{doc.id}/annotation", data=body, content_type="application/json",
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200


def test_html_pages_show_the_same_message(h, client, world):
    h.login(client, world["alice"])
    r = client.get("/nope", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert b"Nothing is here." in r.data
