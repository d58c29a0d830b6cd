"""People over the API: admins add users with a one-time password, reset passwords, change
roles, deactivate (work stays); everyone changes their own password (issue #13)."""

from __future__ import annotations

from conftest import PASSWORD


def test_an_admin_adds_a_user_who_logs_in_with_the_one_time_password(h):
    admin = h.user("ada", role="admin")
    api = h.api(admin)
    status, body = api.post("/api/v1/users", {"username": "carol", "role": "lead"})
    assert status == 201 and body["username"] == "carol" and body["role"] == "lead"
    client = h.app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/login", data={"username": "carol", "password": body["password"], "csrf_token": csrf})
    assert resp.status_code == 302
    status, listing = api.get("/api/v1/users")
    assert status == 200 and [u["username"] for u in listing["items"]] == ["ada", "carol"]
    assert all("password" not in u and "password_hash" not in u for u in listing["items"])


def test_adding_users_is_refused_whole_with_the_field_named(h):
    admin = h.user("ada", role="admin")
    api = h.api(admin)
    for body, field, words in [({"username": "ada", "role": "lead"}, "username", "already exists"),
                               ({"username": "no spaces", "role": "lead"}, "username", "not allowed"),
                               ({"username": "x", "role": "boss"}, "role", "not one of"),
                               ({"username": "x"}, "role", "Missing field"),
                               ({"username": "x", "role": "lead", "password": "p"}, "password", "Unknown field")]:
        before = h.counts()
        status, out = api.post("/api/v1/users", body)
        assert status in (409, 422) and out["ok"] is False, out
        assert out["details"][0]["field"] == field and words in out["error"], out
        assert h.counts() == before


def test_only_an_admin_manages_people(h):
    h.user("ada", role="admin")
    lead = h.user("lena", role="lead")
    h.user("alice")
    api = h.api(lead)
    for call in (lambda: api.get("/api/v1/users"),
                 lambda: api.post("/api/v1/users", {"username": "x", "role": "annotator"}),
                 lambda: api.patch("/api/v1/users/alice", {"active": False}),
                 lambda: api.post("/api/v1/users/alice/password")):
        status, body = call()
        assert status == 403 and body["error"] == "Only an admin may manage users."
    client = h.app.test_client()
    h.login(client, lead)
    assert client.get("/people").status_code == 403
    assert b"People" not in client.get("/").data.split(b"<main>")[0]


def test_reset_password_ends_the_users_sessions_and_the_old_password(h):
    from annotator.services.users import authenticate

    admin = h.user("ada", role="admin")
    alice = h.user("alice")
    client = h.app.test_client()
    h.login(client, alice)
    assert client.get("/").status_code == 200
    status, body = h.api(admin).post("/api/v1/users/alice/password")
    assert status == 200 and len(body["password"]) >= 12
    assert client.get("/").status_code == 302  # her session ended
    with h.session() as s:
        assert authenticate(s, "alice", PASSWORD) is None
        assert authenticate(s, "alice", body["password"]) is not None


def test_deactivating_keeps_the_work_and_shuts_the_door(h):
    admin = h.user("ada", role="admin")
    alice = h.user("alice")
    project = h.project()
    (doc,) = h.docs(project, [{"text": "Meta hired Alexandr Wang."}])
    alice_api = h.api(alice)
    status, _ = alice_api.put(f"/api/v1/documents/{doc.id}/annotation",
                              {"status": "submitted", "version": 0,
                               "spans": [{"start": 0, "end": 4, "label": "ORG"}]})
    assert status == 200
    api = h.api(admin)
    status, body = api.patch("/api/v1/users/alice", {"active": False})
    assert status == 200 and body["active"] is False
    assert alice_api.get("/api/v1/me")[0] == 401
    status, anns = api.get(f"/api/v1/documents/{doc.id}/annotations")
    assert status == 200 and any(a.get("user") == "alice" or a.get("username") == "alice"
                                 for a in anns["items"]), anns
    assert api.patch("/api/v1/users/alice", {"active": True})[0] == 200
    status, body = api.patch("/api/v1/users/ada", {"active": False})
    assert status == 409 and "yourself" in body["error"]
    status, body = api.patch("/api/v1/users/ada", {"role": "annotator"})
    assert status == 409 and "own role" in body["error"]
    status, body = api.patch("/api/v1/users/alice", {"role": "lead"})
    assert status == 200 and body["role"] == "lead"
    assert api.patch("/api/v1/users/gold", {"active": True})[0] == 404


def test_everyone_changes_their_own_password_and_keeps_this_session(h):
    from annotator.services.users import authenticate

    alice = h.user("alice")
    mine, other = h.app.test_client(), h.app.test_client()
    csrf = h.login(mine, alice)
    h.login(other, alice)
    headers = {"X-CSRF-Token": csrf}
    resp = mine.post("/api/v1/me/password", json={"current": "wrong-one", "new": "a-new-password"},
                     headers=headers)
    assert resp.status_code == 422 and resp.get_json()["details"][0]["field"] == "current"
    resp = mine.post("/api/v1/me/password", json={"current": PASSWORD, "new": "short"}, headers=headers)
    assert resp.status_code == 422 and resp.get_json()["details"][0]["field"] == "new"
    resp = mine.post("/api/v1/me/password", json={"current": PASSWORD, "new": "a-new-password"},
                     headers=headers)
    assert resp.status_code == 200, resp.get_json()
    assert mine.get("/api/v1/me").status_code == 200       # this session goes on
    assert other.get("/api/v1/me").status_code == 401      # the others end
    with h.session() as s:
        assert authenticate(s, "alice", "a-new-password") is not None
    no_csrf = mine.post("/api/v1/me/password", json={"current": "a-new-password", "new": "x" * 9})
    assert no_csrf.status_code == 403
