"""The export page (issue #13): the lead sees the export report before downloading, downloads
a spaCy export, and the downloaded files train with the command the page prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect
from test_train_printed import FEW_STEPS, annotate_demo

from browser.helpers import login

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.slow
def test_lead_checks_downloads_and_trains_with_the_printed_command(page, live, h, tmp_path):
    project = annotate_demo(h)
    h.user("boss", "lead")
    login(page, live.url, "boss")
    page.goto(f"{live.url}/projects/{project.id}")
    page.get_by_role("link", name="Export").click()
    expect(page.get_by_test_id("export-source")).to_have_value("best")
    expect(page.get_by_test_id("report-status")).to_contain_text("record(s) of 5 document(s)")
    labels = page.get_by_test_id("report-labels")
    expect(labels).to_contain_text("PERSON")
    command = page.get_by_test_id("train-command")
    expect(command).to_contain_text("-m spacy train")
    if os.environ.get("ANNOTATOR_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "export.png"), full_page=True)

    # a choice that could not train is said before downloading, and the download is disabled
    page.get_by_test_id("export-source").select_option("import")  # the demo imported no spans
    expect(page.get_by_test_id("report-refusal")).to_contain_text("Nothing to train on")
    expect(page.get_by_test_id("download")).to_have_attribute("aria-disabled", "true")
    page.get_by_test_id("export-source").select_option("best")
    expect(page.get_by_test_id("download")).to_have_attribute("aria-disabled", "false")

    with page.expect_download() as info:
        page.get_by_test_id("download").click()
    download = info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    printed = command.inner_text().strip().splitlines()
    assert printed[0] == f"unzip {download.suggested_filename}"
    with zipfile.ZipFile(target) as z:  # what `unzip` does
        z.extractall(tmp_path)
    venv = str(Path(sys.executable).parent)  # "the Python where annotator is installed"
    env = {**os.environ, "PATH": venv + os.pathsep + os.environ["PATH"]}
    trained = subprocess.run(printed[1] + " " + " ".join(FEW_STEPS), shell=True, cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    folder = re.search(r"--output (\S+)", printed[1]).group(1)
    assert (tmp_path / folder / "model-best" / "config.cfg").exists()
    assert not page.js_errors
