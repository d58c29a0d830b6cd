"""The annotate page when the database's disk fills up: the annotator is told, nothing typed is
lost, and the page saves by itself once space returns (real app on a SQLite file on a small
tmpfs, headless Chromium)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import PG_URL, Helper
from playwright.sync_api import expect
from test_faults import SECRET, _can_mount, fill

from annotator import create_app
from annotator.storage.db import migrate
from browser.conftest import LiveServer
from browser.helpers import drag_select, login, open_doc, wait_saved

SHOTS = Path(__file__).resolve().parent.parent.parent / "exports" / "screenshots"


@pytest.fixture
def on_small_disk(tmp_path):
    if PG_URL:
        pytest.skip("a SQLite file on a small volume")
    if not _can_mount():
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], check=True)
    url = f"sqlite:///{mnt / 'annotator.db'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": SECRET,
                      "TESTING": True})
    live = LiveServer(app)
    try:
        yield app, live, mnt
    finally:
        live.stop()
        app.extensions["annotator.db"].dispose()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_is_said_on_the_page_and_the_spans_save_when_space_returns(page, on_small_disk):
    app, live, mnt = on_small_disk
    h = Helper(app)
    project = h.demo()
    ann = h.user("ann")
    from sqlalchemy import select

    from annotator.storage.models import Document

    with h.session() as s:
        doc = s.execute(select(Document).where(Document.project_id == project.id)
                        .order_by(Document.id)).scalars().first()
    login(page, live.url, "ann")
    open_doc(page, live.url, project.id, doc.id)
    first = doc.text.index("메타")
    drag_select(page, doc.text, first, first + 2)
    page.keyboard.press("2")
    wait_saved(page)

    fill(mnt / "filler")
    second = doc.text.index("메타", first + 10)  # another occurrence, far from the first
    drag_select(page, doc.text, second, second + 2)
    page.keyboard.press("2")
    state = page.get_by_test_id("save-state")
    expect(page.locator(".annotate")).to_contain_text("disk is full", timeout=10_000)
    expect(page.locator(".annotate")).to_contain_text("kept on this page")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "annotate-disk-full.png"))

    (mnt / "filler").unlink()  # the operator frees space; the page sends the spans again itself
    expect(state).to_have_text("Saved", timeout=20_000)
    status, body = h.api(ann).get(f"/api/v1/documents/{doc.id}/annotation")
    assert status == 200
    assert [(s["start"], s["label"]) for s in body["spans"]] == [(first, "ORG"), (second, "ORG")]
