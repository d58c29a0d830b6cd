"""The lead runs a project from the browser (issue #13): creates it with a custom label set,
sees each refusal next to its field, edits guidelines with the live preview and renames an
unused label (a used one is refused with the count of its spans), then on the settings page
changes k, marks a honeypot from the document list and saves the word list."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from browser.helpers import login

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page, name):
    if os.environ.get("ANNOTATOR_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def label_row(page, i):
    return page.get_by_test_id("label-editor").locator("fieldset.label-row").nth(i)


def test_lead_creates_and_edits_a_project_with_its_label_set(page, live, h):
    h.user("boss", "lead")
    alice = h.user("alice")
    login(page, live.url, "boss")
    page.get_by_test_id("new-project").click()
    expect(page.get_by_test_id("label-editor").locator("fieldset.label-row")).to_have_count(4)  # news
    page.get_by_test_id("project-name").fill("Biomedical abstracts")
    page.get_by_test_id("project-language").fill("en")
    page.get_by_test_id("project-k").fill("3")
    page.get_by_test_id("project-guidelines").fill("# Genes\n\nTag **every** gene. <script>x</script>")
    expect(page.get_by_test_id("guidelines-preview").locator("strong")).to_have_text("every")
    expect(page.get_by_test_id("guidelines-preview").locator("script")).to_have_count(0)
    # keep PERSON and CLAIM, drop ORG and MONEY, add GENE with a required attribute
    label_row(page, 2).locator(".remove-label").click()
    label_row(page, 1).locator(".remove-label").click()
    page.get_by_test_id("add-label").click()
    gene = label_row(page, 2)
    gene.locator(".lab-name").fill("GENE")
    gene.locator(".lab-hotkey").fill("f")  # taken by the page
    gene.locator(".add-attr").click()
    gene.locator(".attr-name").fill("organism")
    gene.locator(".attr-values").fill("human, mouse")
    gene.locator(".attr-required").check()
    page.get_by_test_id("save-project").click()
    error = gene.get_by_test_id("field-error")
    expect(error).to_contain_text("hotkey must be one character, not f/a/n/s/?")
    expect(gene.locator(".lab-hotkey")).to_have_attribute("aria-invalid", "true")
    gene.locator(".lab-hotkey").fill("g")
    page.get_by_test_id("save-project").click()
    expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    pid = int(page.url.rsplit("/", 1)[1])
    status, body = h.api(alice).get(f"/api/v1/projects/{pid}")
    assert status == 404  # a new project's only member is its creator
    lead_api = h.api(h.user("lena", "admin"))
    body = lead_api.get(f"/api/v1/projects/{pid}")[1]
    assert [lab["name"] for lab in body["labels"]] == ["PERSON", "CLAIM", "GENE"]
    assert body["labels"][2]["attributes"] == {"organism": {"values": ["human", "mouse"], "required": True}}
    assert body["k"] == 3 and body["language"] == "en"

    # a span of PERSON, then: renaming GENE (unused) works, renaming PERSON (used) is refused
    (doc,) = h.docs(_project(h, pid), [{"text": "Ada Lovelace studied BRCA1."}])
    assert lead_api.put(f"/api/v1/documents/{doc.id}/gold",
                        {"spans": [{"start": 0, "end": 12, "label": "PERSON"}], "version": 0})[0] == 200
    page.get_by_role("link", name="Edit").click()
    expect(label_row(page, 0).locator(".lab-name")).to_have_value("PERSON")
    shot(page, "project-form")
    label_row(page, 2).locator(".lab-name").fill("GENE_OR_PROTEIN")
    label_row(page, 0).locator(".lab-name").fill("HUMAN")
    page.get_by_test_id("save-project").click()
    expect(label_row(page, 0).get_by_test_id("field-error")).to_contain_text("1 span(s) use label 'PERSON'")
    expect(page.get_by_test_id("form-error")).to_contain_text("cannot be renamed")
    label_row(page, 0).locator(".lab-name").fill("PERSON")
    page.get_by_test_id("project-guidelines").fill("Tag *genes* and people.")
    expect(page.get_by_test_id("guidelines-preview").locator("em")).to_have_text("genes")
    page.get_by_test_id("save-project").click()
    expect(page).to_have_url(re.compile(rf"/projects/{pid}$"))
    body = lead_api.get(f"/api/v1/projects/{pid}")[1]
    assert [lab["name"] for lab in body["labels"]] == ["PERSON", "CLAIM", "GENE_OR_PROTEIN"]
    assert "<em>genes</em>" in body["guidelines_html"]
    assert not [e for e in page.js_errors if "status of 4" not in e], page.js_errors


def _project(h, pid):
    from annotator.storage.models import Project

    with h.session() as s:
        return s.get(Project, pid)


def test_lead_changes_settings_marks_a_honeypot_and_saves_words(page, live, h):
    project = h.demo()
    boss = h.user("boss", "lead")
    api = h.api(boss)
    docs = api.get(f"/api/v1/projects/{project.id}/documents")[1]["items"]
    first, second = docs[0], docs[1]
    assert api.put(f"/api/v1/documents/{first['id']}/gold", {"spans": [], "version": 0})[0] == 200
    login(page, live.url, "boss")
    page.goto(f"{live.url}/projects/{project.id}")
    page.get_by_role("link", name="Settings").click()
    k = page.get_by_test_id("setting-k")
    expect(k).to_have_value("2")
    k.fill("0")
    page.get_by_test_id("save-settings").click()
    expect(page.get_by_test_id("field-error")).to_contain_text("Field 'k' must be a whole number from 1 to 50")
    k.fill("3")
    page.get_by_test_id("save-settings").click()
    expect(page.get_by_test_id("settings-status")).to_have_text("Saved: k.")
    assert api.get(f"/api/v1/projects/{project.id}/settings")[1]["k"] == 3

    table = page.get_by_test_id("honeypot-table")
    table.locator(f"input[data-honeypot='{second['id']}']").click()  # no gold yet: refused
    expect(page.get_by_test_id("honeypot-error")).to_contain_text("needs a reference")
    expect(table.locator(f"input[data-honeypot='{second['id']}']")).not_to_be_checked()
    table.locator(f"input[data-honeypot='{first['id']}']").check()
    expect(table.locator(f"input[data-honeypot='{first['id']}']")).to_be_checked()
    expect(page.get_by_test_id("honeypot-status")).to_have_text(f"{first['external_id']} is a honeypot now.")
    items = api.get(f"/api/v1/projects/{project.id}/honeypots")[1]["items"]
    assert [i["document_id"] for i in items] == [first["id"]]

    page.get_by_test_id("words").fill("스케일AI\n알렉산더왕")
    page.get_by_test_id("save-words").click()
    expect(page.get_by_test_id("words-status")).to_have_text("Saved 2 word(s).")
    assert api.get(f"/api/v1/projects/{project.id}/words")[1]["words"] == ["스케일AI", "알렉산더왕"]
    shot(page, "settings")
    assert not [e for e in page.js_errors if "status of 4" not in e], page.js_errors
