"""spaCy-style patterns for suggestions (issue 12): checked whole, matched without spaCy, stored
per project through the CLI and the API, offered as suggestions of source `patterns`."""

from __future__ import annotations

import json

import pytest

from annotator.core.patterns import PatternError, match, parse_patterns

LABELS = {"PERSON", "ORG", "MONEY"}


def jsonl(*recs) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in recs).encode()


def tokens_of(text: str) -> list[list[int]]:
    out, i = [], 0
    for w in text.split(" "):
        out.append([i, i + len(w)])
        i += len(w) + 1
    return out


@pytest.mark.parametrize("pattern, text, expected", [
    ("Scale AI", "We met Scale AI and Scale AIs", [(7, 15, "ORG")]),
    ([{"LOWER": "meta"}], "Meta and META and metaverse", [(0, 4, "ORG"), (9, 13, "ORG")]),
    ([{"LIKE_NUM": True}, {"LOWER": {"IN": ["billion", "million"]}}, {"ORTH": "dollars"}],
     "paid 14.3 billion dollars and 2 million dollars", [(5, 25, "ORG"), (30, 47, "ORG")]),
    ([{"IS_TITLE": True, "OP": "+"}, {"ORTH": "Labs"}], "the Meta Superintelligence Labs team",
     [(4, 31, "ORG"), (9, 31, "ORG")]),
    ([{"TEXT": {"REGEX": "^[A-Z]{2,}$"}}], "the MSL and FAIR labs", [(4, 7, "ORG"), (12, 16, "ORG")]),
    ([{"ORTH": "Mr"}, {"ORTH": "X", "OP": "!"}], "Mr Y and Mr X", [(0, 4, "ORG")]),
    ([{"ORTH": "a"}, {"ORTH": "b", "OP": "?"}], "a b a", [(0, 1, "ORG"), (0, 3, "ORG"), (4, 5, "ORG")]),
])
def test_matching_like_spacys_matcher(pattern, text, expected):
    got = match(text, tokens_of(text), [{"label": "ORG", "pattern": pattern}])
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("line, where, reason", [
    ('{"label": "ORG"', 1, "not JSON"),
    ('["ORG", "x"]', 1, "an object"),
    ('{"label": "CLAIM", "pattern": "x"}', 1, "not an entity label"),
    ('{"label": "ORG", "pattern": "x", "extra": 1}', 1, "unknown key 'extra'"),
    ('{"label": "ORG", "pattern": [{"POS": "PROPN"}]}', 1, "'POS' is not supported"),
    ('{"label": "ORG", "pattern": [{"LOWER": "x", "OP": "{2}"}]}', 1, "OP"),
    ('{"label": "ORG", "pattern": [{"TEXT": {"REGEX": "("}}]}', 1, "REGEX does not compile"),
    ('{"label": "ORG", "pattern": [{"IS_DIGIT": "yes"}]}', 1, "true or false"),
    ('{"label": "ORG", "pattern": [{"LOWER": "x", "OP": "*"}]}', 1, "no token at all"),
    ('{"label": "ORG", "pattern": " x"}', 1, "without spaces"),
    ('{"label": "ORG", "pattern": []}', 1, "non-empty list"),
])
def test_bad_patterns_are_refused_naming_the_line(line, where, reason):
    data = b'{"label": "PERSON", "pattern": "Wang"}\n\n' + line.encode()
    with pytest.raises(PatternError) as got:
        parse_patterns(data, LABELS)
    assert got.value.line == 3 and reason in got.value.reason


def test_patterns_through_the_api_become_suggestions_and_are_all_or_nothing(h):
    alice, lead = h.user("alice"), h.user("lead", role="lead")
    project = h.project("Patterns", language="en")
    doc = h.docs(project, [{"text": "Scale AI raised 14 billion dollars from Meta."}])[0]
    h.tokenize(project)
    api, lead_api = h.api(alice), h.api(lead)
    assert lead_api.patch(f"/api/v1/projects/{project.id}/settings", {"control_share": 0})[0] == 200
    good = jsonl({"label": "ORG", "pattern": "Scale AI"},
                 {"label": "ORG", "pattern": [{"LOWER": "meta"}]})
    status, body = lead_api.put(f"/api/v1/projects/{project.id}/patterns", raw=good)
    assert status == 200 and body["total"] == 2 and body["version"].startswith("patterns-")
    status, body = api.get(f"/api/v1/documents/{doc.id}/suggestions")
    got = [(doc.text[s["start"]:s["end"]], s["label"], s["source"]) for s in body["items"]]
    assert ("Scale AI", "ORG", "patterns") in got and ("Meta", "ORG", "patterns") in got
    assert ("14 billion dollars", "MONEY", "patterns") in got  # the built-in money shapes
    # a bad file: refused whole, naming the line; the stored patterns stay
    status, body = lead_api.put(f"/api/v1/projects/{project.id}/patterns",
                                raw=good + b'\n{"label": "ORG", "pattern": [{"LEMMA": "x"}]}')
    assert status == 422 and body["details"][0]["line"] == 3, body
    assert "line 3" in body["error"]
    status, body = api.get(f"/api/v1/projects/{project.id}/patterns")
    assert status == 200 and body["total"] == 2
    # annotators may read them, not change them
    status, body = api.put(f"/api/v1/projects/{project.id}/patterns", raw=good)
    assert status == 403


def test_patterns_command(h, tmp_path, app):
    from click.testing import CliRunner

    from annotator.cli import main

    h.project("CLI patterns", language="en")
    f = tmp_path / "p.jsonl"
    f.write_bytes(jsonl({"label": "PERSON", "pattern": "Alexandr Wang"}))
    env = {"ANNOTATOR_DATA_DIR": app.config["DATA_DIR"]}
    db = ["--db", app.config["DATABASE_URL"]]
    r = CliRunner().invoke(main, db + ["patterns", "CLI patterns", str(f)], env=env)
    assert r.exit_code == 0 and "now has 1 patterns" in r.output, r.output
    r = CliRunner().invoke(main, db + ["patterns", "CLI patterns"], env=env)
    assert "PERSON\t'Alexandr Wang'" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"label": "NOPE", "pattern": "x"}')
    r = CliRunner().invoke(main, db + ["patterns", "CLI patterns", str(bad)], env=env)
    assert r.exit_code != 0 and "line 1" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, db + ["patterns", "CLI patterns", "--clear"], env=env)
    assert r.exit_code == 0 and "now has 0 patterns" in r.output
