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
