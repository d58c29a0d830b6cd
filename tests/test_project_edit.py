"""Editing a project (PATCH /api/v1/projects/<pid>, issue #13): name, language, guidelines
and the label set, by the same rules as creating one; a label that spans use keeps its name
and kind, and the refusal says how many spans use it."""

from __future__ import annotations

URL = "/api/v1"


def setup(h):
    lead = h.user("lead", role="lead")
    alice = h.user("alice")
    project = h.project("News", language="ko")
    (doc,) = h.docs(project, [{"text": "Meta hired Alexandr Wang."}])
    return h.api(lead), h.api(alice), project, doc


def labels_of(api, pid):
    return api.get(f"{URL}/projects/{pid}")[1]["labels"]


def test_a_lead_edits_name_language_guidelines_and_labels(h):
    api, _, project, _ = setup(h)
    labels = labels_of(api, project.id)
    money = next(lab for lab in labels if lab["name"] == "MONEY")
    edited = [dict(lab) for lab in labels if lab["name"] != "MONEY"]  # MONEY is unused: removed
    edited[0]["color"] = "#112233"
    edited[1]["name"] = "COMPANY"  # ORG, unused: renamed
    edited.append({"name": "GENE", "kind": "entity", "hotkey": "7", "color": "#00aa00"})
    status, body = api.patch(f"{URL}/projects/{project.id}", {
        "name": "News (ko)", "language": "en", "guidelines": "# Tag *people*",
        "labels": [{k: v for k, v in lab.items()} for lab in edited]})
    assert status == 200, body
    assert body["name"] == "News (ko)" and body["language"] == "en"
    assert "<em>people</em>" in body["guidelines_html"]
    names = [lab["name"] for lab in body["labels"]]
    assert names == ["PERSON", "COMPANY", "CLAIM", "GENE"] and money["id"] not in [lab["id"] for lab in body["labels"]]
    assert body["labels"][0]["color"] == "#112233"
    assert body["labels"][1]["id"] == labels[1]["id"]  # a rename keeps the label


def test_used_labels_cannot_be_renamed_removed_or_change_kind_and_the_count_is_said(h):
    api, alice_api, project, doc = setup(h)
    spans = [{"start": 0, "end": 4, "label": "ORG"}, {"start": 11, "end": 24, "label": "PERSON"}]
    assert alice_api.put(f"{URL}/documents/{doc.id}/annotation",
                         {"spans": spans, "version": 0, "status": "submitted"})[0] == 200
    labels = labels_of(api, project.id)
    before = h.counts()
    renamed = [dict(lab, name="COMPANY") if lab["name"] == "ORG" else lab for lab in labels]
    status, body = api.patch(f"{URL}/projects/{project.id}", {"labels": renamed})
    assert status == 409 and "1 span(s) use label 'ORG': it cannot be renamed" in body["error"], body
    assert body["details"][0] == {"label": 1, "field": "name", "label_id": labels[1]["id"],
                                  "name": "ORG", "spans": 1, "reason": body["details"][0]["reason"]}
    removed = [lab for lab in labels if lab["name"] != "PERSON"]
    status, body = api.patch(f"{URL}/projects/{project.id}", {"labels": removed})
    assert status == 409 and "it cannot be removed" in body["error"] and body["details"][0]["spans"] == 1
    rekind = [dict(lab, kind="span") if lab["name"] == "ORG" else lab for lab in labels]
    status, body = api.patch(f"{URL}/projects/{project.id}", {"labels": rekind})
    assert status == 409 and "another kind" in body["error"]
    assert h.counts() == before
    # colour, hotkey and attributes of a used label may change
    recolored = [dict(lab, color="#000000", hotkey="9") if lab["name"] == "ORG" else lab for lab in labels]
    status, body = api.patch(f"{URL}/projects/{project.id}", {"labels": recolored})
    assert status == 200 and body["labels"][1]["color"] == "#000000"


def test_edits_are_refused_whole_with_the_field_named(h):
    api, alice_api, project, _ = setup(h)
    h.project("Other")
    labels = labels_of(api, project.id)
    before = h.counts()
    cases = [
        ({"name": "Other"}, 409, "name", "already exists"),
        ({"name": "  "}, 422, "name", "1-200 characters"),
        ({"language": "korean"}, 422, "language", "not a language code"),
        ({"labels": [dict(labels[0], color="red")]}, 422, "color", "#1a2b3c"),
        ({"labels": [dict(labels[0], id=999999)]}, 422, "id", "not a label of this project"),
        ({"labels": [labels[0], dict(labels[1], name="PERSON")]}, 422, "name", "duplicate label"),
        ({"k": 3}, 422, "k", "Unknown field"),
        ({}, 422, "body", "Send one or more"),
    ]
    for body, code, field, words in cases:
        status, out = api.patch(f"{URL}/projects/{project.id}", body)
        assert status == code and words in out["error"], (body, out)
        assert out["details"][0]["field"] == field, (body, out)
    assert h.counts() == before
    assert alice_api.patch(f"{URL}/projects/{project.id}", {"name": "x"})[0] == 403


def test_label_names_can_be_swapped(h):
    api, _, project, _ = setup(h)
    labels = labels_of(api, project.id)
    swapped = [dict(labels[0], name=labels[1]["name"]), dict(labels[1], name=labels[0]["name"]), *labels[2:]]
    status, body = api.patch(f"{URL}/projects/{project.id}", {"labels": swapped})
    assert status == 200, body
    assert [lab["name"] for lab in body["labels"]][:2] == ["ORG", "PERSON"]


def test_the_guidelines_preview_is_sanitised(h):
    api, alice_api, _, _ = setup(h)
    status, body = api.post(f"{URL}/guidelines/preview",
                            {"guidelines": "**bold** <script>alert(1)</script> [x](javascript:alert(1))"})
    assert status == 200 and "<strong>bold</strong>" in body["guidelines_html"]
    assert "<script" not in body["guidelines_html"] and "href=\"javascript:" not in body["guidelines_html"]
    assert alice_api.post(f"{URL}/guidelines/preview", {"guidelines": "x"})[0] == 403
