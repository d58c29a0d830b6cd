"""The lead's project page: documents (paged, searched by text or id, filtered by status),
import of .txt / .jsonl / .csv files, and the annotators' progress."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from browser.helpers import login


def test_lead_browses_searches_filters_and_imports(page, live, h, tmp_path):
    project = h.demo()
    h.user("boss", "lead")
    alice = h.user("ann")
    api = h.api(alice)
    status, doc = api.get(f"/api/v1/projects/{project.id}/next")
    assert status == 200
    status, _ = api.put(f"/api/v1/documents/{doc['id']}/annotation",
                        {"spans": [], "version": 0, "status": "submitted"})
    assert status == 200

    login(page, live.url, "boss")
    page.get_by_role("link", name="Documents, import, users").click()
    rows = page.get_by_test_id("doc-table").locator("tbody tr")
    expect(rows).to_have_count(5)
    users = page.get_by_test_id("user-table")
    expect(users).to_contain_text("ann")
    expect(users.locator("tr[data-user=ann] td").nth(1)).to_have_text("1")

    page.get_by_test_id("doc-search").fill("001_")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("001_4ed2aa76a0e07e7d")
    page.get_by_test_id("doc-search").fill("알렉산드르")  # text search
    page.keyboard.press("Enter")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 1
    page.get_by_test_id("doc-search").fill("")
    page.get_by_test_id("doc-status").select_option("partial")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("1 / 2")
    page.get_by_test_id("doc-status").select_option("new")
    expect(rows).to_have_count(4)

    txt = tmp_path / "extra-note.txt"
    txt.write_text("Mark Zuckerberg met Alexandr Wang.\r\n", encoding="utf-8")
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"id": "j1", "text": "Scale AI 😀 raised money."}) + "\n", encoding="utf-8")
    csv = tmp_path / "more.csv"
    csv.write_text('id,text,source\nc1,"Meta, again",test\n', encoding="utf-8")
    page.get_by_test_id("import-files").set_input_files([str(txt), str(jsonl), str(csv)])
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".flash")).to_contain_text("Imported 3 documents")
    page.get_by_test_id("doc-status").select_option("")
    expect(page.get_by_text("8 documents", exact=True)).to_be_visible()

    # a bad file refuses the whole upload with a message naming it
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json}\n', encoding="utf-8")
    page.get_by_test_id("import-files").set_input_files([str(bad)])
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_test_id("import-error")).to_contain_text("Nothing was imported")
    page.goto(f"{live.url}/projects/{project.id}")
    expect(page.get_by_text("8 documents", exact=True)).to_be_visible()


def test_annotator_is_sent_to_annotate_from_the_project_page(page, live, h):
    project = h.demo()
    h.user("ann")
    login(page, live.url, "ann")
    page.goto(f"{live.url}/projects/{project.id}")
    page.wait_for_url(f"**/projects/{project.id}/**annotate")
