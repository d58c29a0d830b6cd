"""`pip install .` ships static/ and templates/, and the installed package serves pages with CSS."""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import PG_URL, reset_postgres

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy of the checkout: pip builds in the source folder (build/, *.egg-info),
    # which another run of the suite may be using at the same time
    source = tmp_path_factory.mktemp("source") / "annotator"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "annotator-data",
        "demo-spacy", "exports"))
    have_backend = importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel")
    isolation = ["--no-build-isolation"] if have_backend else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(out),
                    str(source)], check=True, cwd=out)
    (path,) = out.glob("annotator-*.whl")
    return path


def test_wheel_ships_assets_templates_migrations_and_corpus(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("annotator/templates/base.html", "annotator/static/css/app.css",
                   "annotator/storage/migrations/env.py",
                   "annotator/storage/migrations/versions/0001_initial_schema.py",
                   "annotator/data/guidelines-news.md"):
        assert needed in names
    assert sum(n.startswith("annotator/data/corpus/") for n in names) == 5
    for top in ROOT.joinpath("static").rglob("*"):
        if top.is_file():
            assert f"annotator/static/{top.relative_to(ROOT / 'static')}" in names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_installed_wheel_serves_the_demo_with_css(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("ANNOTATOR_DATABASE_URL", None)
    where = subprocess.run([sys.executable, "-c", "import annotator; print(annotator.__file__)"],
                           env=env, cwd=work, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))
    port = free_port()
    db_args = []
    if PG_URL:  # the suite's PostgreSQL run: the installed package serves from it too
        reset_postgres(PG_URL)
        db_args = ["--db", PG_URL]
    proc = subprocess.Popen([sys.executable, "-m", "annotator.cli", *db_args, "demo",
                             "--port", str(port), "--workers", "1"], env=env, cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read().decode()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stdout.read() if proc.poll() is not None else "timeout") from None
                time.sleep(0.3)
        assert 'href="/static/css/app.css"' in page
        css = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/css/app.css").read()
        assert b"--accent" in css
        for src in [p for p in page.split('"') if p.startswith("/static/") and p.endswith(".js")]:
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}{src}").status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert (work / "annotator-data" / ("secret_key" if PG_URL else "annotator.db")).exists()


def test_fast_head_revision_agrees_with_alembic():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from annotator.storage.db import MIGRATIONS, head_revision

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()
