"""Verbs for driving the annotate page like a person: log in, drag-select text, read state."""

from __future__ import annotations

import re

from conftest import PASSWORD
from playwright.sync_api import Page, expect


def u16(text: str, cp: int) -> int:
    return len(text[:cp].encode("utf-16-le")) // 2


def login(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)


def wait_ready(page: Page) -> None:
    # A Korean document's first open loads Kiwi in the server (seconds on a busy machine).
    page.wait_for_selector(".annotate[data-ready]", timeout=30_000)


def open_next(page: Page, base: str, pid: int) -> int:
    """The annotator's next document; returns its id (the page moves to the document's URL)."""
    page.goto(f"{base}/projects/{pid}/annotate")
    wait_ready(page)
    page.wait_for_url(re.compile(r"/documents/\d+/annotate$"))
    return int(re.search(r"/documents/(\d+)/annotate$", page.url).group(1))


def open_doc(page: Page, base: str, pid: int, did: int) -> None:
    page.goto(f"{base}/projects/{pid}/documents/{did}/annotate")
    wait_ready(page)


def drag_select(page: Page, text: str, start: int, end: int, modifiers: tuple = ()) -> None:
    """Select code points [start, end) of the document with a real mouse drag."""
    a, b = u16(text, start), u16(text, end)
    # Scroll first and let two frames pass: lines off screen skip layout (content-visibility),
    # so their real heights arrive a frame after they come into view.
    page.evaluate("""async ([a, b]) => {
        const ed = window.__annotate.editor();
        ed.segs[ed.segIndex(a)].scrollIntoView({block: 'center'});
        for (let i = 0; i < 3; i++) await new Promise(r => requestAnimationFrame(r));
    }""", [a, b])
    pts = page.evaluate("""([a, b]) => {
        const ed = window.__annotate.editor();
        function rect(u, w) {
          const el = ed.segs[ed.segIndex(u)];
          const r = document.createRange();
          r.setStart(el.firstChild, u - el._s);
          r.setEnd(el.firstChild, u - el._s + w);
          const rs = r.getClientRects();
          return rs[rs.length - 1];
        }
        const t = ed.text;
        const wa = (t.charCodeAt(a) & 0xfc00) === 0xd800 ? 2 : 1;
        const wb = (t.charCodeAt(b - 1) & 0xfc00) === 0xdc00 ? 2 : 1;
        const ra = rect(a, wa), rb = rect(b - wb, wb);
        return [ra.left + 1, ra.top + ra.height / 2, rb.right - 1, rb.top + rb.height / 2];
    }""", [a, b])
    for m in modifiers:
        page.keyboard.down(m)
    page.mouse.move(pts[0], pts[1])
    page.mouse.down()
    page.mouse.move((pts[0] + pts[2]) / 2, (pts[1] + pts[3]) / 2, steps=3)
    page.mouse.move(pts[2], pts[3], steps=3)
    page.mouse.up()
    for m in modifiers:
        page.keyboard.up(m)
    selected = page.evaluate("() => window.getSelection().toString()")
    assert selected, "the drag selected nothing"


def wait_saved(page: Page) -> None:
    expect(page.get_by_test_id("save-state")).to_have_text("Saved", timeout=8000)


def spans_on_page(page: Page) -> list[dict]:
    return page.evaluate("""() => { const ed = window.__annotate.editor();
        return ed.spans.map(s => ({start: s.start, end: s.end, label: s.label,
                                   attributes: Object.assign({}, s.attributes)})); }""")
