"""People and progress in the browser (issue #13): an admin adds a user and hands over the
one-time password, the user changes it on their Account page, the admin resets and
deactivates; the lead sees each annotator's time per document and reaches the review page
from the document list; the members table stays inside its card."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import PASSWORD
from playwright.sync_api import expect

from browser.helpers import login


def test_admin_adds_a_user_who_logs_in_and_changes_their_password(browser, page, live, h):
    h.user("ada", role="admin")
    h.user("alice")
    login(page, live.url, "ada")
    page.get_by_role("link", name="People").click()
    rows = page.get_by_test_id("people-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_test_id("new-username").fill("no spaces")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_test_id("username-error")).to_contain_text("is not allowed")
    page.get_by_test_id("new-username").fill("carol")
    page.get_by_test_id("new-role").select_option("lead")
    page.get_by_role("button", name="Add user").click()
    secret = page.get_by_test_id("secret-value")
    expect(secret).to_have_text(re.compile(r"\S{12,}"))
    one_time = secret.text_content()
    expect(rows).to_have_count(3)
    expect(page.locator("tr[data-user=carol]")).to_contain_text("active")
    if os.environ.get("ANNOTATOR_SCREENSHOTS"):
        page.screenshot(path=str(Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "people.png"))

    other = browser.new_context().new_page()
    login(other, live.url, "carol", one_time)
    other.locator("header a.who").click()
    other.wait_for_selector("section[data-ready]")  # the form is the script's (no native submit)
    other.get_by_test_id("current").fill("wrong-password")
    other.get_by_test_id("new").fill("carols-own-password")
    other.get_by_role("button", name="Change password").click()
    expect(other.get_by_test_id("current-error")).to_have_text("The current password is wrong.")
    other.get_by_test_id("current").fill(one_time)
    other.get_by_role("button", name="Change password").click()
    expect(other.get_by_test_id("password-changed")).to_be_visible()
    other.goto(live.url + "/")
    expect(other.locator("header .who")).to_contain_text("carol")  # this session goes on

    # the admin resets alice's password, then deactivates her: she is logged out, work kept
    alice = browser.new_context().new_page()
    login(alice, live.url, "alice", PASSWORD)
    page.once("dialog", lambda d: d.accept())
    page.locator("tr[data-user=alice] button", has_text="Reset password").click()
    expect(page.get_by_test_id("one-time-password")).to_contain_text("alice")
    alice.goto(live.url + "/")
    expect(alice).to_have_url(re.compile(r"/login"))
    page.locator("tr[data-user=alice] button", has_text="Deactivate").click()
    expect(page.locator("tr[data-user=alice]")).to_contain_text("deactivated")
    expect(page.locator("tr[data-user=ada] button", has_text="Deactivate")).to_have_count(0)
    # the one refusal asked for above (a bad username) is the only failed request
    assert [e for e in page.js_errors if "status of 422" not in e] == []


def test_lead_sees_time_per_document_and_reviews_from_the_document_list(page, live, h):
    project = h.demo()
    h.user("boss", "lead")
    ann = h.user("ann")
    api = h.api(ann)
    status, doc = api.get(f"/api/v1/projects/{project.id}/next")
    assert status == 200
    url = f"/api/v1/documents/{doc['id']}/annotation"
    assert api.put(url, {"spans": [], "version": 0, "status": "in_progress"})[0] == 200
    assert api.put(url, {"spans": [{"start": 0, "end": 2, "label": "ORG"}], "version": 1,
                         "status": "submitted"})[0] == 200

    login(page, live.url, "boss")
    page.goto(f"{live.url}/projects/{project.id}")
    expect(page.locator("tr[data-user=ann] [data-testid=time-per-doc]")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("tr[data-user=boss] [data-testid=time-per-doc]")).to_have_text("–")
    card = page.locator("section[x-data=projectMembers]")
    overflow = card.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the members table overflows its card by {overflow}px"
    row = page.get_by_test_id("doc-table").locator("tbody tr", has_text=doc["external_id"])
    expect(page.get_by_test_id("doc-table").locator("a.review-link")).to_have_count(1)
    row.get_by_role("link", name="review").click()
    expect(page).to_have_url(re.compile(rf"/documents/{doc['id']}/adjudicate$"))
    expect(page.locator("body")).to_contain_text("ann")
    assert not page.js_errors
