"""Import parsers: every format parsed, every error refused whole with its line."""
import json
import unicodedata
from pathlib import Path

import pytest

from annotator.core import formats
from annotator.core.formats import FormatError

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "annotated-000.jsonl"

LABELS = [
    {"name": "PERSON", "kind": "entity", "attributes": {}},
    {"name": "ORG", "kind": "entity", "attributes": {}},
    {"name": "MONEY", "kind": "entity", "attributes": {}},
    {"name": "CLAIM", "kind": "span",
     "attributes": {"stance": {"values": ["favor", "against", "neutral"], "required": True}}},
]


def lines(*objs):
    return "\n".join(o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs) + "\n"


def refused(fn, *args, **kw):
    with pytest.raises(FormatError) as err:
        fn(*args, **kw)
    return err.value


# ---------------------------------------------------------------------------
# formats parsed
# ---------------------------------------------------------------------------
def test_fixture_jsonl_top_level_stance_normalised():
    raw = json.loads(FIXTURE.read_text("utf8"))
    [doc] = formats.parse_jsonl(FIXTURE.read_bytes(), LABELS)
    assert doc["text"] == raw["text"] and doc["id"] == raw["id"] and doc["meta"] == {}
    assert len(doc["spans"]) == len(raw["spans"])
    for a, b in zip(raw["spans"], doc["spans"]):
        assert (a["start"], a["end"], a["label"]) == (b["start"], b["end"], b["label"])
        assert b["attributes"] == ({"stance": a["stance"]} if "stance" in a else {})
        assert "stance" not in b


def test_our_jsonl_with_attributes_meta_and_exact_text():
    text = "메타는\r\n왕\u00a0에게  😀 " + unicodedata.normalize("NFD", "한글") + "\u2028끝"
    data = lines({"id": 7, "text": text, "meta": {"source": "x"},
                  "spans": [{"start": 0, "end": 2, "label": "ORG", "attributes": {}},
                            {"start": 0, "end": 6, "label": "CLAIM", "attributes": {"stance": "neutral"}}]},
                 "", {"text": "두 번째"})
    docs = formats.parse_jsonl(data.encode("utf8"), LABELS)
    assert docs[0]["text"] == text and docs[0]["id"] == 7 and docs[0]["meta"] == {"source": "x"}
    assert docs[0]["spans"][1]["attributes"] == {"stance": "neutral"}
    assert docs[1] == {"text": "두 번째", "id": None, "meta": {}, "spans": []}


def test_prodigy_jsonl():
    rec = {"text": "메타는 좋다", "_input_hash": 1, "answer": "accept",
           "tokens": [{"text": "메타는", "start": 0, "end": 3, "id": 0, "ws": True}],
           "spans": [{"start": 0, "end": 2, "label": "ORG", "token_start": 0, "token_end": 0}]}
    [doc] = formats.parse(lines(rec), "prodigy", LABELS)
    assert doc["spans"] == [{"start": 0, "end": 2, "label": "ORG", "attributes": {}}]
    assert doc["meta"] == {"answer": "accept"}


def test_spacy_style_folded_label_unfolds_to_attribute():
    rec = {"text": "좋은 전략이다.", "spans": [{"start": 0, "end": 8, "label": "CLAIM_favor"}]}
    [doc] = formats.parse_jsonl(lines(rec), LABELS)
    assert doc["spans"][0]["label"] == "CLAIM" and doc["spans"][0]["attributes"] == {"stance": "favor"}


def test_doccano_both_variants():
    data = lines({"id": 1, "text": "메타와 구글", "label": [[0, 2, "ORG"], [4, 6, "ORG"]], "Comments": []},
                 {"text": "왕은", "entities": [{"id": 3, "label": "PERSON", "start_offset": 0, "end_offset": 1}]})
    docs = formats.parse(data, "doccano", LABELS)
    assert [(s["start"], s["end"]) for s in docs[0]["spans"]] == [(0, 2), (4, 6)]
    assert docs[0]["meta"] == {"Comments": []} and docs[0]["id"] == 1
    assert docs[1]["spans"] == [{"start": 0, "end": 1, "label": "PERSON", "attributes": {}}]
    assert formats.detect_format("x.jsonl", data) == "doccano"
    assert formats.detect_format("x.jsonl", FIXTURE.read_bytes()) == "jsonl"


def test_conll_bio_text_rebuilt_with_single_spaces():
    data = ("-DOCSTART- -X- -X- O\n\n"
            "알렉산드르 -X- _ B-PERSON\n왕 -X- _ I-PERSON\n은 -X- _ O\n\n"
            "메타 NNP B-ORG\n( _ O\nMeta _ B-ORG\n) _ O\n\n"
            "-DOCSTART- -X- -X- O\n\n"
            "1억 _ B-MONEY\n달러 _ I-MONEY\n구글 _ I-ORG\n")  # IOB1: I- after another type starts one
    docs = formats.parse(data, "conll", LABELS)
    assert docs[0]["text"] == "알렉산드르 왕 은\n메타 ( Meta )"
    t = docs[0]["text"]
    assert [(t[s["start"]:s["end"]], s["label"]) for s in docs[0]["spans"]] == \
        [("알렉산드르 왕", "PERSON"), ("메타", "ORG"), ("Meta", "ORG")]
    t = docs[1]["text"]
    assert [(t[s["start"]:s["end"]], s["label"]) for s in docs[1]["spans"]] == [("1억 달러", "MONEY"), ("구글", "ORG")]


def test_conll_without_docstart_one_document_per_sentence():
    docs = formats.parse_conll("메타\tB-ORG\n는\tO\n\n왕\tB-PERSON\n", LABELS)
    assert [d["text"] for d in docs] == ["메타 는", "왕"]


def test_txt_kept_exact_bom_dropped():
    raw = "\ufeff제목\r\n\r\n본문\u00a0😀  끝\n".encode("utf8")
    [doc] = formats.parse(raw, "auto", name="dir/004_abc.txt")
    assert doc["text"] == "제목\r\n\r\n본문\u00a0😀  끝\n"
    assert doc["id"] == "004_abc" and doc["meta"] == {"filename": "004_abc.txt"} and doc["spans"] == []


def test_csv_text_id_and_meta_multiline_kept():
    data = 'id,text,source\r\na1,"첫 줄\r\n둘째 줄, 쉼표",web\r\n,두 번째,\r\n'
    docs = formats.parse(data.encode("utf8"), "auto", name="docs.csv")
    assert docs[0] == {"text": "첫 줄\r\n둘째 줄, 쉼표", "id": "a1", "meta": {"source": "web"}, "spans": []}
    assert docs[1]["id"] is None and docs[1]["text"] == "두 번째"


# ---------------------------------------------------------------------------
# errors: refused whole, with line numbers
# ---------------------------------------------------------------------------
GOOD = {"text": "메타는 좋다", "spans": [{"start": 0, "end": 2, "label": "ORG"}]}


@pytest.mark.parametrize("bad,line,field,reason", [
    ('{"text": "x", ', 2, None, "invalid JSON"),
    ('["not", "an", "object"]', 2, None, "JSON object"),
    ({"spans": []}, 2, "text", "required"),
    ({"text": ""}, 2, "text", "non-empty"),
    ({"text": "메타", "spans": {"start": 0}}, 2, "spans", "list"),
    ({"text": "메타", "spans": [{"start": 0, "end": 3, "label": "ORG"}]}, 2, "spans[0]", "outside the text"),
    ({"text": "메타", "spans": [{"start": -1, "end": 1, "label": "ORG"}]}, 2, "spans[0]", "outside the text"),
    ({"text": "메타", "spans": [{"start": 1, "end": 1, "label": "ORG"}]}, 2, "spans[0]", "outside the text"),
    ({"text": "메타", "spans": [{"start": "0", "end": 1, "label": "ORG"}]}, 2, "spans[0]", "integers"),
    ({"text": "메타", "spans": [{"start": 0, "end": 2}]}, 2, "spans[0].label", "required"),
    ({"text": "메타", "spans": [{"start": 0, "end": 2, "label": "PLACE"}]}, 2, "spans[0].label",
     "not in the label set"),
    ({"text": "메타", "spans": [{"start": 0, "end": 2, "label": "CLAIM"}]}, 2, "spans[0].attributes.stance",
     "required"),
    ({"text": "메타", "spans": [{"start": 0, "end": 2, "label": "CLAIM", "stance": "love"}]}, 2,
     "spans[0].attributes.stance", "not one of"),
    ({"text": "메타 왕", "spans": [{"start": 0, "end": 2, "label": "ORG"}, {"start": 1, "end": 4, "label": "PERSON"}]},
     2, "spans", "overlap"),
    ({"text": "메타", "id": [1]}, 2, "id", "string or an integer"),
])
def test_jsonl_errors(bad, line, field, reason):
    data = lines(GOOD, bad, GOOD)
    err = refused(formats.parse_jsonl, data, LABELS)
    assert len(err.details) == 1, err.details
    d = err.details[0]
    assert d["line"] == line and d["field"] == field and reason in d["reason"], d
    assert f"line {line}" in str(err)


def test_jsonl_collects_all_errors_at_once():
    data = lines(GOOD, "{oops", GOOD, {"text": "메타", "spans": [{"start": 0, "end": 9, "label": "ORG"}]}, "[]")
    err = refused(formats.parse_jsonl, data, LABELS)
    assert [d["line"] for d in err.details] == [2, 4, 5]


def test_claims_may_overlap_entities_but_not_be_refused():
    rec = {"text": "메타는 좋다.", "spans": [{"start": 0, "end": 2, "label": "ORG"},
                                        {"start": 0, "end": 7, "label": "CLAIM", "stance": "favor"}]}
    assert len(formats.parse_jsonl(lines(rec), LABELS)[0]["spans"]) == 2


def test_invalid_utf8_names_the_line():
    data = lines(GOOD).encode("utf8") + b'{"text": "\xff\xfe"}\n'
    err = refused(formats.parse_jsonl, data, LABELS)
    assert err.details[0]["line"] == 2


def test_doccano_errors():
    data = lines({"text": "메타", "label": [[0, 2, "ORG"]]}, {"text": "메타", "label": [[0, 2]]},
                 {"text": "메타", "label": [[0, 5, "ORG"]]}, {"text": "메타", "label": "positive"})
    err = refused(formats.parse_doccano, data, LABELS)
    assert [(d["line"], d["field"]) for d in err.details] == [(2, "label[0]"), (3, "label[0]"), (4, "label")]


def test_conll_errors():
    data = "메타 B-ORG\n는 O\n왕 B-KING\n이 X-ORG\n홀로\n주장 B-CLAIM\n"
    err = refused(formats.parse_conll, data, LABELS)
    assert [d["line"] for d in err.details] == [3, 4, 5, 6]
    assert "CLAIM is a span label" in err.details[3]["reason"]


def test_csv_errors():
    err = refused(formats.parse_csv, "id,body\n1,메타\n", LABELS)
    assert err.details[0]["line"] == 1 and err.details[0]["field"] == "text"
    err = refused(formats.parse_csv, 'id,text\n1,메타\n2,\n3,"여러\n줄"\n4,  \n5,a,extra\n', LABELS)
    assert [d["line"] for d in err.details] == [3, 6, 7]


def test_txt_and_detect_errors():
    assert refused(formats.parse_txt, " \n ").details[0]["line"] == 1
    refused(formats.parse, "x", "auto", name="file.pdf")
    refused(formats.parse, "x", "xml")
