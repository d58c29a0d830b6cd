"""Suggestions (issue 12, first part): the pure rules, then the endpoint on a real database."""

from __future__ import annotations

import json
import re

import pytest

from annotator.core.suggest import (
    MONEY_RE,
    Boundaries,
    Taken,
    choose,
    dictionary_entries,
    money_candidates,
    suggest,
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
TEXT_C = "메타는 왕씨를 만났다."


@pytest.fixture
def assisted(h):
    alice, bob, eve = h.user("alice"), h.user("bob"), h.user("eve", member_of=[])
    project = h.project("Assist", members=[alice, bob], language="ko")
    h.settings(project, control_share=0.0)  # every document with suggestions
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
    assert (status, body) == (200, {"items": [], "pending": True, "control": False, "shown": True})
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
    assert status == 200
    assert [s.get("origin") for s in body["items"][-1]["spans"]] == \
        [{"source": "dictionary", "version": "", "edited": True},
         {"source": "dictionary", "version": "", "edited": False}, None]  # history keeps it too
    lead = h.user("lead", role="lead")
    h.add_members(project, [lead])
    resp = h.app.test_client().get(f"/api/v1/projects/{project.id}/export?format=jsonl&source=all",
                                   headers={"Authorization": f"Bearer {h.token(lead)}"})
    assert resp.status_code == 200
    lines = [json.loads(line) for line in resp.get_data(as_text=True).splitlines() if line.strip()]
    exported = [sp for rec in lines for sp in rec["spans"]]
    assert len(exported) >= 3 and not any("origin" in sp for sp in exported)  # exports unchanged

    # asked for, each span says where it came from (with tokens and without)
    def bobs(query: str) -> dict:
        resp = h.app.test_client().get(
            f"/api/v1/projects/{project.id}/export?format=jsonl&source=annotator:bob&{query}",
            headers={"Authorization": f"Bearer {h.token(lead)}"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        (rec,) = [json.loads(line) for line in resp.get_data(as_text=True).splitlines() if line.strip()]
        return {(sp["start"], sp["label"]): sp["origin"] for sp in rec["spans"]}

    expected = {(0, "PERSON"): {"source": "dictionary", "version": "", "edited": True},
                (i, "ORG"): {"source": "dictionary", "version": "", "edited": False},
                (TEXT_B.index("148억"), "MONEY"): {"source": "hand"}}
    assert bobs("provenance=true") == expected
    assert bobs("provenance=true&tokens=false") == expected
    for query, words in (("format=spacy", "jsonl only"),
                         ("format=jsonl&source=majority", "per annotator")):
        resp = h.app.test_client().get(
            f"/api/v1/projects/{project.id}/export?provenance=1&{query}",
            headers={"Authorization": f"Bearer {h.token(lead)}"})
        assert resp.status_code == 400 and words in resp.get_json()["error"], resp.get_json()


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

    from annotator.core.suggest import Boundaries, dictionary_candidates

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


# --- anchoring safeguards: control documents, honeypots, suggestions off, recorded ---------

def test_control_documents_are_a_stable_share_of_each_persons_documents():
    from annotator.services.routing import is_control

    for share in (0.1, 0.5):
        picked = [d for d in range(1, 4001) if is_control(7, d, share)]
        assert abs(len(picked) / 4000 - share) < 0.03
        assert picked == [d for d in range(1, 4001) if is_control(7, d, share)]  # stable
    assert {d for d in range(1, 401) if is_control(7, d, 0.1)} != {d for d in range(1, 401) if is_control(8, d, 0.1)}
    assert not any(is_control(7, d, 0) for d in range(1, 401))
    assert all(is_control(7, d, 1) for d in range(1, 401))


def exposures(h) -> dict:
    from sqlalchemy import select

    from annotator.storage.models import SuggestionExposure

    with h.session() as s:
        return {(e.document_id, e.user_id): e.shown for e in s.execute(select(SuggestionExposure)).scalars()}


def test_control_honeypot_and_off_answer_without_suggestions_and_what_was_shown_is_recorded(h, assisted):
    project, a, b, bob, _eve = assisted
    lead = h.api(h.user("lena", "lead", member_of=[project]))
    bob_id = h.users[1].id
    settings = f"/api/v1/projects/{project.id}/settings"
    assert lead.patch(settings, {"control_share": 1.0})[0] == 200
    status, body = bob.get(f"/api/v1/documents/{b.id}/suggestions")
    control = {"items": [], "pending": False, "control": True, "shown": False}
    assert (status, body) == (200, control)
    assert exposures(h) == {(b.id, bob_id): False}
    assert lead.patch(settings, {"control_share": 0.0})[0] == 200
    status, body = bob.get(f"/api/v1/documents/{b.id}/suggestions")
    assert body["items"] and (body["control"], body["shown"], body["pending"]) == (False, True, False)
    assert exposures(h) == {(b.id, bob_id): True}  # seen once: with suggestions from now on
    # a honeypot answers exactly like a control document, so it cannot be told apart
    status, _ = lead.put(f"/api/v1/documents/{b.id}/honeypot",
                         {"spans": [{"start": 0, "end": 7, "label": "PERSON", "attributes": {}}], "version": 0})
    assert status == 200
    assert bob.get(f"/api/v1/documents/{b.id}/suggestions") == (200, control)
    assert exposures(h) == {(b.id, bob_id): True}  # never back to false
    assert lead.patch(settings, {"suggestions": "off"})[0] == 200
    status, body = bob.get(f"/api/v1/documents/{a.id}/suggestions")
    assert (status, body) == (200, {"items": [], "pending": False, "control": False, "shown": False})
    assert exposures(h) == {(b.id, bob_id): True, (a.id, bob_id): False}


def test_the_report_measures_suggestions_per_source_and_with_against_without(h, assisted, tmp_path,
                                                                             monkeypatch):
    """B is shown with suggestions, C without (suggestions were off when bob opened it); A was
    never asked about (alice only saved): without. Turning suggestions off at the end changes
    nothing: what was shown is what was recorded. `annotator agreement` prints the same."""
    project, a, b, bob, _eve = assisted
    lena = h.user("lena", "lead", member_of=[project])
    lead = h.api(lena)
    settings = f"/api/v1/projects/{project.id}/settings"
    (c,) = [d for d in h.docs(project, [{"text": TEXT_C}]) if d.text == TEXT_C]
    h.tokenize(project)
    lead.patch(settings, {"suggestions": "off"})
    assert bob.get(f"/api/v1/documents/{c.id}/suggestions")[1]["shown"] is False
    status, _ = bob.put(f"/api/v1/documents/{c.id}/annotation", {"version": 0, "status": "submitted", "spans": [
        {"start": 0, "end": 2, "label": "ORG", "attributes": {}}]})
    assert status == 200
    lead.patch(settings, {"suggestions": "on", "control_share": 0.0})
    offered = bob.get(f"/api/v1/documents/{b.id}/suggestions")[1]["items"]
    i, j, m = TEXT_B.index("메타에서"), TEXT_B.index("메타는"), TEXT_B.index("148억")
    assert {(s["start"], s["label"]) for s in offered} == {(0, "PERSON"), (i, "ORG"), (j, "ORG"), (m, "MONEY")}
    dictionary = {"source": "dictionary", "version": ""}
    spans = [{"start": i, "end": i + 2, "label": "ORG", "attributes": {}, "origin": {**dictionary, "edited": False}},
             {"start": 0, "end": 7, "label": "PERSON", "attributes": {}, "origin": {**dictionary, "edited": True}},
             {"start": m, "end": m + 7, "label": "MONEY", "attributes": {},
              "origin": {"source": "patterns", "version": "x", "edited": False}}]
    assert bob.post(f"/api/v1/documents/{b.id}/suggestions/rejections",
                    {"start": j, "end": j + 2, "label": "ORG", "source": "dictionary"})[0] == 201
    # a rejection on work never submitted is not counted
    assert h.api(h.users[0]).post(f"/api/v1/documents/{b.id}/suggestions/rejections",
                                  {"start": j, "end": j + 2, "label": "ORG", "source": "dictionary"})[0] == 201
    assert bob.put(f"/api/v1/documents/{b.id}/annotation",
                   {"version": 0, "status": "submitted", "spans": spans})[0] == 200
    gold_b = [{"start": s["start"], "end": s["end"], "label": s["label"], "attributes": {}} for s in spans] + [
        {"start": j, "end": j + 2, "label": "ORG", "attributes": {}}]
    assert lead.put(f"/api/v1/documents/{b.id}/gold", {"version": 0, "spans": gold_b})[0] == 200
    assert lead.put(f"/api/v1/documents/{c.id}/gold", {"version": 0, "spans": [
        {"start": 0, "end": 2, "label": "ORG", "attributes": {}},
        {"start": 4, "end": 7, "label": "PERSON", "attributes": {}}]})[0] == 200
    lead.patch(settings, {"suggestions": "off"})

    status, report = lead.get(f"/api/v1/projects/{project.id}/agreement")
    assert status == 200
    sec = report["suggestions"]
    assert sorted(sec["sources"]) == ["dictionary", "patterns"]
    org = sec["sources"]["dictionary"]["labels"]["ORG"]
    # ORG spans submitted by people: alice on A, bob on B and C; in gold: 2 on B, 1 on C
    assert org == {"accepted": 1, "edited": 0, "rejected": 1, "accepted_on_gold": 1, "accepted_in_gold": 1,
                   "acceptance_rate": 0.5, "edit_rate": 0.0, "precision_submitted": 0.5,
                   "precision_gold": 1.0, "recall_submitted": 1 / 3, "recall_gold": 1 / 3}
    person = sec["sources"]["dictionary"]["labels"]["PERSON"]
    assert (person["accepted"], person["edited"], person["rejected"]) == (1, 1, 0)
    assert (person["acceptance_rate"], person["edit_rate"], person["precision_submitted"]) == (1.0, 1.0, 0.0)
    assert person["recall_submitted"] == 0.5 and person["recall_gold"] == 0.5
    assert sec["sources"]["dictionary"]["all"]["accepted"] == 2
    money = sec["sources"]["patterns"]["labels"]["MONEY"]
    assert (money["precision_submitted"], money["precision_gold"], money["recall_gold"]) == (1.0, 1.0, 1.0)
    with_, without = sec["arms"]["with"], sec["arms"]["without"]
    assert (with_["annotations"], without["annotations"]) == (1, 2)
    assert (with_["median_spans"], without["median_spans"]) == (3, 1.5)
    assert with_["gold_annotations"] == without["gold_annotations"] == 1
    assert with_["gold"]["f1"] == 6 / 7 and without["gold"]["f1"] == 2 / 3
    assert with_["median_seconds"] is not None and without["timed"] == 2

    # the CLI's text report has the section too (it had none: the page alone showed it)
    from click.testing import CliRunner

    from annotator.cli import main

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["--db", h.app.config["DATABASE_URL"], "agreement", "Assist"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    section = lines[next(i for i, line in enumerate(lines) if line.startswith("Suggestions")):]
    arms = {line[:36].strip(): line[36:].split() for line in section[2:7]}
    assert arms == {"annotations": ["1", "2"],
                    "median seconds per document": [f"{with_['median_seconds']:.1f}",
                                                    f"{without['median_seconds']:.1f}"],
                    "median entity spans per document": ["3.0", "1.5"],
                    "entity F1 against gold (exact)": ["0.86", "0.67"],
                    "over annotations with gold": ["1", "1"]}
    header = next(i for i, line in enumerate(section) if line.split()[:2] == ["source", "label"])
    rows = [line.split() for line in section[header + 1:] if line.strip()]
    #        source        label   acc  rej  ed  acc.rate ed.rate P subm P gold R subm R gold
    assert rows[:2] == [["dictionary", "ORG", "1", "1", "0", "0.50", "0.00", "0.50", "1.00", "0.33", "0.33"],
                        ["PERSON", "1", "0", "1", "1.00", "1.00", "0.00", "1.00", "0.50", "0.50"]]
    assert rows[2][:5] == ["all", "labels", "2", "1", "1"]
    assert rows[3][:2] == ["patterns", "MONEY"] and rows[3][7:] == ["1.00", "1.00", "1.00", "1.00"]


def test_suggestion_figures_without_any_suggestion_say_why():
    from annotator.core.anchoring import suggestion_report

    out = suggestion_report([{"document": 1, "user": "a", "shown": False, "seconds": None, "spans": []}],
                            [], {}, {"ORG"})
    assert out["sources"] == {}
    assert out["arms"]["with"]["annotations"] == 0 and out["arms"]["with"]["median_seconds"] is None
    assert out["arms"]["without"]["gold"]["f1"] is None and out["arms"]["without"]["gold"]["f1_reason"]
    from annotator.cli.teams import suggestion_lines  # the CLI's text says so too

    text = suggestion_lines(out)
    assert text[-1] == "  No suggestion accepted or rejected in submitted work yet."
    assert text[3].split()[-2:] == ["-", "-"]  # median seconds: none timed


# --- variants: first mentions from the names people accepted (issue 23) -----------------------

@pytest.mark.nodb
def test_variants_of_accepted_names():
    from annotator.core.suggest import squeezed_entries, variant_entries

    entries = {"알렉산드르 왕": ("PERSON", 1.0), "Jaana Dogan": ("PERSON", 1.0), "메타": ("ORG", 1.0),
               "메타 슈퍼인텔리전스 연구소": ("ORG", 1.0), "스케일 AI": ("ORG", 1.0), "구글 딥마인드": ("ORG", 1.0),
               "Meta": ("ORG", 1.0), "왕": ("PERSON", 1.0)}
    assert variant_entries(entries) == {"Dogan": ("PERSON", 0.7), "슈퍼인텔리전스 연구소": ("ORG", 0.7)}
    # 왕 is an entry already; 구글 딥마인드 without 구글 (not an ORG here) and 스케일 AI without 스케일
    # leave one word, which is not a name of an organisation by itself
    squeezed = squeezed_entries(entries)
    assert squeezed["스케일ai"] == ("스케일 AI", "ORG", 0.7) and squeezed["meta"] == ("Meta", "ORG", 0.7)


@pytest.mark.nodb
def test_variants_fill_gaps_on_token_boundaries_and_appositions_follow_a_name():
    text = "존 헤게만(John Hegeman)은 META와 스케일AI를 떠났다. 헤게만은 Koray(GDM)를 만났다. 메타(Meta)도."
    tokens = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]+|[가-힣]+|\S", text)]
    # Kiwi would split the particles; here each Hangul run stands alone, so split them by hand
    for word, cut in (("헤게만은", 3), ("META와", 4), ("스케일AI를", 5), ("Koray", 5), ("메타", 2)):
        i = text.find(word)
        tokens = [t for t in tokens if not (t[0] >= i and t[1] <= i + len(word))]
        tokens += [(i, i + cut)] + ([(i + cut, i + len(word))] if cut < len(word) else [])
    tokens = sorted(set(tokens) | {(m.start(), m.end()) for m in re.finditer(r"AI", text)})
    entries = {"메타": ("ORG", 1.0), "Meta": ("ORG", 1.0), "스케일 AI": ("ORG", 1.0), "Koray": ("PERSON", 1.0)}
    have = [Taken(0, 5, "PERSON", True)]  # the person drew 존 헤게만
    got = suggest(text, tokens, {**entries, "존 헤게만": ("PERSON", 1.0)}, have, {"ORG", "PERSON"})
    shown = [(text[g["start"]:g["end"]], g["label"], g["source"]) for g in got]
    assert ("John Hegeman", "PERSON", "variants") in shown  # apposition in another script
    assert ("헤게만", "PERSON", "variants") in shown  # the last word of a PERSON
    assert ("META", "ORG", "variants") in shown and ("스케일AI", "ORG", "variants") in shown
    assert ("GDM", "PERSON", "variants") not in shown  # after a person, an acronym is their employer
    assert ("Meta", "ORG", "dictionary") in shown  # the dictionary has it: not a variant
    assert suggest(text, tokens, entries, have, {"ORG", "PERSON"}, variants=False) == [
        g for g in suggest(text, tokens, entries, have, {"ORG", "PERSON"}) if g["source"] != "variants"]
