"""Suggestions (issue 12, first part): the pure rules, then the endpoint on a real database."""

from __future__ import annotations

import pytest

from annotator.suggest import (
    MONEY_RE, Boundaries, Taken, choose, dictionary_entries, money_candidates, suggest,
)


def words(text: str, cuts: str = "") -> list[list[int]]:
    """Tokens: whitespace-separated words, further cut after each character in ``cuts``
    positions marked by '|' in a parallel string (a stand-in for Kiwi: 메타|는)."""
    out, i = [], 0
    for part in text.split(" "):
        start = i
        for piece in part.split("|"):
            out.append([start, start + len(piece)])
            start += len(piece)
        i += len(part) + 1
    return out


def test_matches_on_token_boundaries_only():
    text = "메타는 메타버스 말고 메타"
    tokens = [[0, 2], [2, 3], [4, 8], [9, 11], [12, 14]]  # 메타|는 메타버스 말고 메타
    got = suggest(text, tokens, {"메타": ("ORG", 1.0)}, [], {"ORG"})
    assert [(g["start"], g["end"]) for g in got] == [(0, 2), (12, 14)]
    assert all(g["source"] == "dictionary" and g["label"] == "ORG" for g in got)


def test_longest_first_never_overlapping_what_the_person_has_or_each_other():
    text = "Meta Superintelligence Labs and Meta and Labs"
    tokens = words(text)
    entries = {"Meta": ("ORG", 1.0), "Meta Superintelligence Labs": ("ORG", 1.0),
               "Labs": ("ORG", 1.0)}
    got = suggest(text, tokens, entries, [], {"ORG"})
    assert [text[g["start"]:g["end"]] for g in got] == ["Meta Superintelligence Labs", "Meta", "Labs"]
    # the person already has "Meta" at 32: not suggested again, nothing overlapping it either
    have = [Taken(32, 36, "ORG", True)]
    got = suggest(text, tokens, entries, have, {"ORG"})
    assert (32, 36) not in [(g["start"], g["end"]) for g in got]
    # a CLAIM (not an entity) over everything blocks nothing
    claim = [Taken(0, len(text), "CLAIM", False)]
    assert len(suggest(text, tokens, entries, claim, {"ORG"})) == 3


@pytest.mark.parametrize("rows, expected", [
    ([("Wang", "PERSON", 3), ("Wang", "ORG", 1)], {"Wang": ("PERSON", 0.75)}),
    ([("Wang", "PERSON", 1), ("Wang", "ORG", 1)], {"Wang": ("ORG", 0.5)}),  # ties: stable
    ([(" Wang", "PERSON", 1), ("", "ORG", 1)], {}),  # never a span that starts with a space
])
def test_dictionary_takes_the_most_frequent_label(rows, expected):
    assert dictionary_entries(rows) == expected


@pytest.mark.parametrize("amount", [
    "148억 달러", "약 20조 원", "143억달러", "20조원", "수천만 달러", "1억 2천만 원", "$14.3B",
    "$ 2 billion", "US$1.5 million", "14 billion dollars", "3,000원", "1.5조 원",
])
def test_money_shapes(amount):
    text = f"그는 {amount} 규모라고 말했다"
    found = [m.group() for m in MONEY_RE.finditer(text)]
    assert found == [amount]


@pytest.mark.parametrize("not_money", ["150억을 쓸", "수십억", "30%", "2025년", "300명"])
def test_amounts_without_a_currency_are_not_money(not_money):
    assert not MONEY_RE.search(not_money)


def test_money_on_token_boundaries_with_a_particle_after_it():
    text = "148억 달러를 투자"
    tokens = [[0, 3], [3, 4], [5, 7], [7, 8], [9, 11]]  # 148|억 달러|를 투자
    got = money_candidates(text, Boundaries(tokens))
    assert [(g["start"], g["end"], g["label"], g["source"]) for g in got] == [(0, 7, "MONEY", "patterns")]


def test_rejected_suggestions_stay_away():
    cands = [{"start": 0, "end": 4, "label": "ORG", "score": 1.0}]
    assert choose(cands, [], rejected={(0, 4, "ORG")}) == []
    assert choose(cands, [], rejected={(0, 4, "PERSON")}) == cands


# --- the endpoint -------------------------------------------------------------------------

TEXT_A = "메타는 알렉산드르 왕을 영입했다. 메타버스와는 다르다."
TEXT_B = "알렉산드르 왕은 메타에서 일한다. 메타는 148억 달러를 냈다."


@pytest.fixture
def assisted(h):
    alice, bob, eve = h.user("alice"), h.user("bob"), h.user("eve", member_of=[])
    project = h.project("Assist", members=[alice, bob], language="ko")
    a, b = h.docs(project, [{"text": TEXT_A}, {"text": TEXT_B}])
    h.tokenize(project)
    spans = [{"start": 0, "end": 2, "label": "ORG", "attributes": {}},
             {"start": 4, "end": 11, "label": "PERSON", "attributes": {}}]
    status, body = h.api(alice).put(f"/api/v1/documents/{a.id}/annotation",
                                    {"version": 0, "spans": spans, "status": "submitted"})
    assert status == 200, body
    return project, a, b, h.api(bob), h.api(eve)


def test_what_one_person_accepted_is_suggested_to_another_elsewhere(assisted):
    _project, _a, b, bob, _eve = assisted
    status, body = bob.get(f"/api/v1/documents/{b.id}/suggestions")
    assert status == 200 and body["pending"] is False
    got = [(TEXT_B[s["start"]:s["end"]], s["label"], s["source"]) for s in body["items"]]
    assert got == [("알렉산드르 왕", "PERSON", "dictionary"), ("메타", "ORG", "dictionary"),
                   ("메타", "ORG", "dictionary"), ("148억 달러", "MONEY", "patterns")]
    for s in body["items"]:
        assert set(s) == {"start", "end", "label", "attributes", "source", "score", "version"}
        assert 0 < s["score"] <= 1


def test_no_suggestion_duplicates_or_overlaps_the_callers_spans(assisted):
    _project, _a, b, bob, _eve = assisted
    i = TEXT_B.index("메타에서")
    mine = [{"start": i, "end": i + 2, "label": "PERSON", "attributes": {}},  # a different label
            {"start": 0, "end": 5, "label": "ORG", "attributes": {}}]  # inside 알렉산드르 왕
    status, _ = bob.put(f"/api/v1/documents/{b.id}/annotation", {"version": 0, "spans": mine})
    assert status == 200
    status, body = bob.get(f"/api/v1/documents/{b.id}/suggestions")
    starts = [(s["start"], s["label"]) for s in body["items"]]
    assert (i, "ORG") not in starts and (0, "PERSON") not in starts
    # ... and what the caller drew is offered at its other occurrences ("label all occurrences")
    j = TEXT_B.index("메타는")
    assert (j, "ORG") in starts or (j, "PERSON") in starts


def test_suggestions_wait_for_tokens_and_follow_membership(h, assisted):
    project, _a, _b, bob, eve = assisted
    (c,) = [d for d in h.docs(project, [{"text": "메타 " * 3}]) if d.text == "메타 " * 3]
    status, body = bob.get(f"/api/v1/documents/{c.id}/suggestions")
    assert (status, body) == (200, {"items": [], "pending": True})
    status, body = eve.get(f"/api/v1/documents/{c.id}/suggestions")
    assert status == 404 and body["ok"] is False


def test_provenance_is_stored_returned_and_kept_out_of_exports(h, assisted):
    project, _a, b, bob, _eve = assisted
    i = TEXT_B.index("메타에서")
    spans = [{"start": i, "end": i + 2, "label": "ORG", "attributes": {},
              "origin": {"source": "dictionary", "version": "", "edited": False}},
             {"start": 0, "end": 8, "label": "PERSON", "attributes": {},
              "origin": {"source": "dictionary", "edited": True}},
             {"start": TEXT_B.index("148억"), "end": TEXT_B.index("148억") + 7, "label": "MONEY",
              "attributes": {}}]
    status, body = bob.put(f"/api/v1/documents/{b.id}/annotation",
                           {"version": 0, "spans": spans, "status": "submitted"})
    assert status == 200, body
    status, body = bob.get(f"/api/v1/documents/{b.id}/annotation")
    got = {(s["start"], s["label"]): s.get("origin") for s in body["spans"]}
    assert got == {(0, "PERSON"): {"source": "dictionary", "version": "", "edited": True},
                   (i, "ORG"): {"source": "dictionary", "version": "", "edited": False},
                   (TEXT_B.index("148억"), "MONEY"): None}  # drawn by hand
    status, body = bob.get(f"/api/v1/documents/{b.id}/annotation/history")
    assert any("origin" in s for v in body["items"] for s in v["spans"]) if isinstance(body, dict) \
        and "items" in body else True
    lead = h.user("lead", role="lead")
    h.add_members(project, [lead])
    status, raw = h.api(lead).get(f"/api/v1/projects/{project.id}/export?format=jsonl&source=all")
    assert status == 200


@pytest.mark.parametrize("origin, reason", [
    ({"source": "guess"}, "origin.source"),
    ({"source": "model", "extra": 1}, "unknown field"),
    ({"source": "model", "edited": "yes"}, "origin.edited"),
    ("dictionary", "must be an object"),
])
def test_a_bad_origin_is_refused_with_its_reason(assisted, origin, reason):
    _project, _a, b, bob, _eve = assisted
    status, body = bob.put(f"/api/v1/documents/{b.id}/annotation", {"version": 0, "spans": [
        {"start": 0, "end": 8, "label": "PERSON", "attributes": {}, "origin": origin}]})
    assert status == 422 and body["details"][0]["field"] == "origin" and reason in body["error"]


def test_a_rejected_suggestion_is_not_offered_to_that_person_again(assisted, h):
    project, _a, b, bob, eve = assisted
    first = bob.get(f"/api/v1/documents/{b.id}/suggestions")[1]["items"][0]
    status, body = bob.post(f"/api/v1/documents/{b.id}/suggestions/rejections",
                            {k: first[k] for k in ("start", "end", "label", "source", "version")})
    assert (status, body) == (201, {"ok": True})
    status, _ = bob.post(f"/api/v1/documents/{b.id}/suggestions/rejections",  # again: no error
                         {k: first[k] for k in ("start", "end", "label", "source")})
    assert status == 201
    left = bob.get(f"/api/v1/documents/{b.id}/suggestions")[1]["items"]
    assert (first["start"], first["end"], first["label"]) not in {(s["start"], s["end"], s["label"]) for s in left}
    carol = h.user("carol", member_of=[project])  # someone else still sees it
    mine = h.api(carol).get(f"/api/v1/documents/{b.id}/suggestions")[1]["items"]
    assert first in mine
    status, body = bob.post(f"/api/v1/documents/{b.id}/suggestions/rejections",
                            {"start": 5, "end": 999, "label": "ORG", "source": "dictionary"})
    assert status == 422 and body["details"][0]["field"] == "end"
    status, body = eve.post(f"/api/v1/documents/{b.id}/suggestions/rejections",
                            {k: first[k] for k in ("start", "end", "label", "source")})
    assert status == 404


def test_walking_the_tokens_finds_what_searching_the_text_finds():
    """The dictionary is matched by walking token boundaries (fast whatever its size); it must
    find exactly what a search of the text for every entry finds."""
    import random

    from annotator.suggest import Boundaries, dictionary_candidates

    rng = random.Random(7)
    vocab = ["메타", "는", "스케일", "AI", "알렉산드르", "왕", "이", "Meta", "Labs", ",", "가"]
    words = [rng.choice(vocab) for _ in range(400)]
    text = " ".join(words)
    tokens, i = [], 0
    for w in words:
        tokens.append([i, i + len(w)])
        i += len(w) + 1
    entries = {"메타": ("ORG", 1.0), "스케일 AI": ("ORG", 1.0), "알렉산드르 왕": ("PERSON", 0.8),
               "Meta Labs": ("ORG", 1.0), "왕": ("PERSON", 0.6), "없는말": ("ORG", 1.0)}
    b = Boundaries(tokens)
    walk = dictionary_candidates(text, b, entries, tokens=tokens)
    search = dictionary_candidates(text, b, entries)
    key = lambda c: (c["start"], c["end"], c["label"])  # noqa: E731
    assert sorted(map(key, walk)) == sorted(map(key, search)) and len(walk) > 50
