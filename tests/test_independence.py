"""Suggestions never carry one annotator's work on a document to another annotator of it
(issue 23): with k = 2, what bob is offered on d is what he would be offered had alice never
annotated d; her work elsewhere still teaches the dictionary; a model version that learned
from d withholds its predictions on d from anyone who has not submitted d."""

from __future__ import annotations

import pytest
from test_model_source import model_span, store_version

from annotator.core.suggest import patch_entries, subtract_counts

D = "스케일AI는 알렉산드르 왕이 세웠다. 메타가 투자했다."  # alice annotates this one
ELSEWHERE = "메타는 다른 회사다."  # and this one
LATER = "스케일AI와 메타가 만났다. 알렉산드르 왕이 말했다."


def span(text: str, surface: str, label: str) -> dict:
    i = text.index(surface)
    return {"start": i, "end": i + len(surface), "label": label, "attributes": {}}


@pytest.fixture
def team(h):
    alice, bob = h.user("alice"), h.user("bob")
    project = h.project("Independent", members=[alice, bob], language="ko", k=2)
    h.settings(project, control_share=0.0, blind=False)  # independence holds whatever blind says
    d, elsewhere, later = h.docs(project, [{"text": D}, {"text": ELSEWHERE}, {"text": LATER}])
    h.tokenize(project)
    return project, (d, elsewhere, later), h.api(alice), h.api(bob)


def offered(api, doc) -> list[tuple]:
    status, body = api.get(f"/api/v1/documents/{doc.id}/suggestions")
    assert status == 200 and body["pending"] is False, body
    return sorted((g["start"], g["end"], g["label"], g["source"], g["score"]) for g in body["items"])


def submit(api, doc, spans) -> None:
    status, body = api.put(f"/api/v1/documents/{doc.id}/annotation",
                           {"version": 0, "spans": spans, "status": "submitted"})
    assert status == 200, body


def test_bob_on_d_is_offered_what_he_would_be_had_alice_never_annotated_d(team):
    _project, (d, elsewhere, later), alice, bob = team
    submit(alice, elsewhere, [span(ELSEWHERE, "메타", "ORG")])
    before = offered(bob, d)  # alice's work elsewhere: 메타 is suggested on d
    assert [(D[s:e], label) for s, e, label, _src, _sc in before] == [("메타", "ORG")]

    submit(alice, d, [span(D, "스케일AI", "ORG"), span(D, "알렉산드르 왕", "PERSON"),
                      span(D, "메타", "ORG")])
    assert offered(bob, d) == before  # nothing of what alice drew on d, nor its counts
    # elsewhere, what she drew on d teaches the dictionary as before
    assert {(LATER[s:e], label) for s, e, label, _src, _sc in offered(bob, later)} == {
        ("스케일AI", "ORG"), ("메타", "ORG"), ("알렉산드르 왕", "PERSON")}


def test_colleagues_rejections_on_d_do_not_steer_bobs_suggestions_on_d(team, h):
    project, (d, elsewhere, _later), alice, bob = team
    carol = h.api(h.user("carol", member_of=[project]))
    submit(alice, elsewhere, [span(ELSEWHERE, "메타", "ORG")])
    before = offered(bob, d)
    m = D.index("메타")
    for api in (alice, carol):  # rejected more often than accepted: unwanted, but only on d
        status, _ = api.post(f"/api/v1/documents/{d.id}/suggestions/rejections",
                             {"start": m, "end": m + 2, "label": "ORG", "source": "dictionary"})
        assert status in (200, 201)
    assert offered(bob, d) == before


def test_gold_and_imported_spans_on_d_are_not_a_colleagues_work(team, h):
    project, (d, _elsewhere, _later), _alice, bob = team
    from annotator.services.importing import import_records

    with h.session() as s:
        from annotator.storage.models import Project

        import_records(s, s.get(Project, project.id),
                       [(1, {"id": "with-spans", "text": D, "spans": [span(D, "스케일AI", "ORG")]})])
        s.commit()
    h.tokenize(project)
    got = {(D[s:e], label) for s, e, label, _src, _sc in offered(bob, d)}
    assert ("스케일AI", "ORG") in got  # the import's spans are the project's, and teach everyone


def choose(h, project, number: int) -> None:
    from annotator.storage.models import Project

    with h.session() as s:  # as PUT .../model does, without queueing the predict job
        p = s.get(Project, project.id)
        p.settings = {**(p.settings or {}), "model": number}
        s.add(p)
        s.commit()


def test_a_model_that_learned_from_d_withholds_its_predictions_on_d(team, h):
    project, (d, elsewhere, _later), alice, bob = team
    guess = model_span(D, "알렉산드르 왕", "PERSON", 0.9)
    store_version(h, project, 1, {d.id: ([{**guess, "offered": True}], 0.1),
                                  elsewhere.id: ([], 0.0)}, trained_on=[d.id])
    choose(h, project, 1)
    status, body = bob.get(f"/api/v1/documents/{d.id}/suggestions")
    assert status == 200 and body["withheld"] == {"model": "trained on this document"}, body
    assert all(g["source"] != "model" for g in body["items"])
    # once bob has submitted d, he may see what the model says about it
    submit(bob, d, [])
    status, body = bob.get(f"/api/v1/documents/{d.id}/suggestions")
    assert "withheld" not in body and [g["source"] for g in body["items"]] == ["model"], body
    # a version that never saw d suggests on it
    store_version(h, project, 2, {d.id: ([{**guess, "offered": True}], 0.1)}, trained_on=[elsewhere.id])
    choose(h, project, 2)
    status, body = alice.get(f"/api/v1/documents/{d.id}/suggestions")
    assert "withheld" not in body and [g["source"] for g in body["items"]] == ["model"], body


@pytest.mark.nodb
def test_counts_taken_out_and_the_entries_they_change():
    rows = [("메타", "ORG", 3), ("메타", "PERSON", 2), ("왕", "PERSON", 1)]
    assert subtract_counts(rows, [("메타", "ORG", 2), ("왕", "PERSON", 1)]) == [
        ("메타", "ORG", 1), ("메타", "PERSON", 2)]
    assert subtract_counts(rows, []) is rows
    entries = {"메타": ("ORG", 0.6), "왕": ("PERSON", 1.0)}
    left = subtract_counts(rows, [("메타", "ORG", 2), ("왕", "PERSON", 1)])
    assert patch_entries(entries, left, {"메타", "왕"}) == {"메타": ("PERSON", 2 / 3)}


# --- the dictionary reaches its rules' ceiling (issue 23, item 2) ---------------------------

LONG = ("Meta Superintelligence Labs는 Meta가 세웠다. Meta Superintelligence Labs는 크다. "
        "다시 Meta Superintelligence Labs.")
NEXT = "Meta는 크다. Meta가 또 투자했다."


def test_a_rejection_of_the_bounds_is_not_one_of_the_label(h):
    """In LONG alice is offered "Meta" inside "Meta Superintelligence Labs" three times and
    rejects it there, then draws the whole name: those rejections were of the bounds. Counted
    against ("Meta", ORG) (3 rejected, 1 accepted), they hid every "Meta" of the next article."""
    alice, bob = h.user("alice"), h.user("bob")
    project = h.project("Ceiling", members=[alice, bob], language="ko")
    h.settings(project, control_share=0.0)
    first, long_doc, nxt = h.docs(project, [{"text": "Meta는 크다."}, {"text": LONG}, {"text": NEXT}])
    h.tokenize(project)
    a = h.api(alice)
    submit(a, first, [span("Meta는 크다.", "Meta", "ORG")])
    status, body = a.get(f"/api/v1/documents/{long_doc.id}/suggestions")
    inside = [g for g in body["items"] if LONG[g["start"]:g["end"]] == "Meta" and g["start"] != LONG.index("Meta가")]
    assert len(inside) == 3
    for g in inside:
        assert a.post(f"/api/v1/documents/{long_doc.id}/suggestions/rejections",
                      {k: g[k] for k in ("start", "end", "label", "source")})[0] == 201
    name = "Meta Superintelligence Labs"
    meta = LONG.index("Meta가")
    spans = [{"start": i, "end": i + len(name), "label": "ORG", "attributes": {}}
             for i in (0, LONG.index(name, 1), LONG.rindex(name))]
    spans.append({"start": meta, "end": meta + 4, "label": "ORG", "attributes": {}})
    submit(a, long_doc, spans)
    got = {(NEXT[s:e], label) for s, e, label, _src, _sc in offered(h.api(bob), nxt)}
    assert ("Meta", "ORG") in got


def test_what_the_person_drew_here_is_offered_here_whatever_others_rejected(h):
    """("Meta", ORG) rejected by two people elsewhere, never accepted: unwanted in the project.
    Once carol draws "Meta" as an ORG on this document, its other occurrences here are hers."""
    alice, bob, carol = h.user("alice"), h.user("bob"), h.user("carol")
    project = h.project("Own", members=[alice, bob, carol], language="ko")
    h.settings(project, control_share=0.0)
    seen, nxt = h.docs(project, [{"text": "Meta가 왔다."}, {"text": NEXT}])
    h.tokenize(project)
    for who in (alice, bob):
        assert h.api(who).post(f"/api/v1/documents/{seen.id}/suggestions/rejections",
                               {"start": 0, "end": 4, "label": "ORG", "source": "dictionary"})[0] == 201
    c = h.api(carol)
    status, body = c.put(f"/api/v1/documents/{nxt.id}/annotation",
                         {"version": 0, "spans": [{"start": 0, "end": 4, "label": "ORG"}]})
    assert status == 200, body
    got = [(NEXT[s:e], label) for s, e, label, _src, _sc in offered(c, nxt)]
    assert got == [("Meta", "ORG")]  # the second one, at NEXT.index("Meta가")


# --- the report says whether any accepted suggestion could have come from a colleague ----------

@pytest.mark.nodb
def test_the_independence_check_finds_what_only_a_colleagues_spans_on_the_document_explain():
    from annotator.core.anchoring import independence

    texts = {1: "메타와 스케일AI", 2: "메타가 왔다"}
    dic = {"source": "dictionary", "edited": False}
    alice = {"document": 1, "user": "alice", "spans": [{"start": 0, "end": 2, "label": "ORG"},
                                                        {"start": 4, "end": 9, "label": "ORG"}]}
    bob = {"document": 1, "user": "bob", "spans": [{"start": 0, "end": 2, "label": "ORG", "origin": dic},
                                                    {"start": 4, "end": 9, "label": "ORG", "origin": dic}]}
    carol = {"document": 2, "user": "carol", "spans": [{"start": 0, "end": 2, "label": "ORG"}]}
    got = independence([alice, bob, carol], texts, [], {})
    # 메타 is carol's elsewhere; 스케일AI only alice's on this very document
    assert (got["checked"], got["from_others"], got["documents"]) == (2, 1, 1)
    assert got["examples"] == [{"document": 1, "user": "bob", "start": 4, "end": 9, "label": "ORG",
                                "source": "dictionary"}]
    assert independence([alice, bob, carol], texts, [(1, 4, 9, "ORG")], {})["from_others"] == 0  # an import's
    model = {"document": 1, "user": "bob", "spans": [{"start": 0, "end": 2, "label": "ORG",
                                                       "origin": {"source": "model", "version": "v1"}}]}
    assert independence([model], texts, [], {"v1": {1}})["from_others"] == 1
    assert independence([model], texts, [], {"v1": {2}})["from_others"] == 0


def test_the_report_says_no_accepted_suggestion_came_from_a_colleague(team, h):
    project, (d, elsewhere, later), alice, bob = team
    lead = h.api(h.user("lena", "lead", member_of=[project]))
    submit(alice, elsewhere, [span(ELSEWHERE, "메타", "ORG")])
    submit(alice, d, [span(D, "스케일AI", "ORG"), span(D, "메타", "ORG")])
    status, body = bob.get(f"/api/v1/documents/{d.id}/suggestions")
    (g,) = body["items"]  # 메타, from alice's work elsewhere
    status, body = bob.put(f"/api/v1/documents/{d.id}/annotation", {
        "version": 0, "status": "submitted",
        "spans": [{**{k: g[k] for k in ("start", "end", "label")}, "origin": {"source": g["source"]}}]})
    assert status == 200, body
    status, report = lead.get(f"/api/v1/projects/{project.id}/agreement")
    assert status == 200
    assert report["suggestions"]["independence"] == {"checked": 1, "from_others": 0, "documents": 0,
                                                     "examples": []}
