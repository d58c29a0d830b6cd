"""The agreement report and review pages in headless Chromium: heatmap, drill-down, gold."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PASSWORD
from sqlalchemy import select
from test_teams import spans_by

from annotator.storage.models import Document, User

pytestmark = pytest.mark.browser
URL = "/api/v1"
SHOTS = Path(__file__).resolve().parent.parent.parent / "exports" / "screenshots"


@pytest.fixture
def server(live):
    """The shared live server (tests/browser/conftest.py), as its base URL."""
    return live.url


@pytest.fixture
def page(page):
    page.problems = page.js_errors
    return page


@pytest.fixture
def annotated(h):
    project = h.demo()
    with h.session() as s:
        s.execute(select(User)).scalars().all()
        lead = s.execute(select(User).where(User.username == "lead")).scalar_one()
        users = {n: s.execute(select(User).where(User.username == n)).scalar_one() for n in ("alice", "bob")}
        docs = list(s.execute(select(Document).where(Document.project_id == project.id)
                              .order_by(Document.id)).scalars())
    users["carol"] = h.user("carol")
    from annotator.services.users import set_password

    with h.session() as s:
        set_password(s, s.get(User, lead.id), PASSWORD)
        s.commit()
    for name, user in users.items():
        api = h.api(user)
        for d in docs:
            status, body = api.put(f"{URL}/documents/{d.id}/annotation",
                                   {"spans": spans_by(name, d.text), "version": 0, "status": "submitted"})
            assert status == 200, body
    return {"project": project, "docs": docs}


def login(page, server, username="lead"):
    page.goto(f"{server}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")


def test_report_heatmap_and_drilldown_then_adjudicate(server, page, annotated, h):
    login(page, server)
    page.click("text=Agreement report")
    page.wait_for_selector("#report[data-ready='1']")
    # heatmap: one cell per ordered pair of the three annotators, with values
    heat = page.locator("#heatmap svg")
    assert heat.is_visible()
    # the heatmap fills its card instead of a small corner of it
    card = page.locator("#heatmap").bounding_box()
    assert heat.bounding_box()["width"] >= 0.6 * card["width"], (heat.bounding_box(), card)
    assert page.locator("#heatmap g.pair").count() == 6
    assert page.locator("#heatmap g.pair text").first.text_content() not in ("", "n/a")
    assert page.locator("#label-bars svg").is_visible()
    assert "PERSON" in page.locator("#label-bars").text_content()
    page.select_option("#metric", "overlap")
    page.select_option("#layer", "claim")
    assert page.locator("#heatmap g.pair").count() == 6
    # annotators table: honeypot-free figures for three people
    assert page.locator("#annotators tbody tr").count() == 3
    assert "carol" in page.locator("#annotators").inner_text()
    # documents sorted by disagreement; one click opens the side-by-side drill-down
    rows = page.locator("#documents tbody tr")
    assert rows.count() == 5
    rows.first.click()
    page.wait_for_selector("#drilldown:not([hidden]) #drill-table tbody tr")
    assert page.locator("#drilldown").is_visible()
    head = page.locator("#drill-table thead th").all_inner_texts()
    assert head[-3:] == ["alice", "bob", "carol"]
    assert page.locator("#drill-table tbody tr.conflict").count() > 0
    assert page.locator("#drill-columns .column").count() == 3
    assert page.locator("#drill-columns .seg.conflict").count() > 0
    # from the drill-down to the review page, save gold with the proposal; both pages count
    # disagreement by one definition, and say it
    import re

    said = re.search(r"\d+ disagreeing of \d+ distinct spans", page.locator("#drill-summary").inner_text())
    assert said, page.locator("#drill-summary").inner_text()
    assert "offsets and label" in page.get_by_test_id("disagreement-definition").inner_text()
    page.click("text=Review and settle gold")
    page.wait_for_selector("#adjudicate[data-ready='1']")
    assert said.group(0) in page.locator("#review-summary").inner_text()
    assert "offsets and label" in page.get_by_test_id("disagreement-definition").inner_text()
    assert page.locator("#candidates tbody tr.conflict").count() > 0
    assert page.locator("#doc-text .seg.conflict").count() > 0
    page.click("#save-gold")
    page.wait_for_selector("text=Saved gold version 1")
    assert page.locator("#decisions tbody tr").count() > 1
    assert not [p for p in page.problems if "Content Security Policy" in p or "Error" in p], page.problems
    did = int(page.url.rstrip("/").split("/")[-2])
    status, gold = h.api(h.user("lena", "lead")).get(f"{URL}/documents/{did}/annotation?user=gold")
    assert gold["status"] == "submitted" and gold["version"] == 1


def test_adding_a_selected_span_on_the_review_page(server, page, annotated, h):
    login(page, server)
    doc = annotated["docs"][2]
    page.goto(f"{server}/documents/{doc.id}/adjudicate")
    page.wait_for_selector("#adjudicate[data-ready='1']")
    before = page.locator("#candidates tbody tr").count()
    # select the first word of the text that no annotator marked as a whole
    page.evaluate("""() => {
        const pre = document.getElementById('doc-text');
        const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
        let node; while ((node = walker.nextNode())) {
            const m = /[A-Za-z]{4,}/.exec(node.textContent);
            if (m && node.parentElement === pre) {
                const r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
                const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r); return m[0];
            }
        }
    }""")
    page.select_option("#add-label", "ORG")
    page.click("#add-selection")
    assert page.locator("#candidates tbody tr").count() == before + 1
    page.click("#save-gold")
    page.wait_for_selector("text=Saved gold version 1")
    assert "added" in page.locator("#decisions").inner_text()


@pytest.fixture
def suggested(h):
    """The demo project worked with suggestions: doc 4 is a honeypot (its reference feeds the
    dictionary), two in five of each person's documents are control ones; alice, bob and carol
    (test_teams.spans_by) take the suggestions that are in what they mean to mark, relabel the
    ones they would label otherwise, reject the rest and draw what is left; then gold on two
    documents. Times are made up: 40 s a document, 6 s a span drawn, 2 s a span accepted."""
    from datetime import timedelta

    from test_teams import base_spans

    from annotator.services.users import set_password
    from annotator.storage.models import Annotation, Project

    project = h.demo()
    with h.session() as s:
        lead = s.execute(select(User).where(User.username == "lead")).scalar_one()
        set_password(s, s.get(User, lead.id), PASSWORD)
        p = s.get(Project, project.id)
        p.settings = {**(p.settings or {}), "control_share": 0.4}
        s.commit()
        docs = list(s.execute(select(Document).where(Document.project_id == project.id)
                              .order_by(Document.id)).scalars())
    h.tokenize(project)
    L = h.api(lead)
    status, body = L.put(f"{URL}/documents/{docs[4].id}/honeypot", {"spans": base_spans(docs[4].text), "version": 0})
    assert status == 200, body
    with h.session() as s:
        people = {n: s.execute(select(User).where(User.username == n)).scalar_one() for n in ("alice", "bob")}
    people["carol"] = h.user("carol", member_of=[project])
    seconds = {}
    for d in docs:
        for name, user in people.items():
            api = h.api(user)
            offered = api.get(f"{URL}/documents/{d.id}/suggestions")[1]["items"]
            by_place = {(g["start"], g["end"]): g for g in offered}
            spans, used, drawn = [], set(), 0
            for sp in spans_by(name, d.text):
                g = by_place.get((sp["start"], sp["end"]))
                if g is not None:
                    used.add((g["start"], g["end"]))
                    sp = dict(sp, origin={"source": g["source"], "version": g["version"],
                                          "edited": g["label"] != sp["label"]})
                else:
                    drawn += 1
                spans.append(sp)
            for g in offered:
                if (g["start"], g["end"]) not in used:
                    api.post(f"{URL}/documents/{d.id}/suggestions/rejections",
                             {k: g[k] for k in ("start", "end", "label", "source", "version")})
            status, body = api.put(f"{URL}/documents/{d.id}/annotation",
                                   {"spans": spans, "version": 0, "status": "submitted"})
            assert status == 200, body
            seconds[(d.id, user.id)] = 40 + 6 * drawn + 2 * len(used)
    for d in docs[:2]:
        assert L.put(f"{URL}/documents/{d.id}/gold", {"spans": base_spans(d.text), "version": 0})[0] == 200
    with h.session() as s:
        for ann in s.execute(select(Annotation).where(Annotation.document_id.in_([d.id for d in docs]))).scalars():
            if (ann.document_id, ann.user_id) in seconds:
                ann.created_at = ann.submitted_at - timedelta(seconds=seconds[(ann.document_id, ann.user_id)])
        s.commit()
    return project


def test_report_shows_what_suggestions_did(server, page, suggested, h):
    status, report = h.api(h.user("lena", "lead", member_of=[suggested])).get(
        f"{URL}/projects/{suggested.id}/agreement")
    sec = report["suggestions"]
    arms = sec["arms"]
    assert arms["with"]["annotations"] and arms["without"]["annotations"] >= 3  # the honeypot at least
    login(page, server)
    page.goto(f"{server}/projects/{suggested.id}/report")
    page.wait_for_selector("#report[data-ready='1']")
    rows = page.locator("#sug-arms tbody tr")
    assert rows.count() == 4
    assert rows.nth(0).locator("td").all_inner_texts() == [str(arms["with"]["annotations"]),
                                                            str(arms["without"]["annotations"])]
    f1 = rows.nth(3).locator("td").first.inner_text()
    assert f1.startswith(f"{arms['with']['gold']['f1']:.2f}")
    dictionary = page.locator("#sug-sources tr[data-source='dictionary']")
    assert dictionary.count() == len(sec["sources"]["dictionary"]["labels"]) + 1
    total = page.locator("#sug-sources tr[data-source='dictionary'][data-label='all labels'] td")
    assert total.nth(2).inner_text() == str(sec["sources"]["dictionary"]["all"]["accepted"])
    assert total.nth(3).inner_text() == str(sec["sources"]["dictionary"]["all"]["rejected"])
    section = page.locator("#suggestions")
    box = section.bounding_box()
    assert page.evaluate("() => document.getElementById('suggestions').scrollWidth <= "
                         "document.getElementById('suggestions').clientWidth")  # nothing cut off
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / "report-suggestions.png"))
    assert box["height"] > 200
    assert not [p for p in page.problems if "Content Security Policy" in p or "Error" in p], page.problems
