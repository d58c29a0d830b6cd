"""The bad-input table (issue 6, part 1).

Every bad input goes through the real API (and the real `annotator import` command where it
applies) and each row asserts: the exact status code (or exit 1 and one line for the CLI), the
one error shape (``ok`` false, a one-sentence ``error``, ``status``, ``details`` naming the
offending item: line, span index, field, byte offset), and that the database is unchanged
(every row of every table, not only the counts). The rows that must be ACCEPTED come last:
text and offsets come back exactly (NFD Hangul stays NFD, CRLF stays CRLF, combining marks,
emoji), and a BOM at the start of an upload is removed and said so.

The refusals share one database per module (nothing is written, and each row checks that);
the accepted rows write into their own project with their own ids.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from hashlib import sha256

import pytest
from click.testing import CliRunner
from conftest import PASSWORD, PG_URL, Helper, reset_postgres
from sqlalchemy import select
from sqlmodel import SQLModel

from annotator import create_app
from annotator.cli import main
from annotator.storage.db import migrate

URL = "/api/v1"
TEXT = "메타는 Scale AI에 투자했다."  # ORG 0:2 메타, ORG 4:12 Scale AI; [3] and [9] are spaces
assert len(TEXT) == 19 and TEXT[0:2] == "메타" and TEXT[4:12] == "Scale AI"
SMALL_DOC_CHARS = 40  # MAX_DOCUMENT_CHARS of the "small" app and the CLI rows that test it
PLACE_ID = object()  # stands for the id of the label PLACE, which only the project "Other" has
UNSET = object()


# --- the world: two projects, a lead, an annotator -------------------------------------

@dataclass
class World:
    app: object
    small: object  # the same database, MAX_UPLOAD_MB=1 and MAX_DOCUMENT_CHARS=40
    h: Helper
    url: str
    data_dir: str
    tokens: dict
    ids: dict = field(default_factory=dict)

    def snapshot(self) -> dict:
        """Every row of every table: 'nothing written' means this is equal before and after."""
        with self.h.session() as s:
            return {t.name: sorted(repr(tuple(r)) for r in s.execute(select(t)).all())
                    for t in SQLModel.metadata.sorted_tables}

    def call(self, method, path, body=UNSET, raw=None, who="alice", content_type=None, small=False,
             headers=None):
        client = (self.small if small else self.app).test_client()
        kw = {"headers": {"Authorization": f"Bearer {self.tokens[who]}", **(headers or {})}}
        if raw is not None:
            kw["data"] = raw
        elif body is not UNSET:
            kw["data"] = json.dumps(body).encode("ascii")  # \u escapes: lone surrogates survive
            content_type = content_type or "application/json"
        if content_type:
            kw["content_type"] = content_type
        resp = getattr(client, method)(path.format(**self.ids), **kw)
        return resp.status_code, resp.get_json(silent=True), resp

    def cli(self, *args, env=None):
        runner = CliRunner()
        return runner.invoke(main, ["--db", self.url, *args], catch_exceptions=False,
                             env={"ANNOTATOR_DATA_DIR": self.data_dir, **(env or {})})


@pytest.fixture(scope="module")
def world(tmp_path_factory, template_db):
    tmp = tmp_path_factory.mktemp("bad_input")
    if PG_URL:
        reset_postgres(PG_URL)
        migrate(PG_URL)
        url = PG_URL
    else:
        shutil.copy(template_db, tmp / "annotator.db")
        url = f"sqlite:///{tmp / 'annotator.db'}"
    base = {"DATABASE_URL": url, "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": "test-secret-not-for-production", "TESTING": True}
    app = create_app(base)
    small = create_app({**base, "MAX_UPLOAD_MB": 1, "MAX_DOCUMENT_CHARS": SMALL_DOC_CHARS})
    h = Helper(app)
    lena, alice = h.user("lena", "lead"), h.user("alice")
    news = h.project("News", language="ko")
    other = h.project("Other", label_set=[{"name": "PLACE"}, {"name": "NOTE", "kind": "span"}])
    d0, d1 = h.docs(news, [{"id": "d0", "text": TEXT}, {"id": "d1", "text": "두 번째 문서"}])
    (o0,) = h.docs(other, [{"id": "o0", "text": TEXT}])
    from annotator.storage.models import Label

    with h.session() as s:
        place_id = s.execute(select(Label.id).where(Label.project_id == other.id,
                                                    Label.name == "PLACE")).scalar_one()
    tokens = {"lena": h.token(lena), "alice": h.token(alice)}
    w = World(app, small, h, url, str(tmp / "data"), tokens,
              {"pid": news.id, "doc": d0.id, "opid": other.id, "odoc": o0.id})
    w.place_id, w.alice, w.news = place_id, alice, news
    yield w
    for a in (app, small):
        a.extensions["annotator.db"].dispose()


# --- the assertions every refusal shares --------------------------------------------------

def assert_one_sentence(message: str):
    assert isinstance(message, str) and message, message
    assert message[0].isupper() and message.endswith("."), message
    assert "\n" not in message and len(message) <= 400, message
    assert not re.search(r"[.!?] [A-Z]", message), f"more than one sentence: {message}"
    assert "Traceback" not in message and "psycopg" not in message and "sqlite" not in message


def assert_refused(body, status, expect: dict, says: str | None):
    assert body is not None, "no JSON body"
    assert body["ok"] is False and body["status"] == status, body
    assert_one_sentence(body["error"])
    assert isinstance(body["details"], list), body
    if not expect:  # a refusal of the caller, not of an item (403)
        return
    assert body["details"], body
    assert any(all(d.get(k) == v for k, v in expect.items()) for d in body["details"]), \
        f"no detail has {expect}: {body['details']}"
    if says:
        assert says in body["error"], body["error"]


def sp(start, end, label="ORG", **attrs):
    out = {"start": start, "end": end, "label": label}
    if attrs:
        out["attributes"] = attrs
    return out


def claim(start, end, stance="favor"):
    return sp(start, end, "CLAIM", stance=stance)


# --- 1. every span rule, through every way spans come in ---------------------------------

SPAN_RULES = [
    # id, spans, (span index, field) the details must name
    ("start == end", [sp(2, 2)], (0, "end")),
    ("start > end", [sp(5, 3)], (0, "end")),
    ("negative start", [sp(-1, 2)], (0, "start")),
    ("negative end", [sp(0, -1)], (0, "end")),
    ("end past the text", [sp(0, 20)], (0, "end")),
    ("start and end past the text", [sp(25, 30)], (0, "end")),
    ("huge end", [sp(0, 10**20)], (0, "end")),
    ("float start", [{"start": 0.0, "end": 2, "label": "ORG"}], (0, "start")),
    ("float end", [{"start": 0, "end": 2.5, "label": "ORG"}], (0, "end")),
    ("string start", [{"start": "0", "end": 2, "label": "ORG"}], (0, "start")),
    ("bool start", [{"start": False, "end": 2, "label": "ORG"}], (0, "start")),
    ("bool end", [{"start": 0, "end": True, "label": "ORG"}], (0, "end")),
    ("null start", [{"start": None, "end": 2, "label": "ORG"}], (0, "start")),
    ("missing start", [{"end": 2, "label": "ORG"}], (0, "start")),
    ("missing label", [{"start": 0, "end": 2}], (0, "label")),
    ("unknown label", [sp(0, 2, "PLACEX")], (0, "label")),
    ("label of another project", [sp(0, 2, "PLACE")], (0, "label")),
    ("label id of another project", [sp(0, 2, PLACE_ID)], (0, "label")),
    ("label in the wrong case", [sp(0, 2, "org")], (0, "label")),
    ("label not a string", [sp(0, 2, ["ORG"])], (0, "label")),
    ("overlapping entities", [sp(0, 3), sp(2, 5, "PERSON")], (1, "start")),
    ("nested entities", [sp(4, 12), sp(4, 9, "PERSON")], (0, "start")),
    ("duplicate span", [sp(0, 2), sp(0, 2)], (1, "span")),
    ("duplicate claim with another stance", [claim(0, 19), claim(0, 19, "against")], (1, "span")),
    ("claim without stance", [sp(0, 19, "CLAIM")], (0, "attributes.stance")),
    ("claim with stance null", [sp(0, 19, "CLAIM", stance=None)], (0, "attributes.stance")),
    ("claim with an unknown stance", [claim(0, 19, "maybe")], (0, "attributes.stance")),
    ("stance in the wrong case", [claim(0, 19, "Favor")], (0, "attributes.stance")),
    ("stance not a string", [claim(0, 19, 1)], (0, "attributes.stance")),
    ("stance a list", [claim(0, 19, ["favor"])], (0, "attributes.stance")),
    ("unknown attribute", [sp(0, 19, "CLAIM", stance="favor", certainty="high")],
     (0, "attributes.certainty")),
    ("attribute on an entity", [sp(0, 2, "ORG", stance="favor")], (0, "attributes.stance")),
    ("attributes not an object", [{"start": 0, "end": 2, "label": "ORG", "attributes": []}],
     (0, "attributes")),
    ("unknown span field", [{"start": 0, "end": 2, "label": "ORG", "text": "메타"}], (0, "text")),
    ("span not an object", ["0-2 ORG"], (0, "span")),
    ("span is null", [None], (0, "span")),
    ("leading whitespace", [sp(3, 12)], (0, "start")),
    ("trailing whitespace", [sp(4, 10)], (0, "end")),
    ("only whitespace", [sp(3, 4)], (0, "start")),
    ("third span bad, first two fine", [sp(0, 2), sp(4, 12), sp(14, 99)], (2, "end")),
]


def resolve(spans, world):
    return [dict(s, label=world.place_id) if isinstance(s, dict) and s.get("label") is PLACE_ID
            else s for s in spans]


def import_field(index: int, fld: str) -> str:
    return f"spans[{index}]" if fld == "span" else f"spans[{index}].{fld}"


def import_body(spans) -> bytes:
    lines = [{"id": "fine", "text": "괜찮은 문서"}, {"id": "bad", "text": TEXT, "spans": spans}]
    return ("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n").encode()


SPAN_ENDPOINTS = {
    "annotation": ("put", "{URL}/documents/{doc}/annotation", "alice"),
    "gold": ("put", "{URL}/documents/{doc}/gold", "lena"),
    "honeypot": ("put", "{URL}/documents/{doc}/honeypot", "lena"),
}


@pytest.mark.parametrize("endpoint", [*SPAN_ENDPOINTS, "import"])
@pytest.mark.parametrize("name,spans,where", SPAN_RULES, ids=[r[0] for r in SPAN_RULES])
def test_span_rule_is_refused(world, endpoint, name, spans, where):
    spans = resolve(spans, world)
    index, fld = where
    before = world.snapshot()
    if endpoint == "import":
        status, body, _ = world.call("post", URL + "/projects/{pid}/documents",
                                     raw=import_body(spans), who="lena")
        expect = {"line": 2, "span": index, "field": import_field(index, fld)}
        says = f"line 2 ({import_field(index, fld)})"
    else:
        method, path, who = SPAN_ENDPOINTS[endpoint]
        status, body, _ = world.call(method, path.replace("{URL}", URL),
                                     {"spans": spans, "version": 0}, who=who)
        expect, says = {"span": index, "field": fld}, f"span {index}"
    assert status == 422, body
    assert_refused(body, 422, expect, says)
    assert world.snapshot() == before


@pytest.mark.parametrize("name,spans,where", SPAN_RULES, ids=[r[0] for r in SPAN_RULES])
def test_span_rule_is_refused_by_the_cli_import(world, tmp_path, name, spans, where):
    spans = resolve(spans, world)
    (tmp_path / "spans.jsonl").write_bytes(import_body(spans))
    before = world.snapshot()
    line = one_line_error(world.cli("import", "News", str(tmp_path / "spans.jsonl")))
    assert f"line 2 ({import_field(*where)})" in line, line
    assert world.snapshot() == before


def test_the_label_of_another_project_is_accepted_there(world):
    """The control of the rows above: PLACE is refused in News because it is Other's label."""
    status, body, _ = world.call("put", URL + "/documents/{odoc}/annotation",
                                 {"spans": [sp(0, 2, "PLACE")], "version": 0}, who="alice")
    assert status == 200, body
    assert body["spans"] == [{"start": 0, "end": 2, "label": "PLACE", "attributes": {}}]


def test_a_document_of_another_project_is_checked_against_its_own_labels(world):
    """PUT /documents/<id>/annotation is scoped by the document: News's ORG is unknown in Other."""
    before = world.snapshot()
    status, body, _ = world.call("put", URL + "/documents/{odoc}/gold",
                                 {"spans": [sp(0, 2, "ORG")], "version": 0}, who="lena")
    assert status == 422
    assert_refused(body, 422, {"span": 0, "field": "label"}, "span 0")
    assert world.snapshot() == before


# --- 1b. a boundary inside a user-perceived character, through every path --------------

# One document holding each kind of cluster; each row: (start, end) of a span that cuts one,
# the field named, and the words the reason must use.
CLUSTER_TEXT = ("Cafe\u0301 \U0001F469\u200d\U0001F4BB \U0001F44D\U0001F3FD \U0001F1F0\U0001F1F7 "
                "1\ufe0f\u20e3 \u1112\u1161\u11ab\u1100\u116e\u11a8 끝")
CUTS = {
    "combining mark": (0, 4, "end", "a letter and its combining mark, U+0065 U+0301"),
    "ZWJ sequence": (6, 7, "end", "joined by zero-width joiners"),
    "inside a ZWJ sequence, start": (7, 9, "start", "joined by zero-width joiners"),
    "skin-tone modifier": (10, 11, "end", "skin-tone modifier"),
    "flag": (13, 14, "end", "regional indicator"),
    "keycap": (16, 17, "end", "keycap"),
    "Hangul jamo": (20, 22, "end", "Hangul syllable spelled in jamo"),
    "Hangul jamo, start": (21, 26, "start", "Hangul syllable spelled in jamo"),
}
assert CLUSTER_TEXT[0:5] == "Cafe\u0301" and CLUSTER_TEXT[20:26] == "\u1112\u1161\u11ab\u1100\u116e\u11a8"


@pytest.fixture(scope="module")
def clusters(world):
    """A project with the cluster document (lena and alice are members)."""
    p = world.h.project("Clusters", language="ko")
    (doc,) = world.h.docs(p, [{"id": "c0", "text": CLUSTER_TEXT}])
    return p, doc


def cut_import(fmt: str, start: int, end: int) -> tuple[str, bytes]:
    """A file of ``fmt`` whose second record has the span (start, end) over CLUSTER_TEXT."""
    first = {"id": "fine", "text": "괜찮은 문서"}
    if fmt == "doccano":
        second = {"id": "cut", "text": CLUSTER_TEXT, "label": [[start, end, "ORG"]]}
    else:
        second = {"id": "cut", "text": CLUSTER_TEXT, "spans": [sp(start, end)]}
    if fmt == "prodigy":
        first, second = ({**r, "_input_hash": i, "answer": "accept"} for i, r in enumerate(
            (first, second)))
    return "cut.jsonl", jsonl(first, second)


@pytest.mark.parametrize("path", ["annotation", "gold", "honeypot", "import"])
@pytest.mark.parametrize("cut", CUTS, ids=list(CUTS))
def test_a_span_boundary_inside_a_character_is_refused(world, clusters, path, cut):
    p, doc = clusters
    start, end, fld, kind = CUTS[cut]
    before = world.snapshot()
    if path == "import":
        status, body, _ = world.call("post", f"{URL}/projects/{p.id}/documents", who="lena",
                                     raw=jsonl({"id": "new", "text": CLUSTER_TEXT,
                                                "spans": [sp(start, end)]}))
        expect = {"line": 1, "span": 0, "field": f"spans[0].{fld}"}
    else:
        method, route, who = SPAN_ENDPOINTS[path]
        status, body, _ = world.call(method, route.format(URL=URL, doc=doc.id),
                                     {"spans": [sp(start, end)], "version": 0}, who=who)
        expect = {"span": 0, "field": fld}
    assert status == 422, body
    assert_refused(body, 422, expect, kind)
    assert f"{fld} {start if fld == 'start' else end} falls inside the character" in body["error"]
    assert world.snapshot() == before


@pytest.mark.parametrize("fmt", ["ours", "prodigy", "doccano"])
@pytest.mark.parametrize("cut", ["combining mark", "ZWJ sequence", "skin-tone modifier", "flag",
                                 "Hangul jamo"])
def test_a_span_boundary_inside_a_character_is_refused_by_each_import_format(
        world, clusters, tmp_path, fmt, cut):
    start, end, fld, kind = CUTS[cut]
    name, data = cut_import(fmt, start, end)
    (tmp_path / name).write_bytes(data)
    before = world.snapshot()
    line = one_line_error(world.cli("import", "Clusters", str(tmp_path / name), "--format", fmt))
    assert "line 2" in line and kind in line, line
    assert world.snapshot() == before
    status, body, _ = world.call("post", f"{URL}/projects/{clusters[0].id}/documents?format={fmt}",
                                 raw=data, who="lena")
    assert status == 422 and kind in body["error"] and body["details"][0]["line"] == 2, body
    assert world.snapshot() == before


def test_a_conll_token_that_starts_with_a_combining_mark_is_refused(world, tmp_path):
    (tmp_path / "x.conll").write_bytes("a O\n\u0301b B-ORG\n".encode())
    before = world.snapshot()
    line = one_line_error(world.cli("import", "Clusters", str(tmp_path / "x.conll")))
    assert "start 2 falls inside the character" in line, line
    assert world.snapshot() == before


def test_spans_around_whole_characters_are_accepted(world, clusters):
    """The control of the rows above: the same characters, whole, are fine everywhere."""
    p, doc = clusters
    whole = [sp(0, 5), sp(6, 9, "PERSON"), sp(10, 12), sp(13, 15), sp(16, 19), sp(20, 26)]
    for path in ("annotation", "gold"):
        method, route, who = SPAN_ENDPOINTS[path]
        status, body, _ = world.call(method, route.format(URL=URL, doc=doc.id),
                                     {"spans": whole, "version": 0}, who=who)
        assert status == 200, body
    status, body, _ = world.call("post", f"{URL}/projects/{p.id}/documents", who="lena",
                                 raw=jsonl({"id": "whole", "text": CLUSTER_TEXT, "spans": whole}))
    assert status == 201 and body["with_spans"] == 1, body


# --- 2. request bodies: wrong JSON, wrong types, missing and unknown fields ---------------

@dataclass
class Row:
    method: str
    path: str
    status: int
    expect: dict
    body: object = UNSET
    raw: bytes | None = None
    who: str = "lena"
    content_type: str | None = None
    says: str | None = None
    small: bool = False


ANN = URL + "/documents/{doc}/annotation"
GOLD = URL + "/documents/{doc}/gold"
HONEY = URL + "/documents/{doc}/honeypot"
SETTINGS = URL + "/projects/{pid}/settings"
PROJECTS = URL + "/projects"
DOCS = URL + "/projects/{pid}/documents"
OK_SPANS = [sp(0, 2)]


def ann(status, expect, body=UNSET, **kw):
    return Row("put", ANN, status, expect, body, who="alice", **kw)


def gold(status, expect, body=UNSET, **kw):
    return Row("put", GOLD, status, expect, body, **kw)


def honey(status, expect, body=UNSET, **kw):
    return Row("put", HONEY, status, expect, body, **kw)


def settings(status, expect, body=UNSET, **kw):
    return Row("patch", SETTINGS, status, expect, body, **kw)


def project(status, expect, body=UNSET, **kw):
    return Row("post", PROJECTS, status, expect, body, **kw)


def upload(status, expect, raw, **kw):
    return Row("post", DOCS, status, expect, raw=raw, **kw)


def jsonl(*records) -> bytes:
    return ("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
                      for r in records) + "\n").encode()


def good(i=1):
    return {"id": f"ok{i}", "text": "좋은 문서"}


def deep(levels: int):
    value: object = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def F(name, **more):
    return {"field": name, **more}


BODY_ROWS = {
    # --- PUT /documents/<id>/annotation: {"spans", "version", "status"?, "skip_reason"?}
    "annotation: empty body": ann(400, F("body"), raw=b""),
    "annotation: not JSON": ann(400, F("body", line=1, column=2), raw=b"{not json}"),
    "annotation: text/plain prose": ann(400, F("body"), raw=b"hello", content_type="text/plain"),
    "annotation: form-encoded": ann(400, F("body"), raw=b"spans=1&version=0",
                                    content_type="application/x-www-form-urlencoded"),
    "annotation: JSON null": ann(422, F("body"), None),
    "annotation: top-level list": ann(422, F("body"), []),
    "annotation: top-level string": ann(422, F("body"), "spans"),
    "annotation: top-level number": ann(422, F("body"), 0),
    "annotation: top-level true": ann(422, F("body"), True),
    "annotation: missing spans": ann(422, F("spans", reason="missing"), {"version": 0}),
    "annotation: missing version": ann(422, F("version", reason="missing"), {"spans": []}),
    "annotation: empty object": ann(422, F("spans", reason="missing"), {}),
    "annotation: unknown field": ann(422, F("comment", reason="unknown field"),
                                     {"spans": [], "version": 0, "comment": "hi"}),
    "annotation: field in the wrong case": ann(422, F("Spans", reason="unknown field"),
                                               {"Spans": [], "version": 0}),
    "annotation: spans an object": ann(422, F("spans"), {"spans": {"start": 0}, "version": 0}),
    "annotation: spans a string": ann(422, F("spans"), {"spans": "[]", "version": 0}),
    "annotation: spans null": ann(422, F("spans"), {"spans": None, "version": 0}),
    "annotation: version a string": ann(422, F("version"), {"spans": [], "version": "0"}),
    "annotation: version a float": ann(422, F("version"), {"spans": [], "version": 0.0}),
    "annotation: version a bool": ann(422, F("version"), {"spans": [], "version": False}),
    "annotation: version null": ann(422, F("version"), {"spans": [], "version": None}),
    "annotation: version negative": ann(422, F("version"), {"spans": [], "version": -1}),
    "annotation: version a list": ann(422, F("version"), {"spans": [], "version": [0]}),
    "annotation: version NaN": ann(400, F("body"), raw=b'{"spans": [], "version": NaN}'),
    "annotation: version Infinity": ann(400, F("body"), raw=b'{"spans": [], "version": Infinity}'),
    "annotation: version 1e400": ann(400, F("body"), raw=b'{"spans": [], "version": 1e400}'),
    "annotation: version given twice": ann(422, F("version", reason="duplicate field"),
                                           raw=b'{"spans": [], "version": 0, "version": 7}'),
    "annotation: status unknown":
        ann(422, F("status"), {"spans": [], "version": 0, "status": "done"}),
    "annotation: status a number": ann(422, F("status"), {"spans": [], "version": 0, "status": 1}),
    "annotation: status a list": ann(422, F("status"),
                                     {"spans": [], "version": 0, "status": ["submitted"]}),
    "annotation: status empty": ann(422, F("status"), {"spans": [], "version": 0, "status": ""}),
    "annotation: skip_reason a number": ann(422, F("skip_reason"),
                                            {"spans": [], "version": 0, "skip_reason": 5}),
    "annotation: skip_reason an object": ann(422, F("skip_reason"),
                                             {"spans": [], "version": 0, "skip_reason": {}}),
    "annotation: skip_reason too long": ann(422, F("skip_reason"), {
        "spans": [], "version": 0, "status": "skipped", "skip_reason": "x" * 2001}),
    "annotation: NUL in skip_reason": ann(422, F("skip_reason", offset=3), {
        "spans": [], "version": 0, "status": "skipped", "skip_reason": "bad\u0000text"}),
    "annotation: NUL in a label": ann(422, F("spans[0].label", offset=2),
                                      {"spans": [sp(0, 2, "OR\u0000G")], "version": 0}),
    "annotation: NUL in an attribute name": ann(422, F("spans[0].attributes.st\u0000ance"), {
        "spans": [sp(0, 19, "CLAIM", **{"st\u0000ance": "favor"})], "version": 0}),
    "annotation: lone surrogate in skip_reason": ann(400, F("skip_reason", offset=0), {
        "spans": [], "version": 0, "status": "skipped", "skip_reason": "\ud800"}),
    "annotation: lone low surrogate in a label":
        ann(400, F("spans[0].label", offset=1),
            {"spans": [sp(0, 2, "O\udc00")], "version": 0}),
    "annotation: invalid UTF-8": ann(400, F("body", byte=17, line=1),
                                     raw=b'{"skip_reason": "\xff", "spans": [], "version": 0}'),
    "annotation: truncated UTF-8":
        ann(400, F("body", byte=17),
            raw=b'{"skip_reason": "\xed\x95", "spans": [], "version": 0}'),
    "annotation: UTF-8 encoded surrogate": ann(400, F("body", byte=17),
                                               raw=b'{"skip_reason": "\xed\xa0\x80", "spans": []}'),
    "annotation: nested too deeply": ann(422, F("spans"), {
        "spans": [{"start": 0, "end": 2, "label": "ORG", "attributes": deep(80)}], "version": 0}),
    "annotation: nested deeper than the parser goes": ann(
        422, F("body"), raw=b'{"spans": ' + b"[" * 100_000 + b"]" * 100_000 + b', "version": 0}'),
    "annotation: huge number":
        ann(400, F("body"), raw=b'{"spans": [], "version": ' + b"9" * 5000 + b"}"),
    "annotation: body over the size limit": ann(413, F("body", limit=1024 * 1024), small=True,
                                                raw=b'{"spans": [], "version": 0, "skip_reason": "'
                                                + b"x" * (1024 * 1024) + b'"}'),
    "annotation: a valid span but a bad field":
        ann(422, F("status"),
            {"spans": OK_SPANS, "version": 0, "status": "ok"}),

    # --- PUT /documents/<id>/gold: {"spans", "version"}
    "gold: empty body": gold(400, F("body"), raw=b""),
    "gold: not JSON": gold(400, F("body"), raw=b"[1,"),
    "gold: JSON null": gold(422, F("body"), None),
    "gold: top-level list": gold(422, F("body"), [OK_SPANS]),
    "gold: missing spans": gold(422, F("spans", reason="missing"), {"version": 0}),
    "gold: missing version": gold(422, F("version", reason="missing"), {"spans": OK_SPANS}),
    "gold: status is not a gold field":
        gold(422, F("status", reason="unknown field"),
             {"spans": OK_SPANS, "version": 0, "status": "submitted"}),
    "gold: unknown field": gold(422, F("decisions", reason="unknown field"),
                                {"spans": OK_SPANS, "version": 0, "decisions": []}),
    "gold: spans a string": gold(422, F("spans"), {"spans": "all", "version": 0}),
    "gold: version a string": gold(422, F("version"), {"spans": OK_SPANS, "version": "0"}),
    "gold: version a bool": gold(422, F("version"), {"spans": OK_SPANS, "version": True}),
    "gold: NUL in an attribute value": gold(422, F("spans[0].attributes.stance", offset=5), {
        "spans": [claim(0, 19, "favor\u0000")], "version": 0}),
    "gold: invalid UTF-8": gold(400, F("body", byte=1), raw=b'{\x80"spans": [], "version": 0}'),

    # --- PUT /documents/<id>/honeypot: {} (the gold is the reference) or {"spans", "version"}
    "honeypot: JSON null": honey(422, F("body"), None),
    "honeypot: top-level list": honey(422, F("body"), []),
    "honeypot: top-level false": honey(422, F("body"), False),
    "honeypot: top-level zero": honey(422, F("body"), 0),
    "honeypot: top-level empty string": honey(422, F("body"), ""),
    "honeypot: spans without version":
        honey(422, F("version", reason="missing"), {"spans": OK_SPANS}),
    "honeypot: version without spans": honey(422, F("spans", reason="missing"), {"version": 0}),
    "honeypot: unknown field": honey(422, F("rate", reason="unknown field"), {"rate": 0.5}),
    "honeypot: spans null": honey(422, F("spans"), {"spans": None, "version": 0}),
    "honeypot: version a string": honey(422, F("version"), {"spans": OK_SPANS, "version": "0"}),
    "honeypot: no body and no gold yet":
        honey(422, F("spans", reason="no gold annotation"), raw=b""),
    "honeypot: empty object and no gold yet":
        honey(422, F("spans", reason="no gold annotation"), {}),
    "honeypot: not JSON": honey(400, F("body"), raw=b"yes"),

    # --- PATCH /projects/<pid>/settings: any of k, blind, reservation_minutes, honeypot_*
    "settings: empty body": settings(400, F("body"), raw=b""),
    "settings: not JSON": settings(400, F("body"), raw=b"k=3", content_type="text/plain"),
    "settings: JSON null": settings(422, F("body"), None),
    "settings: top-level list": settings(422, F("body"), [{"k": 3}]),
    "settings: empty object": settings(422, F("body"), {}),
    "settings: unknown field":
        settings(422, F("colour", reason="unknown field"), {"colour": "red"}),
    "settings: unknown field next to a good one": settings(422, F("kk", reason="unknown field"),
                                                           {"k": 3, "kk": 3}),
    "settings: k a string": settings(422, F("k"), {"k": "3"}),
    "settings: k a float": settings(422, F("k"), {"k": 2.5}),
    "settings: k a whole float": settings(422, F("k"), {"k": 3.0}),
    "settings: k a bool": settings(422, F("k"), {"k": True}),
    "settings: k zero": settings(422, F("k"), {"k": 0}),
    "settings: k too big": settings(422, F("k"), {"k": 51}),
    "settings: k null": settings(422, F("k"), {"k": None}),
    "settings: blind a number": settings(422, F("blind"), {"blind": 1}),
    "settings: blind a string": settings(422, F("blind"), {"blind": "true"}),
    "settings: blind null": settings(422, F("blind"), {"blind": None}),
    "settings: reservation_minutes a string": settings(422, F("reservation_minutes"),
                                                       {"reservation_minutes": "30"}),
    "settings: reservation_minutes zero": settings(422, F("reservation_minutes"),
                                                   {"reservation_minutes": 0}),
    "settings: honeypot_rate a string": settings(422, F("honeypot_rate"), {"honeypot_rate": "0.1"}),
    "settings: honeypot_rate a bool": settings(422, F("honeypot_rate"), {"honeypot_rate": True}),
    "settings: honeypot_rate above 1": settings(422, F("honeypot_rate"), {"honeypot_rate": 1.5}),
    "settings: honeypot_rate negative": settings(422, F("honeypot_rate"), {"honeypot_rate": -0.1}),
    "settings: honeypot_rate NaN": settings(400, F("body"), raw=b'{"honeypot_rate": NaN}'),
    "settings: honeypot_threshold a list": settings(422, F("honeypot_threshold"),
                                                    {"honeypot_threshold": [0.5]}),
    "settings: honeypot_feedback a number": settings(422, F("honeypot_feedback"),
                                                     {"honeypot_feedback": 1}),
    "settings: one good, one bad, none applied": settings(422, F("blind"), {"k": 3, "blind": "no"}),
    "settings: an annotator may not": settings(403, {}, {"k": 3}, who="alice"),

    # --- POST /projects: {"name", "language"?, "k"?, "guidelines"?, "labels"? or "label_set"?}
    "project: empty body": project(400, F("body"), raw=b""),
    "project: not JSON": project(400, F("body"), raw=b"name=X",
                                 content_type="application/x-www-form-urlencoded"),
    "project: JSON null": project(422, F("body"), None),
    "project: top-level list": project(422, F("body"), [{"name": "X"}]),
    "project: top-level string": project(422, F("body"), "X"),
    "project: missing name": project(422, F("name", reason="missing"), {"language": "ko"}),
    "project: name a number": project(422, F("name"), {"name": 5}),
    "project: name a list": project(422, F("name"), {"name": ["X"]}),
    "project: name null": project(422, F("name"), {"name": None}),
    "project: name empty": project(422, F("name"), {"name": ""}),
    "project: name only spaces": project(422, F("name"), {"name": "   "}),
    "project: name too long": project(422, F("name"), {"name": "x" * 201}),
    "project: name with NUL": project(422, F("name", offset=1), {"name": "X\u0000Y"}),
    "project: name with a lone surrogate": project(400, F("name", offset=1), {"name": "X\ud800"}),
    "project: name taken": project(409, F("name"), {"name": "News"}),
    "project: language a number": project(422, F("language"), {"name": "X", "language": 82}),
    "project: language a name": project(422, F("language"), {"name": "X", "language": "Korean"}),
    "project: language null": project(422, F("language"), {"name": "X", "language": None}),
    "project: guidelines a number": project(422, F("guidelines"), {"name": "X", "guidelines": 1}),
    "project: guidelines a list": project(422, F("guidelines"), {"name": "X", "guidelines": ["a"]}),
    "project: guidelines with NUL": project(422, F("guidelines", offset=2),
                                            {"name": "X", "guidelines": "# \u0000"}),
    "project: k a string": project(422, F("k"), {"name": "X", "k": "2"}),
    "project: k a bool": project(422, F("k"), {"name": "X", "k": True}),
    "project: k a float": project(422, F("k"), {"name": "X", "k": 2.0}),
    "project: k zero": project(422, F("k"), {"name": "X", "k": 0}),
    "project: unknown field": project(422, F("owner", reason="unknown field"),
                                      {"name": "X", "owner": "lena"}),
    "project: labels and label_set both": project(422, F("labels"), {
        "name": "X", "labels": [{"name": "A"}], "label_set": "news"}),
    "project: labels empty": project(422, F("labels"), {"name": "X", "labels": []}),
    "project: labels a string": project(422, F("labels"), {"name": "X", "labels": "news"}),
    "project: labels an object": project(422, F("labels"), {"name": "X", "labels": {"name": "A"}}),
    "project: labels null": project(422, F("labels"), {"name": "X", "labels": None}),
    "project: label not an object": project(422, {"label": 0, "field": "label"},
                                            {"name": "X", "labels": ["A"]}),
    "project: label name a number": project(422, {"label": 0, "field": "name"},
                                            {"name": "X", "labels": [{"name": 5}]}),
    "project: label name missing":
        project(422, {"label": 1, "field": "name"},
                {"name": "X", "labels": [{"name": "A"}, {"kind": "span"}]}),
    "project: label name with a space": project(422, {"label": 0, "field": "name"},
                                                {"name": "X", "labels": [{"name": "A B"}]}),
    "project: label unknown field":
        project(422, {"label": 0, "field": "colour"},
                {"name": "X", "labels": [{"name": "A", "colour": "red"}]}),
    "project: label kind unknown":
        project(422, {"label": 0, "field": "kind"},
                {"name": "X", "labels": [{"name": "A", "kind": "relation"}]}),
    "project: label kind a list":
        project(422, {"label": 0, "field": "kind"},
                {"name": "X", "labels": [{"name": "A", "kind": ["span"]}]}),
    "project: label color a number":
        project(422, {"label": 0, "field": "color"},
                {"name": "X", "labels": [{"name": "A", "color": 255}]}),
    "project: label hotkey two characters": project(422, {"label": 0, "field": "hotkey"}, {
        "name": "X", "labels": [{"name": "A", "hotkey": "ab"}]}),
    "project: label hotkey a number":
        project(422, {"label": 0, "field": "hotkey"},
                {"name": "X", "labels": [{"name": "A", "hotkey": 1}]}),
    "project: duplicate label": project(422, {"label": 1, "field": "name"},
                                        {"name": "X", "labels": [{"name": "A"}, {"name": "A"}]}),
    "project: attributes a list": project(422, {"label": 0, "field": "attributes"}, {
        "name": "X", "labels": [{"name": "A", "attributes": ["stance"]}]}),
    "project: attribute values a string": project(422, {"label": 0, "field": "attributes.stance"}, {
        "name": "X", "labels": [{"name": "A", "attributes": {"stance": {"values": "favor"}}}]}),
    "project: attribute values not strings":
        project(422, {"label": 0, "field": "attributes.stance"}, {
            "name": "X", "labels": [{"name": "A", "attributes": {"stance": {"values": [1, 2]}}}]}),
    "project: attribute required not a bool":
        project(422, {"label": 0, "field": "attributes.stance"}, {
            "name": "X", "labels": [{"name": "A", "attributes": {
            "stance": {"values": ["a"], "required": "yes"}}}]}),
    "project: attribute spec unknown field":
        project(422, {"label": 0, "field": "attributes.stance"}, {
            "name": "X", "labels": [{"name": "A", "attributes": {
            "stance": {"values": ["a"], "default": "a"}}}]}),
    "project: label_set unknown": project(422, F("label_set"), {"name": "X", "label_set": "nope"}),
    "project: label_set a number": project(422, F("label_set"), {"name": "X", "label_set": 5}),
    "project: an annotator may not": project(403, {}, {"name": "X"}, who="alice"),

    # --- POST /projects/<pid>/documents: a JSON list or JSON Lines of documents (an upload)
    "upload: empty body": upload(400, F("body"), b""),
    "upload: only blank lines": upload(422, {"reason": "empty"}, b"\n  \n\r\n"),
    "upload: empty JSON list": upload(422, {"reason": "empty"}, b"[]"),
    "upload: JSONL line not JSON": upload(400, {"line": 2}, jsonl(good(), "{not json}")),
    "upload: JSONL line a string": upload(422, {"line": 2, "field": "record"},
                                          jsonl(good(), '"just text"')),
    "upload: JSONL line a list": upload(422, {"line": 2, "field": "record"},
                                        jsonl(good(), '["text", "x"]')),
    "upload: JSONL line null": upload(422, {"line": 2, "field": "record"}, jsonl(good(), "null")),
    "upload: JSONL line a number": upload(422, {"line": 3, "field": "record"},
                                          jsonl(good(), good(2), "42")),
    "upload: top-level JSON null": upload(422, {"line": 1, "field": "record"}, b"null"),
    "upload: top-level JSON string": upload(422, {"line": 1, "field": "record"}, b'"text"'),
    "upload: JSON list item not an object": upload(422, {"item": 2, "line": 3, "field": "record"},
                                                   b'[\n {"id": "a", "text": "a"},\n "b"\n]'),
    "upload: JSON list not closed": upload(400, {"line": 2}, b'[{"text": "a"},\n'),
    "upload: JSON list with trailing text": upload(400, {"line": 1}, b'[{"text": "a"}] and more'),
    "upload: NaN in JSONL meta": upload(400, {"line": 2},
                                        jsonl(good(), '{"text": "b", "meta": {"score": NaN}}')),
    "upload: 1e400 in JSONL meta":
        upload(400, {"line": 1}, b'{"text": "b", "meta": {"score": -1e400}}\n'),
    "upload: NaN in a JSON list": upload(400, {"line": 1}, b'[{"text": "b", "meta": {"s": NaN}}]'),
    "upload: invalid UTF-8": upload(400, {"byte": 22, "line": 1},
                                    b'{"id": "x", "text": "a\xc3\x28"}\n'),
    "upload: invalid UTF-8 on line 2": upload(400, {"byte": 49, "line": 2},
                                              jsonl(good()) + b'{"text": "\xff"}\n'),
    "upload: latin-1": upload(400, {"byte": 13}, '{"text": "caf\xe9"}\n'.encode("latin-1")),
    "upload: UTF-16": upload(400, {"byte": 0}, '{"text": "a"}\n'.encode("utf-16")),
    "upload: NUL escape in text": upload(422, {"line": 2, "field": "text", "offset": 1},
                                         jsonl(good(), {"text": "a\u0000b"})),
    "upload: raw NUL byte in a JSON string": upload(400, {"line": 1}, b'{"text": "a\x00b"}\n'),
    "upload: NUL in meta": upload(422, {"line": 1, "field": "meta.source"},
                                  jsonl({"text": "a", "meta": {"source": "we\u0000b"}})),
    "upload: NUL in a meta key": upload(422, {"line": 1, "field": "meta.s\u0000"},
                                        jsonl({"text": "a", "meta": {"s\u0000": "web"}})),
    "upload: NUL in id":
        upload(422, {"line": 1, "field": "id"}, jsonl({"id": "a\u0000", "text": "a"})),
    "upload: lone surrogate in JSONL text": upload(400, {"line": 2, "field": "text", "offset": 1},
                                                   jsonl(good()) + b'{"text": "a\\ud800b"}\n'),
    "upload: lone surrogate in a JSON list": upload(400, {"item": 2, "line": 2, "field": "text"},
                                                    b'[{"text": "a"},\n {"text": "\\udfff"}]'),
    "upload: lone surrogate in meta": upload(400, {"line": 1, "field": "meta.k"},
                                             b'{"text": "a", "meta": {"k": "\\ud83d"}}\n'),
    "upload: meta nested too deeply": upload(422, {"line": 1, "field": "meta"},
                                             jsonl({"text": "a", "meta": deep(80)})),
    "upload: unknown field": upload(422, {"line": 1, "field": "colour"},
                                    jsonl({"text": "a", "colour": "red"})),
    "upload: field in the wrong case":
        upload(422, {"line": 1, "field": "Text"}, jsonl({"Text": "a"})),
    "upload: missing text": upload(422, {"line": 2, "field": "text"}, jsonl(good(), {"id": "y"})),
    "upload: text null": upload(422, {"line": 1, "field": "text"}, jsonl({"text": None})),
    "upload: text a number": upload(422, {"line": 1, "field": "text"}, jsonl({"text": 5})),
    "upload: text a list": upload(422, {"line": 1, "field": "text"}, jsonl({"text": ["a"]})),
    "upload: text empty": upload(422, {"line": 1, "field": "text"}, jsonl({"text": ""})),
    "upload: text only whitespace": upload(422, {"line": 1, "field": "text"},
                                           jsonl({"text": " \r\n\u00a0"})),
    "upload: id a bool": upload(422, {"line": 1, "field": "id"}, jsonl({"id": True, "text": "a"})),
    "upload: id a float": upload(422, {"line": 1, "field": "id"}, jsonl({"id": 1.5, "text": "a"})),
    "upload: id a list": upload(422, {"line": 1, "field": "id"}, jsonl({"id": [1], "text": "a"})),
    "upload: id empty": upload(422, {"line": 1, "field": "id"}, jsonl({"id": "", "text": "a"})),
    "upload: id too long":
        upload(422, {"line": 1, "field": "id"}, jsonl({"id": "x" * 256, "text": "a"})),
    "upload: duplicate id": upload(422, {"line": 2, "field": "id"}, jsonl(good(), good())),
    "upload: id already in the project": upload(422, {"line": 1, "field": "id"},
                                                jsonl({"id": "d0", "text": "again"})),
    "upload: same text twice without ids": upload(422, {"line": 2, "field": "text"},
                                                  jsonl({"text": "same"}, {"text": "same"})),
    "upload: meta a list":
        upload(422, {"line": 1, "field": "meta"}, jsonl({"text": "a", "meta": []})),
    "upload: meta a string":
        upload(422, {"line": 1, "field": "meta"}, jsonl({"text": "a", "meta": "x"})),
    "upload: spans an object": upload(422, {"line": 1, "field": "spans"},
                                      jsonl({"text": "a", "spans": {"start": 0}})),
    "upload: spans a string": upload(422, {"line": 1, "field": "spans"},
                                     jsonl({"text": "a", "spans": "ORG"})),
    "upload: a document over MAX_DOCUMENT_CHARS": upload(
        413, {"line": 2, "field": "text", "limit": SMALL_DOC_CHARS}, small=True,
        raw=jsonl(good(), {"text": "가" * (SMALL_DOC_CHARS + 1)})),
    "upload: body over MAX_UPLOAD_MB": upload(413, F("body", limit=1024 * 1024), small=True,
                                              raw=jsonl({"text": "x" * (1024 * 1024)})),
    "upload: an annotator may not": upload(403, {}, jsonl(good()), who="alice"),
}


@pytest.mark.parametrize("row", BODY_ROWS.values(), ids=BODY_ROWS.keys())
def test_bad_body_is_refused(world, row):
    before = world.snapshot()
    status, body, _ = world.call(row.method, row.path, row.body, raw=row.raw, who=row.who,
                                 content_type=row.content_type, small=row.small)
    assert status == row.status, body
    assert_refused(body, row.status, row.expect, row.says)
    assert world.snapshot() == before


def test_the_size_limit_answer_names_the_configuration(world):
    raw = b'{"spans": [], "version": 0, "skip_reason": "' + b"x" * (1024 * 1024) + b'"}'
    status, body, _ = world.call("put", ANN, raw=raw, small=True)
    assert status == 413
    assert "ANNOTATOR_MAX_UPLOAD_MB" in body["error"] and body["details"][0]["size"] == len(raw)
    status, body, _ = world.call("post", DOCS, who="lena", small=True,
                                 raw=jsonl({"text": "가" * (SMALL_DOC_CHARS + 1)}))
    assert status == 413 and "line 1" in body["error"], body
    assert "ANNOTATOR_MAX_DOCUMENT_CHARS" in body["error"], body


def test_the_html_import_shows_the_same_refusals(world):
    """The lead's import form (multipart) refuses like the API and writes nothing."""
    import io

    client = world.app.test_client()
    lead = type("U", (), {"username": "lena"})
    csrf = world.h.login(client, lead, PASSWORD)
    cases = [
        ("nocol.csv", b"id,body\n1,x\n", 422, "no &#39;text&#39; column"),
        ("bad.txt", b"caf\xe9", 400, "byte offset 3"),
        ("bad.jsonl", b'{"text": "ok"}\n[1]\n', 422, "line 2"),
        ("doc.pdf", b"%PDF", 422, "Cannot import doc.pdf"),
    ]
    for name, data, status, says in cases:
        before = world.snapshot()
        resp = client.post(f"/projects/{world.ids['pid']}/import",
                           content_type="multipart/form-data",
                           data={"csrf_token": csrf, "files": (io.BytesIO(data), name)})
        assert resp.status_code == status, (name, resp.data[:500])
        assert says in resp.get_data(as_text=True), name
        assert world.snapshot() == before, name


# --- 3. the CLI import of .txt, .jsonl and .csv files -------------------------------------

def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert_one_sentence(lines[0].removeprefix("Error: "))
    return lines[0]


CLI_ROWS = {
    # id: ({file name: bytes}, [what the one line must say], extra environment)
    "txt: invalid UTF-8":
        ({"a.txt": "caf\xe9".encode("latin-1")}, ["a.txt", "byte offset 3"], None),
    "txt: invalid UTF-8 on line 3":
        ({"a.txt": b"one\ntwo\nthr\xffee"}, ["byte offset 11", "line 3"],
         None),
    "txt: NUL byte": ({"a.txt": b"ab\x00c"}, ["line 1 (text)", "NUL", "offset 2"], None),
    "txt: empty": ({"a.txt": b""}, ["line 1 (text)", "empty"], None),
    "txt: only whitespace": ({"a.txt": b" \r\n\t"}, ["line 1 (text)", "empty"], None),
    "txt: over MAX_DOCUMENT_CHARS": ({"a.txt": ("가" * (SMALL_DOC_CHARS + 1)).encode()},
                                     ["line 1 (text)", f"limit is {SMALL_DOC_CHARS}"],
                                     {"ANNOTATOR_MAX_DOCUMENT_CHARS": str(SMALL_DOC_CHARS)}),
    "txt: id already in the project": ({"d0.txt": b"again"}, ["line 1 (id)", "already"], None),
    "csv: no text column":
        ({"a.csv": b"id,body\n1,hello\n"}, ["no 'text' column", "id, body"], None),
    "csv: empty file": ({"a.csv": b""}, ["no 'text' column"], None),
    "csv: header only": ({"a.csv": b"id,text\n"}, ["holds no documents"], None),
    "csv: more values than columns": ({"a.csv": b"id,text\n1,a\n2,b,extra\n"},
                                      ["line 3", "more values than columns"], None),
    "csv: duplicate column":
        ({"a.csv": b"text,text\na,b\n"}, ["line 1", "'text' appears twice"], None),
    "csv: empty text cell": ({"a.csv": b"id,text\n1,a\n2,\n"}, ["line 3 (text)", "empty"], None),
    "csv: missing text cell": ({"a.csv": b"id,text\n1,a\n2\n"}, ["line 3 (text)", "missing"], None),
    "csv: record after a multi-line cell": ({"a.csv": b'id,text\n1,"a\r\nb\r\nc"\n2,\n'},
                                            ["line 5 (text)"], None),
    "csv: invalid UTF-8":
        ({"a.csv": b"id,text\n1,\xe9t\xe9\n"}, ["byte offset 10", "line 2"], None),
    "csv: NUL byte": ({"a.csv": b"id,text\n1,a\x00b\n"}, ["line 2 (text)", "NUL"], None),
    "jsonl: line not an object":
        ({"a.jsonl": jsonl(good(), '["x"]')}, ["line 2 (record)", "object"],
         None),
    "jsonl: line not JSON":
        ({"a.jsonl": jsonl(good(), "{oops")}, ["line 2", "not valid JSON"], None),
    "jsonl: lone surrogate": ({"a.jsonl": b'{"text": "\\ud800"}\n'}, ["line 1 (text)", "surrogate"],
                              None),
    "jsonl: NUL in a meta key": ({"a.jsonl": jsonl({"text": "a", "meta": {"k\u0000": "v"}})},
                                 ["line 1 (meta.k\\u0000)", "of its name"], None),
    "jsonl: unknown field": ({"a.jsonl": jsonl({"text": "a", "colour": "red"})},
                             ["line 1 (colour)", "unknown field"], None),
    "jsonl: invalid UTF-8": ({"a.jsonl": b'{"text": "\xc0\xaf"}\n'}, ["byte offset 10"], None),
    "json: item not an object":
        ({"a.json": b'[\n{"text": "a"},\n7\n]\n'}, ["item 2 (line 3) (record)"],
         None),
    "json: one-line list, duplicate id":
        ({"a.json": b'[{"id": 1, "text": "a"}, {"id": 1, "text": "b"}]'},
         ["item 2 (line 1) (id)", "also at item 1 (line 1)"], None),
    "second file bad": ({"a.jsonl": jsonl(good()), "b.jsonl": jsonl(good(2), {"id": 3})},
                        ["line b.jsonl:2 (text)"], None),
    "same id in two files": ({"a.txt": b"one", "b.jsonl": jsonl({"id": "a", "text": "two"})},
                             ["line b.jsonl:1 (id)", "duplicate id 'a'"], None),
    "unknown suffix": ({"a.pdf": b"%PDF-1.4"}, ["Cannot import a.pdf"], None),
}


@pytest.mark.parametrize("files,says,env", CLI_ROWS.values(), ids=CLI_ROWS.keys())
def test_cli_import_refuses(world, tmp_path, files, says, env):
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    before = world.snapshot()
    line = one_line_error(world.cli("import", "News", *paths, env=env))
    for word in says:
        assert word in line, line
    assert world.snapshot() == before


# --- 4. accepted exactly: text and offsets come back byte for byte ------------------------

NFD_HANGUL = "\u1112\u1161\u11ab\u1100\u1173\u11af"  # 한글 decomposed into jamo
EXACT = {
    # id: (text, [targets that become spans; each is found by str.index])
    "NFD Hangul": (f"{NFD_HANGUL} 텍스트는 NFD로 남는다.", [NFD_HANGUL]),
    "CRLF": ("첫 줄 Meta\r\n둘째 줄 Scale AI\r\n", ["Meta", "Scale AI"]),
    "lone CR and LF": ("a\rb\nc Meta\r", ["Meta"]),
    "combining marks":
        ("Cafe\u0301 and Zoe\u0308 met Ame\u0301lie.", ["Cafe\u0301", "Ame\u0301lie"]),
    "emoji": ("😀 Meta 👩\u200d💻 Wang 🇰🇷 끝", ["Meta", "👩\u200d💻", "Wang", "🇰🇷"]),
    "NBSP and ideographic space": ("Meta\u00a0Platforms\u3000Scale", ["Platforms", "Scale"]),
    "U+2028 and U+0085 inside": ("one\u2028Meta\u0085two", ["Meta"]),
    "a BOM character in the middle": ("Meta\ufeffScale", ["Meta", "Scale"]),
    "tabs and double spaces": ("\tMeta  paid\t\tWang", ["Meta", "Wang"]),
}
ROUTES = ["api-jsonl", "api-json-list", "cli-txt", "cli-jsonl", "cli-csv"]


def _import(world, tmp_path, route: str, ext_id: str, text: str):
    rec = {"id": ext_id, "text": text}
    if route.startswith("api"):
        raw = (json.dumps([rec], ensure_ascii=False) if route == "api-json-list"
               else json.dumps(rec, ensure_ascii=False) + "\n").encode()
        status, body, _ = world.call("post", URL + f"/projects/{world.exact.id}/documents", raw=raw,
                                     who="lena")
        assert status == 201, body
        return
    if route == "cli-txt":
        path = tmp_path / f"{ext_id}.txt"
        path.write_bytes(text.encode())
    elif route == "cli-jsonl":
        path = tmp_path / "x.jsonl"
        path.write_bytes(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
    else:
        path = tmp_path / "x.csv"
        quoted = text.replace('"', '""')
        path.write_bytes(f'id,text\r\n{ext_id},"{quoted}"\r\n'.encode())
    result = world.cli("import", "Exact", str(path))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def exact_project(world):
    world.exact = world.h.project("Exact", language="ko")
    return world.exact


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", EXACT, ids=list(EXACT))
def test_text_and_offsets_come_back_exactly(world, exact_project, tmp_path, route, name):
    from annotator.storage.models import Document

    text, targets = EXACT[name]
    ext_id = f"{route}-{ROUTES.index(route)}-{list(EXACT).index(name)}"
    _import(world, tmp_path, route, ext_id, text)
    with world.h.session() as s:
        doc = s.execute(select(Document).where(Document.project_id == exact_project.id,
                                               Document.external_id == ext_id)).scalar_one()
    assert doc.text == text and doc.text.encode() == text.encode()
    assert doc.content_hash == sha256(text.encode()).hexdigest()
    status, got, resp = world.call("get", URL + f"/documents/{doc.id}")
    assert status == 200 and got["text"] == text and got["length"] == len(text)
    spans = [{"start": text.index(t), "end": text.index(t) + len(t), "label": "ORG",
              "attributes": {}} for t in targets]
    status, saved, _ = world.call("put", URL + f"/documents/{doc.id}/annotation",
                                  {"spans": spans, "version": 0})
    assert status == 200, saved
    status, back, _ = world.call("get", URL + f"/documents/{doc.id}/annotation")
    assert back["spans"] == sorted(spans, key=lambda x: (x["start"], x["end"]))
    assert [text[x["start"]:x["end"]] for x in back["spans"]] == sorted(targets, key=text.index)


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("name,data,first_text", [
    ("b.txt", BOM + "제목\r\n본문\ufeff끝".encode(), "제목\r\n본문\ufeff끝"),
    ("b.jsonl", BOM + jsonl({"id": "bom-j", "text": "\ufeff안녕"}), "\ufeff안녕"),
    ("b.csv", BOM + b"text,id\r\nhello,bom-c\r\n", "hello"),
], ids=["txt", "jsonl", "csv"])
def test_a_bom_is_removed_and_said_so_by_the_cli(world, exact_project, tmp_path, name, data,
                                                 first_text):
    from annotator.storage.models import Document

    (tmp_path / name).write_bytes(data)
    result = world.cli("import", "Exact", str(tmp_path / name))
    assert result.exit_code == 0, result.output
    assert f"byte order mark (BOM) was removed from the start of {name}" in result.output
    with world.h.session() as s:
        texts = set(s.execute(select(Document.text).where(Document.project_id == exact_project.id)
                              ).scalars())
    assert first_text in texts  # only the leading BOM went; one inside the text stays


def test_a_bom_is_removed_and_said_so_by_the_api(world, exact_project):
    raw = BOM + jsonl({"id": "bom-api", "text": "\ufeffkept"})
    status, body, _ = world.call("post", URL + f"/projects/{exact_project.id}/documents", raw=raw,
                                 who="lena")
    assert status == 201 and body["imported"] == 1, body
    assert body["notes"] == [
        "A byte order mark (BOM) was removed from the start of the request body."]
    status, body, _ = world.call("post", URL + f"/projects/{exact_project.id}/documents",
                                 raw=jsonl({"id": "no-bom", "text": "plain"}), who="lena")
    assert status == 201 and body["notes"] == []


def test_a_bom_before_a_json_body_is_ignored(world, exact_project):
    """RFC 8259 lets a parser ignore a BOM; the JSON endpoints do (nothing in the text changes)."""
    from annotator.storage.models import Document

    status, _, _ = world.call("post", URL + f"/projects/{exact_project.id}/documents", who="lena",
                              raw=jsonl({"id": "bom-body", "text": "\ufeffkept"}))
    assert status == 201
    with world.h.session() as s:
        doc = s.execute(select(Document).where(Document.external_id == "bom-body")).scalar_one()
    raw = BOM + json.dumps({"spans": [sp(1, 5)], "version": 0}).encode()
    status, body, _ = world.call("put", URL + f"/documents/{doc.id}/annotation", raw=raw,
                                 content_type="application/json")
    assert status == 200, body
    assert doc.text[1:5] == "kept"


def test_raw_utf8_json_bodies_keep_every_character(world, exact_project):
    """Not only \\u escapes: a body in raw UTF-8 (what browsers send) is read exactly."""
    text = f"{NFD_HANGUL}\r\n😀 Meta"
    raw = json.dumps([{"id": "raw-utf8", "text": text}], ensure_ascii=False).encode()
    status, body, _ = world.call("post", URL + f"/projects/{exact_project.id}/documents", raw=raw,
                                 who="lena")
    assert status == 201, body
    from annotator.storage.models import Document

    with world.h.session() as s:
        doc = s.execute(select(Document).where(Document.external_id == "raw-utf8")).scalar_one()
    start = text.index("Meta")
    raw = json.dumps({"spans": [sp(start, start + 4)], "version": 0, "status": "skipped",
                      "skip_reason": f"{NFD_HANGUL} 😀\r\n"}, ensure_ascii=False).encode()
    status, body, _ = world.call("put", URL + f"/documents/{doc.id}/annotation", raw=raw,
                                 content_type="application/json")
    assert status == 200, body
    assert body["skip_reason"] == f"{NFD_HANGUL} 😀\r\n"
    assert doc.text[body["spans"][0]["start"]:body["spans"][0]["end"]] == "Meta"


def test_the_html_import_says_a_bom_was_removed(world, exact_project):
    import io

    client = world.app.test_client()
    csrf = world.h.login(client, type("U", (), {"username": "lena"}), PASSWORD)
    resp = client.post(f"/projects/{exact_project.id}/import", content_type="multipart/form-data",
                       data={"csrf_token": csrf,
                             "files": (io.BytesIO(BOM + b"text,id\nhtml bom,bom-html\n"), "h.csv")},
                       follow_redirects=True)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "Imported 1 documents" in page
    assert "A byte order mark (BOM) was removed from the start of h.csv." in page


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_is_read_whatever_its_content_type(world, exact_project, content_type):
    """`curl -d` sends form-encoded: the raw body is still read as JSON, not parsed as a form."""
    from annotator.storage.models import Document

    ext = f"ctype-{content_type}"
    status, _, _ = world.call("post", URL + f"/projects/{exact_project.id}/documents", who="lena",
                              raw=jsonl({"id": ext, "text": "Meta paid."}),
                              content_type=content_type)
    assert status == 201
    with world.h.session() as s:
        doc = s.execute(select(Document).where(Document.external_id == ext)).scalar_one()
    raw = json.dumps({"spans": [sp(0, 4)], "version": 0}).encode()
    status, body, _ = world.call("put", URL + f"/documents/{doc.id}/annotation", raw=raw,
                                 content_type=content_type)
    assert status == 200, body
    assert body["version"] == 1 and body["spans"][0]["end"] == 4
