"""A model label suggests by what annotators did with its suggestions (issue 23, item 3): its
live precision over the last 20 reviewed suggestions on documents it never learned from, the
held-out figure deciding until then."""

from __future__ import annotations

import pytest
from sqlmodel import select
from test_model_source import model_span, store_version

from annotator.core.live import ACCEPTED, EDITED, REJECTED, WINDOW, live_labels


@pytest.mark.nodb
def test_the_held_out_figure_decides_until_twenty_are_reviewed_then_the_last_twenty_do():
    few = [(i, "PERSON", REJECTED) for i in range(WINDOW - 1)]
    got = live_labels(few, {"PERSON"}, {"PERSON", "ORG"})
    assert got["PERSON"]["active"] and got["PERSON"]["reviewed"] == 19
    assert got["PERSON"]["why"] == "19 of 20 reviewed: held-out precision ≥ 0.8"
    assert not got["ORG"]["active"] and got["ORG"]["precision"] is None
    # 20 reviewed: 3 rejected, 2 edited, then 15 accepted -> 0.75, below the bar
    mixed = [(i, "PERSON", REJECTED) for i in range(3)] + [(10 + i, "PERSON", EDITED) for i in range(2)] + [
        (20 + i, "PERSON", ACCEPTED) for i in range(15)]
    got = live_labels(mixed, {"PERSON"}, {"PERSON"})["PERSON"]
    assert (got["reviewed"], got["accepted"], got["precision"], got["active"]) == (20, 15, 0.75, False)
    assert got["why"] == "live precision 0.75 over the last 20 reviewed (< 0.8)"
    # the last twenty: four more accepted push the three rejections and an edit out of the window
    later = mixed + [(100 + i, "PERSON", ACCEPTED) for i in range(4)]
    got = live_labels(later, set(), {"PERSON"})["PERSON"]
    assert got["precision"] == 0.95 and got["active"]  # whatever the held-out figure said


def test_a_label_whose_suggestions_are_rejected_stops_suggesting_and_the_card_says_why(h):
    """Each document names someone else (a name rejected once is unwanted in the project, which
    would hide it anyway): after 20 rejected PERSON suggestions, the 21st is not offered."""
    lead, ann = h.user("lena", "lead"), h.user("ann")
    p = h.project("Live", members=[lead, ann], language="en")
    h.settings(p, control_share=0.0)
    texts = [f"Person{i} met the board today." for i in range(WINDOW + 2)]
    docs = h.docs(p, [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])
    h.tokenize(p)
    store_version(h, p, 1, {d.id: ([{**model_span(t, t.split()[0], "PERSON", 0.9), "offered": True}], 0.1)
                            for d, t in zip(docs, texts)}, trained_on=[docs[-1].id])
    from annotator.storage.models import ModelVersion, Project

    with h.session() as s:
        v = s.exec(select(ModelVersion)).one()  # held-out: PERSON precise enough to suggest
        v.scores = {**v.scores, "labels": {"PERSON": {"p": 0.9, "r": 0.8, "f": 0.85, "predicted": 10}}}
        s.add(v)
        proj = s.get(Project, p.id)
        proj.settings = {**(proj.settings or {}), "model": 1}
        s.add(proj)
        s.commit()
    api, lead_api = h.api(ann), h.api(lead)

    def model_items(doc):
        status, body = api.get(f"/api/v1/documents/{doc.id}/suggestions")
        assert status == 200, body
        return [g for g in body["items"] if g["source"] == "model"]

    for doc in docs[:WINDOW]:
        (g,) = model_items(doc)
        assert api.post(f"/api/v1/documents/{doc.id}/suggestions/rejections",
                        {k: g[k] for k in ("start", "end", "label", "source", "version")})[0] == 201
    assert model_items(docs[WINDOW]) == []  # 0 of its last 20: it stops suggesting PERSON
    status, body = lead_api.get(f"/api/v1/projects/{p.id}/models")
    (v,) = body["items"]
    assert v["offered_labels"] == [] and v["held_out_labels"] == ["PERSON"]
    live = v["live"]["PERSON"]
    assert (live["reviewed"], live["precision"], live["active"]) == (20, 0.0, False)
    assert live["why"] == "live precision 0.00 over the last 20 reviewed (< 0.8)"


def test_the_variants_source_stops_for_a_label_its_reviews_fail(h):
    """The variants source has its own rule: 20 of its PERSON suggestions rejected, the 21st
    document is offered none (each a different name, which one rejection makes unwanted)."""
    ann = h.user("ann")
    p = h.project("Variants", members=[ann], language="en")
    h.settings(p, control_share=0.0)
    texts = [f"Zed{i} Quux{i} spoke today. Then Quux{i} left." for i in range(WINDOW + 1)]
    docs = h.docs(p, [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])
    h.tokenize(p)
    api = h.api(ann)

    def variants_after_drawing(doc, text):
        name = text.split(" spoke")[0]
        status, body = api.put(f"/api/v1/documents/{doc.id}/annotation",
                               {"version": 0, "spans": [{"start": 0, "end": len(name), "label": "PERSON"}]})
        assert status == 200, body
        status, body = api.get(f"/api/v1/documents/{doc.id}/suggestions")
        return [g for g in body["items"] if g["source"] == "variants"]

    for doc, text in zip(docs[:WINDOW], texts):
        (g,) = variants_after_drawing(doc, text)  # Quux{i}, the last word of the name drawn
        assert text[g["start"]:g["end"]].startswith("Quux")
        assert api.post(f"/api/v1/documents/{doc.id}/suggestions/rejections",
                        {k: g[k] for k in ("start", "end", "label", "source")})[0] == 201
    assert variants_after_drawing(docs[WINDOW], texts[WINDOW]) == []
