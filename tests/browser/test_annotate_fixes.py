"""What a new user tripped on, on the annotate page (issue #13): one selected span at a time,
exact mode (Alt) per selection wherever the mouse is released, snapping that never cuts a
combining mark off its letter, particles left outside spans, readable label tags that stay
with their span, and the save indicator always in view."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser.helpers import drag_select, login, open_doc, spans_on_page, u16


@pytest.fixture
def demo(h):
    from annotator.storage.models import Document

    project = h.demo()
    ann = h.user("ann")
    h.tokenize(project)
    with h.session() as s:
        docs = list(s.execute(select(Document).where(Document.project_id == project.id)
                              .order_by(Document.id)).scalars())
    return SimpleNamespace(project=project, pid=project.id, ann=ann, h=h,
                           docs={d.external_id[:3]: SimpleNamespace(id=d.id, text=d.text, tokens=d.tokens)
                                 for d in docs})


def selected_spans(page) -> int:
    """How many distinct spans look selected (segments of one span share its selection)."""
    return page.evaluate("""() => {
        const ed = window.__annotate.editor();
        const ids = new Set();
        document.querySelectorAll('.sg.sel').forEach(el => {
            ed.covering(el._s, el._e).forEach(sp => ids.add(sp.id));
        });
        return document.querySelectorAll('.sg.sel').length ? Math.max(ids.size, 1) : 0;
    }""")


def test_exactly_one_span_looks_selected(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    for word, key in (("알렉산드르", "1"), ("메타", "2"), ("구글", "2")):
        i = doc.text.index(word)
        drag_select(page, doc.text, i, i + len(word))
        page.keyboard.press(key)
    assert page.locator(".sg.sel").count() >= 1
    assert selected_spans(page) == 1, page.evaluate(
        "() => [...document.querySelectorAll('.sg.sel')].map(e => e.textContent)")
    page.keyboard.press("Escape")
    expect(page.locator(".sg.sel")).to_have_count(0)


@pytest.fixture
def english(h):
    project = h.project("English", language="en")
    h.user("ann")
    (doc,) = h.docs(project, [{"text": "We met Metaverse people\nand more text here.\n"}])
    h.tokenize(project)
    return SimpleNamespace(pid=project.id, did=doc.id, text=doc.text)


def drag_out_of_the_text(page, text: str, start: int, alt: bool) -> None:
    """Press the mouse on character ``start`` and release it far outside the text element,
    level with the same line (over the side panel)."""
    pt = page.evaluate("""(u) => {
        const ed = window.__annotate.editor();
        const el = ed.segs[ed.segIndex(u)];
        const r = document.createRange();
        r.setStart(el.firstChild, u - el._s); r.setEnd(el.firstChild, u - el._s + 1);
        const b = r.getClientRects()[0];
        const box = document.querySelector('[data-testid=doc-text]').getBoundingClientRect();
        return [b.left + 1, b.top + b.height / 2, box.right + 40];
    }""", u16(text, start))
    if alt:
        page.keyboard.down("Alt")
    page.mouse.move(pt[0], pt[1])
    page.mouse.down()
    page.mouse.move((pt[0] + pt[2]) / 2, pt[1], steps=4)
    page.mouse.move(pt[2], pt[1], steps=4)
    page.mouse.up()
    if alt:
        page.keyboard.up("Alt")
    assert page.evaluate("() => window.getSelection().toString()")


def test_alt_belongs_to_its_selection_wherever_the_mouse_is_released(page, live, english):
    login(page, live.url, "ann")
    open_doc(page, live.url, english.pid, english.did)
    i = english.text.index("etaverse")  # inside the token "Metaverse"
    drag_out_of_the_text(page, english.text, i, alt=True)
    page.keyboard.press("1")
    first = spans_on_page(page)
    assert [s["start"] for s in first] == [i], first  # exact: not snapped out to "Metaverse"
    page.keyboard.press("Delete")
    # an earlier Alt-drag does not leak into a later plain one
    drag_select(page, english.text, 0, 2, modifiers=("Alt",))
    page.keyboard.press("Escape")
    drag_out_of_the_text(page, english.text, i, alt=False)
    page.keyboard.press("1")
    assert [s["start"] for s in spans_on_page(page) if s["start"] > 2] == [i - 1]  # snapped to "Metaverse"


def test_a_double_clicked_korean_word_leaves_its_particle_outside(page, live, demo):
    doc = demo.docs["000"]
    i = doc.text.index("왕은")
    assert [i, i + 1] in doc.tokens and [i + 1, i + 2] in doc.tokens  # Kiwi: 왕 | 은
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    where = """async (u) => {
        const ed = window.__annotate.editor();
        ed.segs[ed.segIndex(u)].scrollIntoView({block: 'center'});
        for (let i = 0; i < 3; i++) await new Promise(r => requestAnimationFrame(r));
        const el = ed.segs[ed.segIndex(u)];
        const r = document.createRange();
        r.setStart(el.firstChild, u - el._s); r.setEnd(el.firstChild, u - el._s + 1);
        const b = r.getClientRects()[0];
        return [b.left + b.width / 2, b.top + b.height / 2];
    }"""
    point = page.evaluate(where, u16(doc.text, i))
    page.mouse.dblclick(point[0], point[1])
    assert page.evaluate("() => window.getSelection().toString()").strip() == "왕은"
    page.keyboard.press("1")
    assert [(s["start"], s["end"]) for s in spans_on_page(page)] == [(i, i + 1)]  # 왕
    expect(page.get_by_test_id("span-list")).not_to_contain_text("ends in a particle")
    page.keyboard.press("Delete")
    # exact mode keeps what was selected, and the side list says it ends in a particle
    point = page.evaluate(where, u16(doc.text, i))
    page.mouse.dblclick(point[0], point[1])
    page.keyboard.press("Alt+1")
    assert [(s["start"], s["end"]) for s in spans_on_page(page)] == [(i, i + 2)]
    note = page.get_by_test_id("span-list").locator(".particle-note")
    expect(note).to_have_text("ends in a particle")
    assert "outside spans" in note.get_attribute("title")


CONTRAST = """() => {
    function lum(rgb) {
        const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(c => {
            c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    }
    const out = {};
    document.querySelectorAll('.sg.ent-e').forEach(el => {
        const st = getComputedStyle(el, '::after');
        const a = lum(st.color), b = lum(st.backgroundColor);
        out[el.dataset.etag] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    });
    return out;
}"""


def with_saved_spans(h, demo, doc, name="ann"):
    """Spans of every entity label saved for ``doc`` (on token boundaries, as the page saves)."""
    from test_teams import spans_by

    from annotator.services.users import get_user

    with h.session() as s:
        user = get_user(s, name)
    starts, ends = {a for a, _ in doc.tokens}, {b for _, b in doc.tokens}
    spans = [sp for sp in spans_by("alice", doc.text)
             if sp["start"] in starts and sp["end"] in ends and sp["label"] != "CLAIM"]
    status, body = h.api(user).put(f"/api/v1/documents/{doc.id}/annotation",
                                   {"spans": spans, "version": 0, "status": "in_progress"})
    assert status == 200, body
    return spans


def test_label_tags_are_readable_on_every_label_colour(page, live, demo):
    doc = demo.docs["002"]
    spans = with_saved_spans(demo.h, demo, doc)
    assert {"PERSON", "ORG", "MONEY"} <= {sp["label"] for sp in spans}
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    ratios = page.evaluate(CONTRAST)
    assert set(ratios) >= {"PERSON", "ORG", "MONEY"}, ratios
    assert all(r >= 4.5 for r in ratios.values()), ratios  # WCAG AA


def test_a_label_tag_stays_on_the_line_of_its_span(page, live, demo):
    doc = demo.docs["001"]
    with_saved_spans(demo.h, demo, doc)
    page.set_viewport_size({"width": 700, "height": 900})
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    apart = page.evaluate("""async () => {
        const out = [];
        const ends = [...document.querySelectorAll('.sg.ent-e')];
        for (const el of ends) {
            el.scrollIntoView({block: 'center'});
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            const rects = el.getClientRects();
            const t = el.firstChild, r = document.createRange();
            r.setStart(t, t.length - 1); r.setEnd(t, t.length);
            const last = r.getClientRects()[0], box = rects[rects.length - 1];
            if (Math.abs(last.top - box.top) > 2) out.push(el.textContent);
        }
        return [ends.length, out];
    }""")
    assert apart[0] > 30, apart
    assert apart[1] == [], f"{len(apart[1])} tag(s) wrapped away from their span: {apart[1][:5]}"


def test_the_save_state_stays_in_view_at_the_bottom_of_a_long_document(page, live, demo):
    doc = demo.docs["002"]  # the longest
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(200)
    box = page.get_by_test_id("save-state").bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= page.viewport_size["height"], box
