"""Suggestions on the annotate page, by keyboard (issue 12): drawn dashed, j / k move, y accepts,
x rejects, a label key accepts as that label, Y accepts all of a label, and after tagging a
span its other occurrences are offered at once (o tags them all). What was saved is read
through the API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser.helpers import drag_select, login, open_doc, wait_saved

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "annotated-000.jsonl"
SHOTS = Path(__file__).resolve().parent.parent.parent / "exports" / "screenshots"


@pytest.fixture
def assisted(h):
    """The demo project; alice submitted article 000 as annotated in the fixture; tokens stored."""
    from annotator.storage.models import Document

    project = h.demo()
    h.settings(project, control_share=0.0)  # every document with suggestions
    alice, ann = h.user("alice2"), h.user("ann")
    with h.session() as s:
        docs = {d.external_id[:3]: d for d in s.execute(
            select(Document).where(Document.project_id == project.id)).scalars()}
    gold = json.loads(FIXTURE.read_text(encoding="utf-8").splitlines()[0])
    spans = [{"start": sp["start"], "end": sp["end"], "label": sp["label"],
              "attributes": {"stance": sp["stance"]} if sp.get("stance") else {}}
             for sp in gold["spans"]]
    status, body = h.api(alice).put(f"/api/v1/documents/{docs['000'].id}/annotation",
                                    {"version": 0, "spans": spans, "status": "submitted"})
    assert status == 200, body
    h.tokenize(project)
    api = h.api(ann)

    def saved(did):
        status, body = api.get(f"/api/v1/documents/{did}/annotation")
        assert status == 200
        return body["spans"]

    def suggested(did):
        status, body = api.get(f"/api/v1/documents/{did}/suggestions")
        assert status == 200
        return body["items"]

    return project, docs, saved, suggested


def sug_count(page) -> int:
    return page.evaluate("() => window.__annotate.editor().sugs.length")


def focused(page):
    return page.evaluate("""() => { const g = window.__annotate.editor().focusedSuggestion();
        return g && {start: g.start, end: g.end, label: g.label}; }""")


def test_review_suggestions_by_keyboard(page, live, assisted):
    project, docs, saved, suggested = assisted
    doc = docs["001"]
    offered = suggested(doc.id)
    assert len(offered) >= 5
    login(page, live.url, "ann")
    open_doc(page, live.url, project.id, doc.id)
    expect(page.get_by_test_id("suggestions")).to_be_visible()
    expect(page.locator(".sg.sug").first).to_be_visible()
    assert sug_count(page) == len(offered)
    page.keyboard.press("j")
    g = focused(page)
    assert g == {k: offered[0][k] for k in ("start", "end", "label")}
    expect(page.get_by_test_id("suggestion-focus")).to_contain_text(g["label"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "annotate-suggestions.png"))

    page.keyboard.press("y")  # accept as it is; the next one is focused
    wait_saved(page)
    assert [(s["start"], s["end"], s["label"]) for s in saved(doc.id)] == [(g["start"], g["end"], g["label"])]
    assert saved(doc.id)[0]["origin"] == {"source": offered[0]["source"],
                                          "version": offered[0]["version"], "edited": False}
    second = focused(page)
    assert second == {k: offered[1][k] for k in ("start", "end", "label")}

    page.keyboard.press("x")  # reject: gone from the page, nothing saved, and the server knows
    assert sug_count(page) == len(offered) - 2
    page.wait_for_function("""async (k) => { const r = await fetch('/api/v1/documents/' + k[0] +
        '/suggestions', {headers: {Accept: 'application/json'}}); const b = await r.json();
        return !b.items.some(g => g.start === k[1] && g.end === k[2] && g.label === k[3]); }""",
                           arg=[doc.id, second["start"], second["end"], second["label"]])
    third = focused(page)
    assert third == {k: offered[2][k] for k in ("start", "end", "label")}

    page.keyboard.press("1")  # accept as PERSON instead
    wait_saved(page)
    got = {(s["start"], s["end"], s["label"]) for s in saved(doc.id)}
    assert got == {(g["start"], g["end"], g["label"]), (third["start"], third["end"], "PERSON")}
    relabelled = next(s for s in saved(doc.id) if s["start"] == third["start"])
    assert relabelled["origin"]["edited"] is (third["label"] != "PERSON")
    assert (second["start"], second["end"], second["label"]) not in got

    page.keyboard.press("j")
    label = focused(page)["label"]
    left = [s for s in offered[3:] if s["label"] == label]
    page.keyboard.press("Shift+Y")  # every suggestion of that label
    wait_saved(page)
    got = {(s["start"], s["end"], s["label"]) for s in saved(doc.id)}
    assert {(s["start"], s["end"], s["label"]) for s in left} <= got
    assert not [s for s in page.evaluate("() => window.__annotate.editor().sugs.map(g => g.label)")
                if s == label]

    page.keyboard.press("Control+z")  # one undo step takes them all back
    wait_saved(page)
    assert len(saved(doc.id)) == 2
    no_errors = [e for e in page.js_errors if "favicon" not in e and "404" not in e]
    assert not no_errors, no_errors


def test_tagging_offers_the_other_occurrences_and_o_tags_them_all(page, live, assisted):
    project, docs, saved, _suggested = assisted
    doc = docs["002"]
    login(page, live.url, "ann")
    open_doc(page, live.url, project.id, doc.id)
    # a word the dictionary does not know, standing several times in the text
    word = next(w for w in ("인공지능", "AI", "실리콘밸리", "데이터") if doc.text.count(w) >= 3)
    # only the page's own: once the server's have arrived (they may come after the page is ready)
    page.wait_for_function("() => window.__annotate.editor().offering !== null")
    page.evaluate("() => window.__annotate.editor().setSuggestions([])")
    i = doc.text.index(word)
    drag_select(page, doc.text, i, i + len(word))
    page.keyboard.press("2")
    message = page.get_by_test_id("message")
    expect(message).to_contain_text(re.compile(r"stands \d+ more time"))
    n = sug_count(page)
    assert n >= 1
    page.keyboard.press("o")
    wait_saved(page)
    spans = saved(doc.id)
    assert len(spans) == n + 1
    assert {doc.text[s["start"]:s["end"]] for s in spans} == {word}
    assert all(s["label"] == "ORG" for s in spans)


def test_a_control_document_shows_no_suggestions_not_even_the_pages_own(page, live, assisted, h):
    """With every document a control one, the server suggests nothing and tagging a word that
    stands three times offers none of its other occurrences; `o` tags nothing more."""
    from annotator.storage.models import Project, SuggestionExposure

    project, docs, saved, _suggested = assisted
    with h.session() as s:
        p = s.get(Project, project.id)
        p.settings = {**(p.settings or {}), "control_share": 1.0}
        s.commit()
    doc = docs["002"]
    login(page, live.url, "ann")
    open_doc(page, live.url, project.id, doc.id)
    page.wait_for_function("() => window.__annotate.editor().offering === false")  # the answer is in
    assert sug_count(page) == 0
    word = next(w for w in ("인공지능", "AI", "실리콘밸리", "데이터") if doc.text.count(w) >= 3)
    i = doc.text.index(word)
    drag_select(page, doc.text, i, i + len(word))
    page.keyboard.press("2")
    wait_saved(page)
    assert sug_count(page) == 0
    expect(page.get_by_test_id("message")).not_to_contain_text("more time")
    page.keyboard.press("o")
    expect(page.get_by_test_id("message")).to_contain_text("No suggestions on this document")
    assert [(s["start"], s["end"]) for s in saved(doc.id)] == [(i, i + len(word))]
    assert "origin" not in saved(doc.id)[0]
    with h.session() as s:
        shown = [e.shown for e in s.execute(select(SuggestionExposure).where(
            SuggestionExposure.document_id == doc.id)).scalars()]
    assert shown == [False]


def test_bob_on_the_page_is_offered_nothing_of_what_alice_drew_on_the_same_document(page, live, h):
    """k = 2: alice submitted d; bob opens d and the page shows what it would have shown had
    she never annotated it (issue 23): the suggestions of her work elsewhere, none of hers on d."""
    from test_independence import ELSEWHERE, D, span

    alice, h_bob = h.user("alice2"), h.user("bob2")
    project = h.project("Independent", members=[alice, h_bob], language="ko", k=2)
    h.settings(project, control_share=0.0)
    d, elsewhere = h.docs(project, [{"text": D}, {"text": ELSEWHERE}])
    h.tokenize(project)
    a = h.api(alice)
    for doc, spans in ((elsewhere, [span(ELSEWHERE, "메타", "ORG")]),
                       (d, [span(D, "스케일AI", "ORG"), span(D, "알렉산드르 왕", "PERSON"), span(D, "메타", "ORG")])):
        status, body = a.put(f"/api/v1/documents/{doc.id}/annotation",
                             {"version": 0, "spans": spans, "status": "submitted"})
        assert status == 200, body
    login(page, live.url, "bob2")
    open_doc(page, live.url, project.id, d.id)
    expect(page.locator(".sg.sug").first).to_be_visible()
    shown = page.evaluate("() => window.__annotate.editor().sugs.map(g => [g.start, g.end, g.label])")
    assert [(D[s:e], label) for s, e, label in shown] == [("메타", "ORG")]  # from elsewhere only
