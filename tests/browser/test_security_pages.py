"""Security in the browser: hostile text is shown as text on every page that shows it, and
the lead's members form.

The XSS test runs with the page's Content-Security-Policy switched off (bypass_csp), so that
what it tests is the escaping alone: had any page put the text in as HTML, the injected
<script> would run and alert. (That the CSP itself is strict and honoured is
tests/browser/test_pages_csp.py.)
"""

from __future__ import annotations

import copy

import pytest
from playwright.sync_api import expect

from browser.helpers import login, wait_ready

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
XSS = SCRIPT + " " + IMG
URL = "/api/v1"


def hostile_labels() -> list[dict]:
    """The news label set, with a hostile stance value (label names themselves are validated)."""
    from annotator.services.projects import LABEL_SETS

    labels = copy.deepcopy(LABEL_SETS["news"])
    labels[3]["attributes"]["stance"]["values"].append(IMG)
    return labels


@pytest.fixture
def hostile(h):
    """A project whose name, guidelines, document ids and texts, spans' attribute values and a
    skip reason all carry markup; two annotators who disagree on spans over that markup."""
    lead = h.user("lena", "lead")
    alice, bob = h.user("alice"), h.user("bob")
    project = h.project(
        "News " + XSS,
        language="en",
        label_set=hostile_labels(),
        guidelines="# Rules\n\nNever " + XSS + "\n\n[a link](javascript:alert(1))",
    )
    text = "Meta paid " + SCRIPT + " and " + IMG + " to Scale AI."
    docs = h.docs(
        project,
        [{"id": "doc " + XSS, "text": text}, {"id": "second " + IMG, "text": "Second: " + XSS}],
    )
    s_at, i_at = text.index(SCRIPT), text.index(IMG)
    org = {"start": 0, "end": 4, "label": "ORG", "attributes": {}}
    spans = {
        "alice": [
            org,
            {"start": s_at, "end": s_at + len(SCRIPT), "label": "ORG", "attributes": {}},
            {
                "start": i_at,
                "end": i_at + len(IMG),
                "label": "CLAIM",
                "attributes": {"stance": IMG},
            },
        ],
        "bob": [
            org,
            {"start": s_at, "end": s_at + len(SCRIPT), "label": "PERSON", "attributes": {}},
        ],
    }
    for user in (alice, bob):
        status, body = h.api(user).put(
            f"{URL}/documents/{docs[0].id}/annotation",
            {"spans": spans[user.username], "version": 0, "status": "submitted"},
        )
        assert status == 200, body
    status, body = h.api(alice).put(
        f"{URL}/documents/{docs[1].id}/annotation",
        {"spans": [], "version": 0, "status": "skipped", "skip_reason": XSS},
    )
    assert status == 200, body
    return {"project": project, "docs": docs, "lead": lead}


@pytest.fixture
def raw_page(browser):
    """A page with the CSP bypassed, recording every dialog (and dismissing it)."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 860}, bypass_csp=True)
    ctx.set_default_timeout(10_000)
    p = ctx.new_page()
    p.dialogs = []

    def on_dialog(dialog):
        p.dialogs.append(dialog.message)
        dialog.dismiss()

    p.on("dialog", on_dialog)
    yield p
    ctx.close()


INJECTED = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName;
    if (tag === 'SCRIPT' && !el.src) found.push('inline script: ' + el.outerHTML.slice(0, 80));
    if (tag === 'IMG' && el.getAttribute('src') === 'x') found.push('img: ' + el.outerHTML);
    for (const a of el.attributes) if (a.name.startsWith('on')) found.push(tag + ' ' + a.name);
    if (/^\\s*javascript:/i.test(el.getAttribute('href') || '')) found.push('javascript: link');
  }
  return found;
}"""


def assert_shown_as_text(page, where: str, *texts: str) -> None:
    assert page.evaluate(INJECTED) == [], where
    body = page.locator("body").inner_text()
    for t in texts:
        assert t in body, f"{where}: {t!r} is not on the page as text"
    assert page.dialogs == [], f"{where}: a dialog fired: {page.dialogs}"


def test_the_csp_is_really_bypassed(raw_page, live):
    """Without this the next test could pass on the CSP alone."""
    raw_page.goto(live.url + "/login")
    ran = raw_page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__inline_ran = true'; document.body.append(s);
        return window.__inline_ran === true; }""")
    assert ran


def test_hostile_text_is_shown_as_text_on_every_page(raw_page, live, hostile):
    page = raw_page
    pid, (doc, second) = hostile["project"].id, hostile["docs"]
    name = "News " + XSS
    login(page, live.url, "lena")
    assert_shown_as_text(page, "home", name)

    page.goto(f"{live.url}/projects/{pid}")
    rows = page.get_by_test_id("doc-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    assert_shown_as_text(page, "project page", name, "doc " + XSS, "second " + IMG)

    page.goto(f"{live.url}/projects/{pid}/documents/{doc.id}/annotate")
    wait_ready(page)
    page.get_by_role("button", name="Guidelines").click()
    # Alpine's x-show shows on the next animation frame, not within the click, and
    # to_contain_text reads textContent, hidden or not: wait for the panel to be shown.
    expect(page.locator(".guidelines-body")).to_be_visible()
    expect(page.locator(".guidelines-body")).to_contain_text("Never " + XSS, use_inner_text=True)
    assert_shown_as_text(page, "annotate page", name, SCRIPT, IMG, "Never " + XSS)
    assert page.locator(".guidelines-body a").count() == 0  # the javascript: link is not a link

    page.goto(f"{live.url}/projects/{pid}/report")
    page.wait_for_selector("#report[data-ready='1']")
    assert_shown_as_text(page, "report", name, "doc " + XSS)
    page.locator("#documents tbody tr").first.click()
    page.wait_for_selector("#drilldown:not([hidden]) #drill-table tbody tr")
    assert_shown_as_text(page, "drill-down", SCRIPT, IMG)

    page.goto(f"{live.url}/documents/{doc.id}/adjudicate")
    page.wait_for_selector("#adjudicate[data-ready='1']")
    expect(page.locator("#candidates tbody tr")).to_have_count(4)
    assert_shown_as_text(page, "review page", "doc " + XSS, SCRIPT, IMG)
    page.select_option("#add-label", "CLAIM")
    assert IMG in page.locator("#add-stance").inner_text()  # the hostile stance value, as text
    page.click("#save-gold")
    page.wait_for_selector("text=Saved gold version 1")
    assert_shown_as_text(page, "review page after saving gold", SCRIPT, IMG)

    page.get_by_role("button", name="Log out").click()
    login(page, live.url, "alice")
    page.goto(f"{live.url}/projects/{pid}/documents/{second.id}/annotate")  # skipped with a reason
    wait_ready(page)
    assert_shown_as_text(page, "annotate page (skipped document)", "Second: " + XSS)


def test_lead_adds_and_removes_members_on_the_project_page(page, live, h):
    project = h.project("Team")
    h.user("lena", "lead")
    h.user("alice")
    h.user("carol", member_of=[])
    login(page, live.url, "lena")
    page.goto(f"{live.url}/projects/{project.id}")
    table = page.get_by_test_id("user-table")
    expect(table.locator("tr[data-user]")).to_have_count(2)  # lena and alice
    expect(table.locator("tr[data-user=lena] button")).to_have_count(0)  # not herself

    page.get_by_test_id("member-names").fill("carol, nobody")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_test_id("member-error")).to_have_text(
        "User 'nobody' does not exist; nobody was added."
    )
    expect(table.locator("tr[data-user]")).to_have_count(2)

    page.get_by_test_id("member-names").fill("carol")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(table.locator("tr[data-user=carol]")).to_be_visible()
    table.locator("tr[data-user=alice]").get_by_role("button", name="Remove").click()
    expect(table.locator("tr[data-user=alice]")).to_have_count(
        0
    )  # no work here: gone from the list
    status, body = h.api(h.user("root", "admin", member_of=[])).get(
        f"{URL}/projects/{project.id}/members"
    )
    assert [m["username"] for m in body["items"]] == ["carol", "lena"]
    assert not [e for e in page.js_errors if "Failed to load resource" not in e], page.js_errors
