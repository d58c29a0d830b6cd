"""The lead's project page: documents (paged, searched by text or id, filtered by status),
import of .txt / .jsonl / .csv files, and the annotators' progress."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def test_lead_trains_and_chooses_a_model_version_from_the_project_page(page, live, h, tmp_path):
    """The model card: the versions with their held-out scores, which one suggests, a button
    that queues training (the server's background process runs it; no such process in this
    test's server, so the job stays queued, as shown), and choosing another version."""
    from test_model_source import store_version

    from annotator.storage.models import ModelVersion, Project

    project = h.demo()
    h.user("boss", "lead")
    store_version(h, project, 1, {})
    store_version(h, project, 2, {})
    with h.session() as s:
        v2 = s.query(ModelVersion).filter_by(project_id=project.id, number=2).one()
        v2.scores = {"overall": {"p": 0.8, "r": 0.7, "f": 0.75},
                     "labels": {"ORG": {"p": 0.9, "r": 0.8, "f": 0.85, "support": 20, "predicted": 18},
                                "PERSON": {"p": 0.6, "r": 0.5, "f": 0.55, "support": 6, "predicted": 5}}}
        p = s.get(Project, project.id)
        p.settings = {**(p.settings or {}), "model": 1}
        s.commit()

    login(page, live.url, "boss")
    page.goto(f"{live.url}/projects/{project.id}")
    card = page.get_by_test_id("model-card")
    versions = card.get_by_test_id("version-table").locator("tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("v2")
    expect(versions.first).to_contain_text("0.75")
    org, person = (versions.first.locator(f"[data-label='{k}']") for k in ("ORG", "PERSON"))
    expect(org).to_contain_text("ORG 0.85 ✓")  # only ORG suggests
    expect(person).to_contain_text("PERSON 0.55 ✗")
    expect(org).to_contain_text("suggests: 0 of 20 reviewed: held-out precision ≥ 0.8")
    expect(person).to_contain_text("does not suggest: 0 of 20 reviewed: held-out precision < 0.8")
    expect(card.locator("tr[data-version='1']")).to_contain_text("suggests")
    expect(card.get_by_test_id("job-table")).to_contain_text("No background work yet.")

    card.locator("tr[data-version='2'] button", has_text="use").click()
    expect(card.locator("tr[data-version='2']")).to_contain_text("suggests")
    expect(card.get_by_role("status")).to_contain_text("Version 2 suggests now")
    jobs = card.get_by_test_id("job-table").locator("tbody tr")
    expect(jobs.first).to_contain_text("predict v2")
    expect(jobs.first).to_contain_text("queued")

    card.get_by_test_id("train").click()
    expect(card.get_by_role("status")).to_contain_text("Training queued")
    expect(jobs.first).to_contain_text("train")
    with h.session() as s:
        assert s.get(Project, project.id).settings["model"] == 2
    page.set_viewport_size({"width": 1400, "height": 900})
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(tmp_path / "project-model-card.png"))  # looked at for the docs
    SHOT_DIR = os.environ.get("ANNOTATOR_SHOTS")
    if SHOT_DIR:
        card.screenshot(path=str(Path(SHOT_DIR) / "project-model-card.png"))
