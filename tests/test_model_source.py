"""The model as a suggestion source, and the queue ordered by its uncertainty (issue 12).

The predictions are stored rows (learn.py writes them after training; training itself is
tested in test_training.py); here they are written as learn.py writes them, to test what the
web side does with them: serve them as suggestions of source ``model`` behind the dictionary
and patterns, only for the version that suggests, and order the queue by them on request.
"""

from __future__ import annotations

from annotator.core.suggest import MODEL_MIN_SCORE, Taken, suggest
from annotator.storage.models import ModelVersion, Prediction

TEXT = "메타는 알렉산드르 왕을 영입했다. 스케일AI 창업자다."
TOKENS = [[0, 2], [2, 3], [4, 9], [10, 11], [11, 12], [13, 17], [17, 18], [18, 19], [20, 25], [26, 29],
          [29, 30], [30, 31]]


def model_span(text: str, surface: str, label: str, score: float) -> dict:
    i = text.index(surface)
    return {"start": i, "end": i + len(surface), "label": label, "attributes": {}, "score": score}


def test_the_model_fills_gaps_and_never_displaces_the_dictionary():
    entries = {"메타": ("ORG", 1.0)}
    model = [model_span(TEXT, "메타는 알렉산드르", "ORG", 0.9),  # overlaps the dictionary's 메타
             model_span(TEXT, "알렉산드르 왕", "PERSON", 0.8),
             model_span(TEXT, "스케일AI", "ORG", MODEL_MIN_SCORE - 0.01)]  # below the threshold
    got = suggest(TEXT, TOKENS, entries, [], {"ORG", "PERSON"}, model_spans=model, model_version="v2")
    assert [(TEXT[g["start"]:g["end"]], g["label"], g["source"], g["version"]) for g in got] == [
        ("메타", "ORG", "dictionary", ""), ("알렉산드르 왕", "PERSON", "model", "v2")]
    # what the person has blocks the model too, and a rejection keeps it away
    have = [Taken(4, 9, "PERSON", True)]
    assert [g["source"] for g in suggest(TEXT, TOKENS, entries, have, {"ORG", "PERSON"},
                                         model_spans=model)] == ["dictionary"]
    rejected = {(4, 11, "PERSON")}
    assert [g["source"] for g in suggest(TEXT, TOKENS, entries, [], {"ORG", "PERSON"},
                                         model_spans=model, rejected=rejected)] == ["dictionary"]


def store_version(h, project, number: int, predictions: dict, trained_on=()) -> None:
    """A trained version's row and its stored predictions ({document id: (spans, uncertainty)})."""
    with h.session() as s:
        v = ModelVersion(project_id=project.id, number=number, source="gold",
                         scores={"trained_on": list(trained_on)}, path=f"/nowhere/v{number}")
        s.add(v)
        s.flush()
        for doc_id, (spans, uncertainty) in predictions.items():
            s.add(Prediction(model_version_id=v.id, document_id=doc_id, spans=spans,
                             uncertainty=uncertainty))
        s.commit()


def test_the_suggesting_version_is_served_as_source_model(h):
    lead, ann = h.user("lena", "lead"), h.user("ann")
    p = h.project("P", members=[lead, ann], language="ko")
    h.settings(p, control_share=0.0)
    (doc,) = h.docs(p, [{"text": TEXT}])
    h.tokenize(p)
    store_version(h, p, 1, {doc.id: ([model_span(TEXT, "스케일AI", "ORG", 0.7)], 0.3)})
    store_version(h, p, 2, {doc.id: ([model_span(TEXT, "알렉산드르 왕", "PERSON", 0.9)], 0.1)})
    api, lead_api = h.api(ann), h.api(lead)

    def served():
        status, body = api.get(f"/api/v1/documents/{doc.id}/suggestions")
        assert status == 200, body
        return [(TEXT[g["start"]:g["end"]], g["source"], g["version"]) for g in body["items"]
                if g["source"] == "model"]

    assert served() == []  # no version chosen yet: the model suggests nothing
    status, body = lead_api.put(f"/api/v1/projects/{p.id}/model", {"version": 2})
    assert status == 200 and body == {"model": 2}, body
    assert served() == [("알렉산드르 왕", "model", "v2")]
    assert lead_api.put(f"/api/v1/projects/{p.id}/model", {"version": 1})[0] == 200
    assert served() == [("스케일AI", "model", "v1")]
    status, body = lead_api.put(f"/api/v1/projects/{p.id}/model", {"version": 7})
    assert status == 404 and "has no model version 7 (it has 1, 2)" in body["error"], body
    status, body = lead_api.get(f"/api/v1/projects/{p.id}/models")
    assert status == 200 and body["model"] == 1
    assert [(v["number"], v["active"], v["predicted_documents"]) for v in body["items"]] == [
        (1, True, 1), (2, False, 1)]
    # choosing a version queues its predictions for the documents that have none
    status, body = lead_api.get(f"/api/v1/projects/{p.id}/jobs")
    assert [(j["kind"], j["state"], j["params"]) for j in body["items"]][:1] == [
        ("predict", "queued", {"version": 1})]
    assert lead_api.put(f"/api/v1/projects/{p.id}/model", {"version": None})[0] == 200
    assert served() == []


def test_the_queue_can_hand_out_the_least_certain_documents_first(h):
    ann = h.user("ann")
    p = h.project("P", members=[ann], language="en")
    docs = h.docs(p, [{"text": f"Text number {i}."} for i in range(4)])
    store_version(h, p, 1, {docs[0].id: ([], 0.1), docs[1].id: ([], 0.9), docs[2].id: ([], 0.5)})
    api = h.api(ann)
    with h.session() as s:
        from annotator.storage.models import Project

        project = s.get(Project, p.id)
        project.settings = {**(project.settings or {}), "model": 1}
        s.add(project)
        s.commit()

    def order() -> list[int]:
        seen = []
        for _ in docs:
            status, body = api.get(f"/api/v1/projects/{p.id}/next")
            assert status == 200, body
            d = body["id"]
            seen.append(d)
            assert api.put(f"/api/v1/documents/{d}/annotation",
                           {"version": 0, "spans": [], "status": "submitted"})[0] == 200
        return seen

    assert h.api(h.user("lena", "lead", member_of=[p])).patch(
        f"/api/v1/projects/{p.id}/settings", {"order": "uncertain"})[0] == 200
    assert order() == [docs[1].id, docs[2].id, docs[0].id, docs[3].id]  # unpredicted last
    status, body = h.api(h.user("lara", "lead", member_of=[p])).patch(
        f"/api/v1/projects/{p.id}/settings", {"order": "random"})
    assert status == 422 and "must be one of document, uncertain" in body["error"]


def test_a_model_version_joins_the_report_as_a_pseudo_annotator_on_what_it_did_not_learn(h):
    lead, ann = h.user("lena", "lead"), h.user("ann")
    p = h.project("P", members=[lead, ann], language="en")
    texts = ["Meta hired Wang.", "Wang joined Meta.", "Nobody did anything."]
    a, b, c = h.docs(p, [{"text": t} for t in texts])
    api = h.api(ann)
    for doc, text in ((a, texts[0]), (b, texts[1])):
        i = text.index("Meta")
        assert api.put(f"/api/v1/documents/{doc.id}/annotation", {"version": 0, "status": "submitted",
                       "spans": [{"start": i, "end": i + 4, "label": "ORG"}]})[0] == 200
    same = lambda text: [model_span(text, "Meta", "ORG", 0.9)]  # noqa: E731
    store_version(h, p, 1, {a.id: (same(texts[0]), 0.1), b.id: (same(texts[1]), 0.1),
                            c.id: ([], 0.2)}, trained_on=[a.id])
    status, report = h.api(lead).get(f"/api/v1/projects/{p.id}/agreement?model=1")
    assert status == 200, report
    assert report["model"] == {"version": 1, "name": "model v1", "documents": 1,
                               "left_out_trained_on": 1}
    assert "model v1" in report["annotators"]
    assert report["per_annotator"]["model v1"]["pseudo"] is True
    assert report["per_annotator"]["model v1"]["documents_done"] == 1
    status, plain = h.api(lead).get(f"/api/v1/projects/{p.id}/agreement")
    assert plain["model"] is None and "model v1" not in plain["annotators"]
    status, body = h.api(lead).get(f"/api/v1/projects/{p.id}/agreement?model=4")
    assert status == 404 and "no model version 4" in body["error"]


def test_the_model_suggests_only_what_can_be_a_name():
    from annotator.core.suggest import plausible

    text = "• 흐림제주 📷 Scale AI Inc. (메타)\n구글"
    for surface, ok in (("• 흐림제주", False), ("📷", False), ("Scale AI", True),
                        ("Scale AI Inc.", True), ("(메타)", False), ("메타)\n구글", False)):
        i = text.index(surface)
        assert plausible(text, i, i + len(surface)) is ok, surface
    model = [model_span(text, "• 흐림제주", "PERSON", 1.0), model_span(text, "Scale AI", "ORG", 1.0)]
    tokens = [[0, 1], [2, 6], [7, 8], [9, 14], [15, 17], [18, 22], [23, 24], [24, 26], [26, 27], [28, 30]]
    got = suggest(text, tokens, {}, [], {"ORG", "PERSON"}, model_spans=model)
    assert [text[g["start"]:g["end"]] for g in got] == ["Scale AI"]


def test_what_people_rejected_more_than_accepted_no_source_suggests_again(h):
    """Reviews teach every source: two people rejected the model's 'Naomi' as ORG on their
    documents, nobody accepted it: a third document is not offered it (by the dictionary
    neither, once rejected more often than accepted)."""
    lead, ann, bob = h.user("lena", "lead"), h.user("ann"), h.user("bob")
    p = h.project("P", members=[lead, ann, bob], language="en")
    h.settings(p, control_share=0.0)
    texts = ["Naomi met Meta.", "Naomi left Meta.", "Naomi joined Meta."]
    docs = h.docs(p, [{"text": t} for t in texts])
    h.tokenize(p)
    store_version(h, p, 1, {d.id: ([model_span(t, "Naomi", "ORG", 0.9)], 0.2)
                            for d, t in zip(docs, texts)})
    assert h.api(lead).put(f"/api/v1/projects/{p.id}/model", {"version": 1})[0] == 200

    def offered(api, doc) -> list[tuple[str, str]]:
        status, body = api.get(f"/api/v1/documents/{doc.id}/suggestions")
        assert status == 200, body
        return [(g["label"], g["source"]) for g in body["items"]]

    assert offered(h.api(ann), docs[2]) == [("ORG", "model")]
    for who, doc in ((ann, docs[0]), (bob, docs[1])):
        status, _ = h.api(who).post(f"/api/v1/documents/{doc.id}/suggestions/rejections",
                                    {"start": 0, "end": 5, "label": "ORG", "source": "model", "version": "v1"})
        assert status == 201
    assert offered(h.api(ann), docs[2]) == []


def test_a_label_the_model_learned_badly_is_not_offered():
    spans = [model_span(TEXT, "알렉산드르 왕", "PERSON", 0.9)]
    got = suggest(TEXT, TOKENS, {}, [], {"ORG", "PERSON"}, model_spans=[{**spans[0], "offered": False}])
    assert got == []
    assert len(suggest(TEXT, TOKENS, {}, [], {"ORG", "PERSON"}, model_spans=spans)) == 1
