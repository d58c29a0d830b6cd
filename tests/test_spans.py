"""The pure span rules: one case table, each row a rule that must refuse or accept."""

import pytest

from annotator.core.spans import LabelSpec, SpanErrors, cp_to_utf16, utf16_to_cp, validate_spans
from annotator.services.projects import LABEL_SETS, check_label_set

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


# --- boundaries inside a user-perceived character (extended grapheme cluster) ------------

from annotator.core.spans import is_cluster_boundary  # noqa: E402

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

# text, every offset that is a boundary between clusters
CLUSTERS = [
    ("combining acute", "Cafe\u0301", [0, 1, 2, 3, 5]),
    ("two combining marks", "a\u0323\u0302b", [0, 3, 4]),
    ("enclosing mark", "x\u20dd", [0, 2]),
    ("spacing mark (Devanagari)", "\u0915\u093e", [0, 2]),
    ("ZWJ sequence", "\U0001F469\u200d\U0001F4BB", [0, 3]),
    ("ZWJ family with skin tones",
     "\U0001F468\U0001F3FD\u200d\U0001F469\U0001F3FD\u200d\U0001F467", [0, 7]),
    ("skin-tone modifier", "\U0001F44D\U0001F3FD", [0, 2]),
    ("flag", "\U0001F1F0\U0001F1F7", [0, 2]),
    ("three flags pair from the left", "\U0001F1F0\U0001F1F7\U0001F1EF\U0001F1F5\U0001F1FA\U0001F1F8",
     [0, 2, 4, 6]),
    ("odd regional indicator", "\U0001F1F0\U0001F1F7\U0001F1EF", [0, 2, 3]),
    ("keycap", "1\ufe0f\u20e3", [0, 3]),
    ("variation selector", "\u2764\ufe0f", [0, 2]),
    ("tag sequence (Scotland)", "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074"
     "\U000E007F", [0, 7]),
    ("Hangul jamo LVT", "\u1112\u1161\u11ab", [0, 3]),
    ("Hangul jamo LV + LVT", "\u1112\u1161\u11ab\u1100\u116e\u11a8", [0, 3, 6]),
    ("precomposed LV + trailing jamo", "\ud558\u11ab", [0, 2]),
    ("CR LF", "a\r\nb", [0, 1, 3, 4]),
    ("ZWJ not between pictographs", "a\u200db", [0, 2, 3]),
    ("a mark after a line break starts its own cluster", "\n\u0301", [0, 1, 2]),
]


@pytest.mark.parametrize("name,text,boundaries", CLUSTERS, ids=[c[0] for c in CLUSTERS])
def test_cluster_boundaries(name, text, boundaries):
    assert [i for i in range(len(text) + 1) if is_cluster_boundary(text, i)] == boundaries


@pytest.mark.parametrize("text", [TEXT, "한국어 문장과 English words, 숫자 143억, 끝.",
                                  "\ud55c\uad6d\uc5b4", "tab\tand\u00a0nbsp \u3000x", "a😀b"])
def test_ordinary_text_and_precomposed_hangul_have_a_boundary_everywhere(text):
    assert all(is_cluster_boundary(text, i) for i in range(len(text) + 1))


@pytest.mark.parametrize("text,start,end,field,kind", [
    ("Cafe\u0301 au lait", 0, 4, "end", "a letter and its combining mark, U+0065 U+0301"),
    ("x \U0001F469\u200d\U0001F4BB y", 2, 3, "end", "joined by zero-width joiners"),
    ("x \U0001F469\u200d\U0001F4BB y", 4, 5, "start", "joined by zero-width joiners"),
    ("ok \U0001F44D\U0001F3FD", 3, 4, "end", "skin-tone modifier"),
    ("\U0001F1F0\U0001F1F7 team", 0, 1, "end", "regional indicator"),
    ("\U0001F1F0\U0001F1F7\U0001F1EF\U0001F1F5", 1, 3, "start", "regional indicator"),
    ("press 1\ufe0f\u20e3", 6, 7, "end", "keycap"),
    ("\u1112\u1161\u11ab\uad6d", 0, 2, "end", "Hangul syllable spelled in jamo"),
    ("\u1112\u1161\u11ab\uad6d", 1, 4, "start", "Hangul syllable spelled in jamo"),
])
def test_a_boundary_inside_a_character_is_refused_with_a_reason(text, start, end, field, kind):
    with pytest.raises(SpanErrors) as e:
        validate_spans(text, [sp(start, end)], LABELS)
    [d] = e.value.details
    assert d["span"] == 0 and d["field"] == field, d
    assert kind in d["reason"] and f"{field} {start if field == 'start' else end}" in d["reason"]
    assert d["reason"].endswith("a span must start and end between characters")


def test_the_combining_mark_message_word_for_word():
    with pytest.raises(SpanErrors) as e:
        validate_spans("Cafe\u0301", [sp(0, 4)], LABELS)
    assert str(e.value) == ('Invalid span 0: end 4 falls inside the character "e\u0301" (a letter '
                            "and its combining mark, U+0065 U+0301); a span must start and end "
                            "between characters.")
    assert validate_spans("Cafe\u0301", [sp(0, 5)], LABELS)
