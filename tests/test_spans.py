"""The pure span rules: one case table, each row a rule that must refuse or accept."""

import pytest

from annotator.projects import LABEL_SETS, check_label_set
from annotator.spans import LabelSpec, SpanErrors, cp_to_utf16, utf16_to_cp, validate_spans

LABELS = {lab["name"]: LabelSpec(lab["name"], lab["kind"], lab.get("attributes", {}))
          for lab in check_label_set(LABEL_SETS["news"])}
TEXT = "메타는 Scale AI에 143억달러를 투자했다. 좋은 선택이다."


def sp(start, end, label="ORG", **attrs):
    return {"start": start, "end": end, "label": label, "attributes": attrs}


OK_CASES = [
    ("empty list", []),
    ("one entity", [sp(0, 2)]),
    ("claim over entities", [sp(0, 2), sp(4, 12), sp(0, 26, "CLAIM", stance="favor")]),
    ("touching entities", [sp(0, 2), sp(2, 3, "PERSON")]),
    ("same range different labels, claim", [sp(0, 2), sp(0, 2, "CLAIM", stance="neutral")]),
    ("whole text", [sp(0, len(TEXT), "CLAIM", stance="against")]),
]


@pytest.mark.parametrize("name,spans", OK_CASES, ids=[c[0] for c in OK_CASES])
def test_valid_spans_are_accepted(name, spans):
    out = validate_spans(TEXT, spans, LABELS)
    assert len(out) == len(spans)
    assert out == sorted(out, key=lambda s: (s["start"], s["end"], s["label"]))


BAD_CASES = [
    ("start == end", [sp(3, 3)], "end"),
    ("start > end", [sp(5, 3)], "end"),
    ("negative start", [sp(-1, 3)], "start"),
    ("end past text", [sp(0, len(TEXT) + 1)], "end"),
    ("unknown label", [sp(0, 2, "PLACE")], "label"),
    ("label not a string", [{"start": 0, "end": 2, "label": 3}], "label"),
    ("overlapping entities", [sp(0, 3), sp(2, 5, "PERSON")], "start"),
    ("nested entities", [sp(0, 12), sp(4, 9, "PERSON")], "start"),
    ("duplicate span", [sp(0, 2), sp(0, 2)], "span"),
    ("duplicate claim", [sp(0, 5, "CLAIM", stance="favor"), sp(0, 5, "CLAIM", stance="against")], "span"),
    ("claim without stance", [sp(0, 5, "CLAIM")], "attributes.stance"),
    ("claim with bad stance", [sp(0, 5, "CLAIM", stance="maybe")], "attributes.stance"),
    ("attribute on entity", [sp(0, 2, "ORG", stance="favor")], "attributes.stance"),
    ("starts with space", [sp(3, 6)], "start"),
    ("ends with space", [sp(0, 4)], "end"),
    ("float offset", [{"start": 0.0, "end": 2, "label": "ORG"}], "start"),
    ("bool offset", [{"start": False, "end": 2, "label": "ORG"}], "start"),
    ("string offset", [{"start": "0", "end": 2, "label": "ORG"}], "start"),
    ("missing end", [{"start": 0, "label": "ORG"}], "end"),
    ("unknown field", [{"start": 0, "end": 2, "label": "ORG", "text": "메타"}], "text"),
    ("not an object", ["0-2 ORG"], "span"),
    ("attributes not an object", [{"start": 0, "end": 2, "label": "ORG", "attributes": []}], "attributes"),
]


@pytest.mark.parametrize("name,spans,field", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_invalid_spans_are_refused_with_index_and_field(name, spans, field):
    with pytest.raises(SpanErrors) as e:
        validate_spans(TEXT, spans, LABELS)
    d = e.value.details
    assert any(x["field"] == field for x in d), d
    assert all("reason" in x and "span" in x for x in d)


def test_spans_must_be_a_list():
    with pytest.raises(SpanErrors):
        validate_spans(TEXT, {"start": 0}, LABELS)


def test_nbsp_counts_as_whitespace():
    text = "Meta\u00a0Platforms"
    with pytest.raises(SpanErrors):
        validate_spans(text, [sp(0, 5)], LABELS)
    assert validate_spans(text, [sp(0, 4)], LABELS)


@pytest.mark.parametrize("text", ["abc", "a😀b", "😀😀x", "e\u0301t\u00e9", "line\r\nnext", "👩‍💻 dev"])
def test_utf16_round_trip(text):
    for i in range(len(text) + 1):
        assert utf16_to_cp(text, cp_to_utf16(text, i)) == i
    assert cp_to_utf16(text, len(text)) == len(text.encode("utf-16-le")) // 2


def test_utf16_offset_inside_surrogate_pair_is_refused():
    with pytest.raises(ValueError):
        utf16_to_cp("a😀b", 2)
