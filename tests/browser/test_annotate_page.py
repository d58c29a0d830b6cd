"""The annotate page end to end: real app, real database, headless Chromium, real mouse and keys.

Every check of what was saved goes through the API (the server's view), not the page.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser.helpers import (
    drag_select,
    login,
    open_doc,
    open_next,
    spans_on_page,
    u16,
    wait_ready,
    wait_saved,
)


@pytest.fixture
def demo(h):
    from annotator.storage.models import Document

    project = h.demo()
    ann = h.user("ann")
    with h.session() as s:
        docs = list(s.execute(select(Document).where(Document.project_id == project.id)
                              .order_by(Document.id)).scalars())
    by_prefix = {d.external_id[:3]: SimpleNamespace(id=d.id, text=d.text, external_id=d.external_id)
                 for d in docs}
    api = h.api(ann)

    def saved(did):
        status, body = api.get(f"/api/v1/documents/{did}/annotation")
        assert status == 200, body
        return body

    return SimpleNamespace(project=project, pid=project.id, ann=ann, docs=by_prefix, saved=saved, h=h)


def no_js_errors(page):
    errs = [e for e in page.js_errors if "favicon" not in e and "404" not in e]
    assert not errs, errs


def test_login_home_logout(page, live, demo):
    login(page, live.url, "ann")
    card = page.get_by_test_id("project-card")
    expect(card).to_contain_text("Meta & Scale AI news")
    expect(card).to_contain_text("0 submitted of 5")
    expect(card.locator("progress")).to_have_attribute("max", "5")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(live.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    no_js_errors(page)


def test_tag_person_by_mouse_and_key_persists_after_reload(page, live, demo):
    login(page, live.url, "ann")
    page.get_by_role("link", name=re.compile("annotating")).click()
    wait_ready(page)
    page.wait_for_url(re.compile(r"/documents/\d+/annotate$"))
    did = int(re.search(r"/documents/(\d+)/", page.url).group(1))
    doc = next(d for d in demo.docs.values() if d.id == did)
    word = "알렉산드르"
    i = doc.text.index(word)
    drag_select(page, doc.text, i + 1, i + 3)  # part of the word: snaps out to all of it
    page.keyboard.press("1")
    expect(page.locator(".sg.ent-e[data-etag=PERSON]")).to_have_count(1)
    wait_saved(page)
    body = demo.saved(did)
    assert [(s["start"], s["end"], s["label"]) for s in body["spans"]] == [(i, i + len(word), "PERSON")]
    assert body["status"] == "in_progress"

    page.reload()
    wait_ready(page)
    expect(page.locator(".sg.ent-e[data-etag=PERSON]")).to_have_count(1)
    expect(page.get_by_test_id("span-list")).to_contain_text(word)
    assert spans_on_page(page) == [{"start": i, "end": i + len(word), "label": "PERSON", "attributes": {}}]
    no_js_errors(page)


def test_word_after_emoji_has_exact_code_point_offsets(page, live, demo):
    doc = demo.docs["001"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    i = doc.text.index("📰\u00a0Sync Letter") + 2
    assert doc.text[i:i + 4] == "Sync" and u16(doc.text, i) != i  # emoji before it
    # from the NBSP after the emoji to the middle of the word: trimmed and snapped to "Sync"
    drag_select(page, doc.text, i - 1, i + 2)
    page.keyboard.press("2")
    # and a Korean word after a later emoji
    j = doc.text.index("🎯 ") + 2
    word = doc.text[j:].split()[0]
    drag_select(page, doc.text, j, j + 1)
    page.keyboard.press("2")
    wait_saved(page)
    spans = demo.saved(doc.id)["spans"]
    assert [doc.text[s["start"]:s["end"]] for s in spans] == ["Sync", word]
    assert [s["start"] for s in spans] == [i, j]


def test_exact_characters_tag_meta_inside_metaneun(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    i = doc.text.index("메타는")
    # Default mode snaps outward to the export's tokens (Kiwi cuts 메타|는), so part of a word
    # grows to its token...
    drag_select(page, doc.text, i, i + 1)
    page.keyboard.press("2")
    expect(page.get_by_test_id("span-list")).to_contain_text("메타")
    assert [(s["start"], s["end"]) for s in spans_on_page(page)] == [(i, i + 2)]
    page.keyboard.press("Delete")
    # ...the toggle keeps exactly the selected characters.
    page.get_by_test_id("exact-toggle").check()
    drag_select(page, doc.text, i, i + 2)
    page.keyboard.press("2")
    wait_saved(page)
    spans = demo.saved(doc.id)["spans"]
    assert [(doc.text[s["start"]:s["end"]], s["label"]) for s in spans] == [("메타", "ORG")]
    # Holding Alt does the same with the toggle off.
    page.get_by_test_id("exact-toggle").uncheck()
    k = doc.text.index("메타는", i + 3)
    drag_select(page, doc.text, k, k + 2)
    page.keyboard.press("Alt+2")
    wait_saved(page)
    spans = demo.saved(doc.id)["spans"]
    assert [doc.text[s["start"]:s["end"]] for s in spans] == ["메타", "메타"]
    assert spans[1]["start"] == k


def test_claim_needs_a_stance_before_it_is_saved_or_submitted(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    sentence = "2024년, 인공지능 시장은 유례없는 격변기를 맞이하고 있었습니다."
    i = doc.text.index(sentence)
    j = doc.text.index("메타(Meta)", i)
    drag_select(page, doc.text, i, i + len(sentence))
    page.keyboard.press("4")
    drag_select(page, doc.text, j, j + 2)
    page.keyboard.press("2")  # an ORG outside the claim: saved right away
    wait_saved(page)
    expect(page.get_by_test_id("incomplete")).to_contain_text("needs a stance")
    expect(page.locator(".sg.clm-x.clm-s")).to_have_count(1)
    assert [s["label"] for s in demo.saved(doc.id)["spans"]] == ["ORG"]  # the CLAIM was not sent

    page.keyboard.press("Enter")  # refused
    expect(page.get_by_test_id("message")).to_contain_text("Cannot submit")
    assert demo.saved(doc.id)["status"] == "in_progress"
    assert f"/documents/{doc.id}/" in page.url

    # Submit selected the incomplete CLAIM: f sets its stance.
    expect(page.get_by_test_id("selection-bar")).to_contain_text("CLAIM")
    page.keyboard.press("f")
    wait_saved(page)
    expect(page.get_by_test_id("incomplete")).to_be_hidden()
    spans = demo.saved(doc.id)["spans"]
    claim = next(s for s in spans if s["label"] == "CLAIM")
    assert doc.text[claim["start"]:claim["end"]] == sentence
    assert claim["attributes"] == {"stance": "favor"}
    expect(page.locator(".sg.clm-s").first).to_have_attribute("data-ctag", re.compile("favor"))
    # a then n change it; the server follows
    page.keyboard.press("a")
    page.keyboard.press("n")
    wait_saved(page)
    assert next(s for s in demo.saved(doc.id)["spans"] if s["label"] == "CLAIM")["attributes"] == {"stance": "neutral"}


def test_claim_over_an_entity_both_visible(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    i = doc.text.index("마크 저커버그는")
    drag_select(page, doc.text, i, i + 6)
    page.keyboard.press("1")
    drag_select(page, doc.text, i, i + 20)
    page.keyboard.press("4")
    page.keyboard.press("a")
    wait_saved(page)
    both = page.locator(".sg.ent.clm")
    expect(both.first).to_be_visible()
    labels = sorted(s["label"] for s in demo.saved(doc.id)["spans"])
    assert labels == ["CLAIM", "PERSON"]


def test_select_delete_undo_redo_and_relabel(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    i = doc.text.index("마크 저커버그")
    drag_select(page, doc.text, i, i + 7)
    page.keyboard.press("1")
    wait_saved(page)
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("selection-bar")).to_be_hidden()

    page.keyboard.press("Tab")  # selects the (only) span
    expect(page.get_by_test_id("selection-bar")).to_contain_text("마크 저커버그")
    page.keyboard.press("Delete")
    wait_saved(page)
    assert demo.saved(doc.id)["spans"] == []

    page.keyboard.press("Control+z")
    wait_saved(page)
    assert [s["label"] for s in demo.saved(doc.id)["spans"]] == ["PERSON"]

    page.keyboard.press("Control+Shift+z")
    wait_saved(page)
    assert demo.saved(doc.id)["spans"] == []

    page.keyboard.press("Control+z")
    wait_saved(page)
    # click selects it; a label key relabels it; Backspace removes it
    page.locator(".sg.ent").first.click()
    page.keyboard.press("2")
    wait_saved(page)
    assert [s["label"] for s in demo.saved(doc.id)["spans"]] == ["ORG"]
    page.keyboard.press("Backspace")
    wait_saved(page)
    assert demo.saved(doc.id)["spans"] == []


def test_entities_may_not_overlap(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    i = doc.text.index("마크 저커버그")
    drag_select(page, doc.text, i, i + 7)
    page.locator("button.label-btn[data-label=PERSON]").click()  # the button works like the key
    expect(page.locator(".sg.ent-e[data-etag=PERSON]")).to_have_count(1)
    drag_select(page, doc.text, i + 3, i + 7)
    page.keyboard.press("2")
    expect(page.get_by_test_id("message")).to_contain_text("may not overlap")
    wait_saved(page)
    assert [s["label"] for s in demo.saved(doc.id)["spans"]] == ["PERSON"]


def test_side_list_hover_highlights_its_span(page, live, demo):
    doc = demo.docs["000"]
    login(page, live.url, "ann")
    open_doc(page, live.url, demo.pid, doc.id)
    i = doc.text.index("마크 저커버그")
    drag_select(page, doc.text, i, i + 7)
    page.keyboard.press("1")
    page.keyboard.press("Escape")
    row = page.get_by_test_id("span-list").locator("li").first
    expect(row).to_contain_text("PERSON")
    row.hover()
    expect(page.locator(".sg.hov")).to_have_count(1)
    page.mouse.move(5, 5)
    expect(page.locator(".sg.hov")).to_have_count(0)


def test_submit_with_enter_opens_a_different_document(page, live, demo):
    login(page, live.url, "ann")
    first = open_next(page, live.url, demo.pid)
    doc = next(d for d in demo.docs.values() if d.id == first)
    i = doc.text.index("메타")
    drag_select(page, doc.text, i, i + 2)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/documents/(?!{first}/)\d+/annotate$"))
    wait_ready(page)
    second = int(re.search(r"/documents/(\d+)/", page.url).group(1))
    assert second != first
    body = demo.saved(first)
    assert body["status"] == "submitted"
    assert [doc.text[s["start"]:s["end"]] for s in body["spans"]] == [doc.text[i:i + 3]] or body["spans"]


def test_skip_with_a_reason(page, live, demo):
    login(page, live.url, "ann")
    first = open_next(page, live.url, demo.pid)
    page.keyboard.press("s")
    dialog = page.get_by_test_id("skip-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.type("not a news article")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/documents/(?!{first}/)\d+/annotate$"))
    body = demo.saved(first)
    assert body["status"] == "skipped" and body["skip_reason"] == "not a news article"


@pytest.fixture
def slow_frames(page):
    """Every animation frame comes 80 ms late, as on a loaded machine. Alpine's x-show shows an
    element on a later frame, so code that acts on it in $nextTick finds it still hidden."""
    page.add_init_script("""(() => {
      const raf = window.requestAnimationFrame.bind(window);
      window.requestAnimationFrame = cb => setTimeout(() => raf(cb), 80);
      window.addEventListener('annotate:ready', () => {
        window.__textShownAtReady = document.querySelector('[data-testid=doc-text]').getClientRects().length > 0;
      });
    })()""")
    return page


def test_ready_means_the_text_is_shown_even_when_frames_are_slow(slow_frames, live, demo):
    page = slow_frames
    login(page, live.url, "ann")
    open_next(page, live.url, demo.pid)
    assert page.evaluate("window.__textShownAtReady") is True


def test_skip_reason_is_typed_into_the_dialog_even_when_frames_are_slow(slow_frames, live, demo):
    page = slow_frames
    login(page, live.url, "ann")
    first = open_next(page, live.url, demo.pid)
    page.keyboard.press("s")
    dialog = page.get_by_test_id("skip-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.type("duplicate")  # at once: no key may be lost before the input has focus
    expect(dialog.locator("input")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/documents/(?!{first}/)\d+/annotate$"))
    assert demo.saved(first)["skip_reason"] == "duplicate"


def test_help_overlay_lists_every_shortcut(page, live, demo):
    login(page, live.url, "ann")
    open_next(page, live.url, demo.pid)
    page.keyboard.press("?")
    help_ = page.get_by_test_id("help")
    expect(help_).to_be_visible()
    for needle in ("PERSON", "ORG", "MONEY", "CLAIM", "Alt", "favor", "Tab", "Delete", "undo", "redo",
                   "Enter", "skip", "Esc"):
        expect(help_).to_contain_text(needle)
    page.keyboard.press("Escape")
    expect(help_).to_be_hidden()


def test_guidelines_panel_shows_sanitised_html(page, live, demo):
    login(page, live.url, "ann")
    open_next(page, live.url, demo.pid)
    body = page.locator(".guidelines-body")
    expect(body).to_be_hidden()
    page.get_by_role("button", name="Guidelines").click()
    expect(body).to_be_visible()
    assert body.locator("h1, h2, li").count() > 0
    assert body.locator("script").count() == 0


def test_stale_second_tab_gets_the_conflict_and_loses_nothing(context, live, demo):
    doc = demo.docs["000"]
    a = context.new_page()
    login(a, live.url, "ann")
    b = context.new_page()
    open_doc(a, live.url, demo.pid, doc.id)
    open_doc(b, live.url, demo.pid, doc.id)

    i = doc.text.index("마크 저커버그")
    a.bring_to_front()
    drag_select(a, doc.text, i, i + 7)
    a.keyboard.press("1")
    wait_saved(a)
    saved = demo.saved(doc.id)
    assert [s["label"] for s in saved["spans"]] == ["PERSON"]

    j = doc.text.index("메타(Meta)")
    b.bring_to_front()
    drag_select(b, doc.text, j, j + 2)
    b.keyboard.press("2")
    banner = b.get_by_test_id("conflict")
    expect(banner).to_be_visible(timeout=8000)
    expect(banner).to_contain_text("saved in another tab")
    expect(b.get_by_test_id("save-state")).to_contain_text("conflict")
    # Nothing was overwritten: the server still has tab A's version, unchanged.
    assert demo.saved(doc.id) == saved
    # Further edits in the stale tab are not sent either.
    b.keyboard.press("Enter")
    expect(b.get_by_test_id("message")).to_contain_text("Reload")
    assert demo.saved(doc.id) == saved
    # Reloading shows what tab A saved.
    b.get_by_role("button", name="Reload the saved version").click()
    wait_ready(b)
    expect(b.locator(".sg.ent-e[data-etag=PERSON]")).to_have_count(1)
    expect(b.get_by_test_id("conflict")).to_be_hidden()


def test_queue_empty_message(page, live, demo):
    pid = demo.h.project("Empty").id  # a project with no documents; ann is a member
    login(page, live.url, "ann")
    page.goto(f"{live.url}/projects/{pid}/annotate")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()


GLUED = "알렉산더왕대표는 말했다. 메타는 투자했다."  # Kiwi glues 알렉산더왕 without the word


def open_glued_name(page, live, h):
    """ann opens a Korean project's one document, GLUED; returns (project, document)."""
    h.user("ann")
    p = h.project("Korean", language="ko")
    (doc,) = h.docs(p, [{"id": "a", "text": GLUED}])
    login(page, live.url, "ann")
    open_doc(page, live.url, p.id, doc.id)
    return p, doc


def tag_given_name_exactly(page):
    """Tag 알렉산더 (inside the glued 알렉산더왕) as PERSON with exact characters."""
    page.get_by_test_id("exact-toggle").check()
    drag_select(page, GLUED, 0, 4)
    page.keyboard.press("1")


def test_misaligned_span_is_marked_at_once_and_the_word_list_fixes_it(page, live, h):
    p, doc = open_glued_name(page, live, h)
    expect(page.get_by_test_id("misaligned")).to_be_hidden()
    tag_given_name_exactly(page)
    banner = page.get_by_test_id("misaligned")
    expect(banner).to_contain_text("1 span does not fall on token boundaries")
    expect(page.locator(".span-row.misaligned")).to_have_count(1)
    expect(page.locator(".sg.misal")).to_have_count(1)
    add = page.get_by_test_id("add-word")
    expect(add).to_have_text("Add “알렉산더” to the word list")
    add.click()  # a new word list means a new Kiwi instance in the server: seconds
    expect(banner).to_be_hidden(timeout=30_000)
    expect(page.locator(".span-row.misaligned")).to_have_count(0)
    expect(page.locator(".sg.misal")).to_have_count(0)
    wait_saved(page)
    api = h.api(h.user("lena", "lead"))
    assert api.get(f"/api/v1/projects/{p.id}/words")[1] == {"words": ["알렉산더"]}
    status, body = api.get(f"/api/v1/documents/{doc.id}/annotation?user=ann")
    assert [(s["start"], s["end"], s["label"]) for s in body["spans"]] == [(0, 4, "PERSON")]
    page.reload()
    wait_ready(page)
    expect(page.locator(".span-row")).to_have_count(1)
    expect(page.get_by_test_id("misaligned")).to_be_hidden()
    no_js_errors(page)


def test_tokens_from_the_background_job_reach_an_open_page(page, app, live, h):
    """Under `annotator serve` the web process does not tokenize: the page opens at once,
    snaps to words, asks again, and marks with the export's tokens once the job stored them."""
    from annotator.services import background
    from annotator.storage.models import Document

    app.config.update(SERVING=True, BACKGROUND_TOKENIZE=True)  # as `annotator serve` sets them
    p, doc = open_glued_name(page, live, h)
    expect(page.get_by_test_id("tokens-pending")).to_be_visible()
    tag_given_name_exactly(page)
    # the server's background process (as `annotator serve` starts it) runs the queued job:
    # it loads Kiwi and stores the tokens; the page picks them up
    background.start(app.config["DATABASE_URL"], app.config["DATA_DIR"])
    try:
        expect(page.get_by_test_id("misaligned")).to_contain_text(
            "1 span does not fall on token boundaries", timeout=60_000)
    finally:
        background.stop()
    expect(page.get_by_test_id("tokens-pending")).to_be_hidden()
    with h.session() as s:
        assert s.get(Document, doc.id).tokens is not None
    no_js_errors(page)
