"""What a new user tripped on (issue #13), outside the browser: ids that cannot exist, the
CLI's data directory and version, the favicon, and the demo run a second time."""

from __future__ import annotations

import pytest
from conftest import PG_URL

# past 2^63 (SQLite's integer), and past 2^31 (PostgreSQL's integer column)
HUGE = ["9223372036854775808", "99999999999999999999999", "2147483648"]
GET_PATHS = ["/api/v1/documents/{id}", "/api/v1/projects/{id}", "/api/v1/documents/{id}/annotation",
             "/api/v1/projects/{id}/agreement", "/api/v1/documents/{id}/suggestions",
             "/api/v1/projects/{id}/documents", "/api/v1/projects/{id}/export"]


@pytest.mark.parametrize("big", HUGE)
@pytest.mark.parametrize("path", GET_PATHS)
def test_an_id_that_cannot_exist_is_404_in_the_error_shape(h, big, path):
    lead = h.user("lead", role="lead")
    h.project()
    status, body = h.api(lead).get(path.format(id=big))
    assert status == 404, body
    assert body["ok"] is False and body["status"] == 404


@pytest.mark.parametrize("big", HUGE)
def test_a_page_with_an_id_that_cannot_exist_is_the_404_page(h, big):
    lead = h.user("lead", role="lead")
    client = h.app.test_client()
    h.login(client, lead)
    for path in (f"/projects/{big}/report", f"/documents/{big}/adjudicate",
                 f"/projects/{big}/documents/1/annotate"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert b"Nothing is here" in resp.data or b"not exist" in resp.data


def test_the_largest_id_the_database_holds_still_routes(h):
    """2^31 - 1 fits both databases: it routes, and answers 404 because no such row exists."""
    lead = h.user("lead", role="lead")
    status, body = h.api(lead).get("/api/v1/documents/2147483647")
    assert status == 404 and "does not exist" in body["error"]
    if not PG_URL:
        status, body = h.api(lead).get("/api/v1/documents/9223372036854775807")
        assert status == 404 and "does not exist" in body["error"]


# --- the command line ---------------------------------------------------------------------

@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A shell in a folder with no annotator-data/, and no database named by the environment."""
    from click.testing import CliRunner

    from annotator.cli import main

    for name in ("ANNOTATOR_DATABASE_URL", "ANNOTATOR_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("args", [("projects", "list"), ("users", "list"), ("agreement", "demo"),
                                  ("export", "demo", "--format", "jsonl"), ("models", "demo"),
                                  ("honeypots", "list", "demo"),
                                  ("import", "demo", "nothing.txt")])
def test_a_command_run_from_another_folder_refuses_to_make_an_empty_database(elsewhere, tmp_path, args):
    if args[0] == "import":
        (tmp_path / "nothing.txt").write_text("text")
    result = elsewhere(*args)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: No database at "), result.output
    assert str(tmp_path / "annotator-data" / "annotator.db") in lines[0]
    assert "current directory" in lines[0] and "--db" in lines[0]
    assert not (tmp_path / "annotator-data" / "annotator.db").exists()


def test_creating_the_first_user_or_project_still_makes_the_database(elsewhere, tmp_path):
    assert elsewhere("users", "add", "ada", "--role", "admin", "--password", "long-enough-pw").exit_code == 0
    assert (tmp_path / "annotator-data" / "annotator.db").exists()
    assert "ada\tadmin" in elsewhere("users", "list").output


def test_version_is_printed(elsewhere):
    from importlib.metadata import version

    result = elsewhere("--version")
    assert result.exit_code == 0 and result.output.strip() == f"annotator {version('annotator')}"


def test_the_demo_a_second_time_keeps_users_and_their_passwords(elsewhere, tmp_path):
    import re

    from annotator.services.users import authenticate
    from annotator.storage.db import Database

    first = elsewhere("demo", "--no-serve")
    assert first.exit_code == 0, first.output
    passwords = dict(re.findall(r"^\s+(\w+)\s+\w+\s+password: (\S+)$", first.output, re.M))
    assert set(passwords) == {"lead", "alice", "bob"}
    data = tmp_path / "annotator-data"
    assert f"Data: {data / 'annotator.db'}" in first.output
    second = elsewhere("demo", "--no-serve")
    assert second.exit_code == 0, second.output
    assert "password:" not in second.output
    assert "annotator users password alice" in second.output
    database = Database(f"sqlite:///{data / 'annotator.db'}")
    try:
        with database.session() as s:
            for name, pw in passwords.items():
                assert authenticate(s, name, pw) is not None, name
    finally:
        database.dispose()


def test_the_favicon_is_served_without_logging_in(h):
    client = h.app.test_client()
    resp = client.get("/favicon.ico", follow_redirects=True)
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and b"<svg" in resp.data
    lead = h.user("lead", role="lead")
    h.login(client, lead)
    assert b'rel="icon"' in client.get("/").data
