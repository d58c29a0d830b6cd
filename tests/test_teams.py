"""Teams (issue 5): routing with k and blindness, stale reservations, honeypots, the
agreement report against the reference libraries, adjudication into gold, the CLI."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import krippendorff
import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select, update
from statsmodels.stats.inter_rater import fleiss_kappa

from annotator.cli import main
from annotator.services.routing import honeypot_slot
from annotator.storage.models import Annotation, AnnotationVersion, Document, GoldDecision, Reservation, User, utcnow

URL = "/api/v1"
ENTITY_RE = re.compile(
    r"알렉산드르 왕|알렉산더 왕|Alexandr Wang|마크 저커버그|저커버그"  # PERSON
    r"|Scale AI|스케일 AI|메타|Meta|오픈AI|구글"  # ORG
    r"|\$[\d.]+B|\d+조\s?원|\d+억\s?달러")  # MONEY
PERSONS = {"알렉산드르 왕", "알렉산더 왕", "Alexandr Wang", "마크 저커버그", "저커버그"}
TOKEN_RE = re.compile(r"\w+|[^\w\s]")


# --- annotators as deterministic functions of the text --------------------------------------

def base_spans(text: str) -> list[dict]:
    """What a careful annotator marks: the entity patterns, and the first two lines as claims."""
    out = []
    for m in ENTITY_RE.finditer(text):
        word = m.group()
        label = "PERSON" if word in PERSONS else "MONEY" if word[0].isdigit() or word[0] == "$" else "ORG"
        out.append({"start": m.start(), "end": m.end(), "label": label, "attributes": {}})
    lines = [m for m in re.finditer(r"\S(?:.*\S)?", text)][:2]
    for m in lines:
        out.append({"start": m.start(), "end": m.end(), "label": "CLAIM", "attributes": {"stance": "neutral"}})
    return out


def spans_by(name: str, text: str) -> list[dict]:
    spans = base_spans(text)
    if name == "alice":
        return spans
    out = []
    for i, sp in enumerate(spans):
        sp = dict(sp, attributes=dict(sp["attributes"]))
        if name == "bob":
            if sp["label"] != "CLAIM" and i % 4 == 3:
                continue  # misses some entities
            if sp["label"] == "CLAIM" and i == len(spans) - 1:
                sp["attributes"]["stance"] = "favor"
        if name == "carol":
            if sp["label"] == "ORG" and i % 3 == 0:
                sp["label"] = "PERSON"  # confuses labels
            if sp["label"] != "CLAIM" and i % 5 == 1 and sp["end"] - sp["start"] > 1 \
                    and not text[sp["end"] - 2].isspace():
                sp["end"] -= 1  # clips an end
            if sp["label"] == "CLAIM" and i % 2:
                continue
        out.append(sp)
    return out


def exact_f1(reference: list[dict], predicted: list[dict]) -> tuple[int, int, int]:
    key = lambda s: (s["start"], s["end"], s["label"])  # noqa: E731
    ref, pred = {key(s) for s in reference}, {key(s) for s in predicted}
    return len(ref & pred), len(pred - ref), len(ref - pred)


def token_labels(text: str, spans: list[dict], labels: list[str]) -> list[int]:
    """Reference token labelling: each token takes the label of the overlapping span that
    comes first by (start, longest, label name); 0 = outside."""
    code = {lab: k + 1 for k, lab in enumerate(sorted(labels))}
    out = []
    for m in TOKEN_RE.finditer(text):
        hits = [s for s in spans if s["label"] in code and s["start"] < m.end() and m.start() < s["end"]]
        best = min(hits, key=lambda s: (s["start"], s["start"] - s["end"], s["label"]), default=None)
        out.append(code[best["label"]] if best else 0)
    return out


# --- the world --------------------------------------------------------------------------------

@pytest.fixture
def team(h):
    project = h.demo()
    h.user("carol")
    with h.session() as s:
        users = {u.username: u for u in s.execute(select(User)).scalars()}
        docs = list(s.execute(select(Document).where(Document.project_id == project.id)
                              .order_by(Document.id)).scalars())
    api = {name: h.api(users[name]) for name in ("lead", "alice", "bob", "carol")}
    return {"project": project, "users": users, "docs": docs, "api": api}


def take(api, pid):
    status, doc = api.get(f"{URL}/projects/{pid}/next")
    assert status in (200, 204), doc
    return doc if status == 200 else None


def submit(api, name, doc):
    status, state = api.get(f"{URL}/documents/{doc['id']}/annotation")
    status, body = api.put(f"{URL}/documents/{doc['id']}/annotation", {
        "spans": spans_by(name, doc["text"]), "version": state["version"], "status": "submitted"})
    assert status == 200, body


def settings(team, **values):
    client = team["api"]["lead"]
    status, body = client._call("patch", f"{URL}/projects/{team['project'].id}/settings", values)
    assert status == 200, body
    return body


def submitted_by_doc(h, project_id):
    with h.session() as s:
        rows = s.execute(select(Annotation.document_id, User.username)
                         .join(User, User.id == Annotation.user_id)
                         .join(Document, Document.id == Annotation.document_id)
                         .where(Document.project_id == project_id, Annotation.status == "submitted",
                                User.role != "system")).all()
    out = {}
    for doc_id, name in rows:
        out.setdefault(doc_id, set()).add(name)
    return out


# --- the whole flow -----------------------------------------------------------------------------

def test_three_annotators_walk_the_whole_flow(h, team):
    pid = team["project"].id
    api, docs = team["api"], team["docs"]
    ordinary, honeypot = docs[:4], docs[4]
    assert settings(team, k=2)["k"] == 2

    # -- routing: a live reservation holds a place; a stale one is released ------------------
    d = take(api["alice"], pid)
    assert d["id"] == ordinary[0].id
    submit(api["alice"], "alice", d)
    held = take(api["carol"], pid)  # closest to completion: doc 0, then carol walks away
    assert held["id"] == ordinary[0].id
    d = take(api["bob"], pid)
    assert d["id"] == ordinary[1].id  # doc 0 is full: 1 submitted + carol's live reservation
    submit(api["bob"], "bob", d)
    with h.session() as s:
        s.execute(update(Reservation).where(Reservation.document_id == held["id"])
                  .values(touched_at=utcnow() - timedelta(minutes=31)))
        s.commit()
    d = take(api["bob"], pid)
    assert d["id"] == ordinary[0].id  # released after 30 minutes untouched
    submit(api["bob"], "bob", d)
    d = take(api["carol"], pid)
    assert d["id"] != ordinary[0].id  # carol's stale reservation went to bob: she moves on
    submit(api["carol"], "carol", d)

    # -- honeypot: a lead marks the last article as a gold check with a reference -------------
    reference = base_spans(honeypot.text)
    status, body = api["lead"].put(f"{URL}/documents/{honeypot.id}/honeypot",
                                   {"spans": reference, "version": 0})
    assert status == 200 and body["honeypot"] is True, body
    assert api["alice"].put(f"{URL}/documents/{honeypot.id}/honeypot", {})[0] == 403
    settings(team, honeypot_rate=0.5, honeypot_threshold=0.8)

    served = {name: [] for name in ("alice", "bob", "carol")}
    active = list(served)
    while active:
        for name in list(active):
            d = take(api[name], pid)
            if d is None:
                active.remove(name)
                continue
            assert d["id"] not in served[name], f"{name} got document {d['id']} twice"
            assert set(d) == {"id", "project_id", "external_id", "meta", "content_hash", "length",
                              "text", "tokens"}  # a honeypot looks like any document
            served[name].append(d["id"])
            submit(api[name], name, d)
    done = submitted_by_doc(h, pid)
    assert {doc.id: len(done.get(doc.id, ())) for doc in ordinary} == {doc.id: 2 for doc in ordinary}
    assert done[honeypot.id] == {"alice", "bob", "carol"}  # everyone is measured, k does not apply

    # -- blindness: annotators see only their own until the lead turns it off -------------------
    bobs_doc = ordinary[0].id
    status, body = api["carol"].get(f"{URL}/documents/{bobs_doc}/annotation?user=bob")
    assert status == 403 and body["ok"] is False
    assert api["carol"].get(f"{URL}/documents/{bobs_doc}/annotations")[0] == 403
    assert settings(team, blind=False)["blind"] is False
    status, body = api["carol"].get(f"{URL}/documents/{bobs_doc}/annotation?user=bob")
    assert status == 200 and body["spans"] == sorted(spans_by("bob", ordinary[0].text),
                                                     key=lambda s: (s["start"], s["end"], s["label"]))
    status, body = api["carol"].get(f"{URL}/documents/{bobs_doc}/annotations")
    assert status == 200 and {i["user"] for i in body["items"]} == {"alice", "bob"}
    assert api["carol"].get(f"{URL}/documents/{bobs_doc}/annotation?user=gold")[0] == 403
    settings(team, blind=True)

    # -- honeypot F1 per annotator, flagged below the threshold ---------------------------------
    status, scores = api["lead"].get(f"{URL}/projects/{pid}/honeypots/scores")
    assert status == 200 and scores["threshold"] == 0.8
    for name in ("alice", "bob", "carol"):
        tp, fp, fn = exact_f1(reference, spans_by(name, honeypot.text))
        expected = 2 * tp / (2 * tp + fp + fn)
        got = scores["annotators"][name]
        assert got["documents"] == 1 and got["f1"] == pytest.approx(expected)
        assert got["flagged"] is (expected < 0.8)
    assert scores["annotators"]["alice"]["f1"] == 1.0 and scores["annotators"]["carol"]["flagged"]
    assert api["alice"].get(f"{URL}/projects/{pid}/honeypots/scores")[0] == 403
    settings(team, honeypot_feedback=True)
    status, mine = api["alice"].get(f"{URL}/projects/{pid}/honeypots/scores")
    assert status == 200 and list(mine["annotators"]) == ["alice"]

    # -- agreement report equals the reference libraries ------------------------------------------
    with h.session() as s:  # give the timing figures something to measure
        for ann in s.execute(select(Annotation).join(User, User.id == Annotation.user_id)
                             .where(User.username == "alice")).scalars():
            ann.created_at = ann.submitted_at - timedelta(seconds=60 * ann.document_id)
        s.commit()
    status, report = api["lead"].get(f"{URL}/projects/{pid}/agreement")
    assert status == 200, report
    assert api["alice"].get(f"{URL}/projects/{pid}/agreement")[0] == 403
    assert report["annotators"] == ["alice", "bob", "carol"]
    assert {e["id"] for e in report["documents"]} == {d.id for d in ordinary}  # no honeypot
    assert report["coverage"]["with_2_or_more"] == 4
    layers = {"entity": ["MONEY", "ORG", "PERSON"], "claim": ["CLAIM"]}
    assert report["project"]["layers"] == layers
    spans = {(d.id, name): spans_by(name, d.text) for d in ordinary for name in done[d.id]}
    for layer, labels in layers.items():
        tok = report["layers"][layer]["token"]
        lab = {(d.id, n): token_labels(d.text, spans[d.id, n], labels) for d in ordinary for n in done[d.id]}
        for pair, entry in tok["cohen_kappa"]["pairs"].items():
            a, b = pair.split("|")
            common = [d for d in ordinary if {a, b} <= done[d.id]]
            if not common:
                assert entry["kappa"] is None
                continue
            xa = [v for d in common for v in lab[d.id, a]]
            xb = [v for d in common for v in lab[d.id, b]]
            assert entry["kappa"] == pytest.approx(cohen_kappa_score(xa, xb), abs=1e-9), (layer, pair)
        n_cat = len(labels) + 1
        table = np.zeros((0, n_cat))
        for d in ordinary:
            per = np.array([lab[d.id, n] for n in sorted(done[d.id])])
            table = np.vstack([table, np.stack([(per == c).sum(0) for c in range(n_cat)], 1)])
        assert tok["fleiss_kappa"]["2"]["kappa"] == pytest.approx(fleiss_kappa(table), abs=1e-9)
        tokens = [(d, t) for d in ordinary for t in range(len(TOKEN_RE.findall(d.text)))]
        rel = np.array([[lab[d.id, n][t] if n in done[d.id] else np.nan for d, t in tokens]
                        for n in ("alice", "bob", "carol")])
        expected = krippendorff.alpha(reliability_data=rel, level_of_measurement="nominal")
        assert tok["krippendorff_alpha"] == pytest.approx(expected, abs=1e-9)
    # span F1 of a pair, exact match, against a plain set computation
    entity_pair = report["layers"]["entity"]["span_f1"]["exact"]["pairs"]["alice|bob"]
    tp = fp = fn = 0
    for d in ordinary:
        if {"alice", "bob"} <= done[d.id]:
            ents = {n: [s for s in spans[d.id, n] if s["label"] != "CLAIM"] for n in ("alice", "bob")}
            x, y, z = exact_f1(ents["alice"], ents["bob"])
            tp, fp, fn = tp + x, fp + y, fn + z
    assert (entity_pair["tp"], entity_pair["fp"], entity_pair["fn"]) == (tp, fp, fn)
    # per-annotator figures
    figures = report["per_annotator"]
    for name in ("alice", "bob", "carol"):
        mine = [d for d in ordinary if name in done[d.id]]
        assert figures[name]["documents_done"] == len(mine)
        assert figures[name]["spans_per_document"] == pytest.approx(
            sum(len(spans[d.id, name]) for d in mine) / len(mine))
        assert figures[name]["honeypot"]["f1"] == scores["annotators"][name]["f1"]
    alice_docs = sorted(d.id for d in ordinary if "alice" in done[d.id])
    assert figures["alice"]["median_seconds"] == pytest.approx(60 * float(np.median(alice_docs)))
    assert report["label_summary"]["entity"]["exact"]["ORG"]["tp"] > 0
    # the most disagreeing document comes first
    dis = [e["disagreement"] for e in report["documents"]]
    assert dis == sorted(dis, reverse=True)

    # -- drill-down of the most disagreeing document -------------------------------------------
    worst = report["documents"][0]["id"]
    status, diff = api["lead"].get(f"{URL}/documents/{worst}/diff")
    assert status == 200 and diff["disagreements"] > 0
    assert set(diff["spans_by_annotator"]) == done[worst]
    assert all(sp["agreed"] == (not sp["missing"]) for sp in diff["spans"] if sp["label"] != "CLAIM")

    # -- adjudication: unanimous spans pre-accepted, the lead settles conflicts ------------------
    target = ordinary[0]  # alice and bob
    status, rv = api["lead"].get(f"{URL}/documents/{target.id}/review")
    assert status == 200 and rv["annotators"] == ["alice", "bob"] and rv["gold"]["version"] == 0
    assert rv["conflicts"] > 0
    unanimous = [c for c in rv["candidates"] if c["unanimous"]]
    assert rv["proposed"] == [{k: c[k] for k in ("start", "end", "label", "attributes")} for c in unanimous]
    # the lead takes alice's reading everywhere and adds one span nobody had
    gold = [{k: c[k] for k in ("start", "end", "label", "attributes")} for c in rv["candidates"]
            if "alice" in c["annotators"]]
    last = max(s["end"] for s in gold if s["label"] != "CLAIM")
    m = re.compile(r"\w+").search(target.text, last + 1)
    added = {"start": m.start(), "end": m.end(), "label": "ORG", "attributes": {}}
    status, body = api["lead"].put(f"{URL}/documents/{target.id}/gold", {"spans": gold + [added], "version": 0})
    assert status == 200, body
    assert body["version"] == 1 and body["status"] == "submitted"
    by_key = {(d["start"], d["end"], d["label"], json.dumps(d["attributes"])): d for d in body["decisions"]}
    missed_by_bob = [s for s in gold if s not in spans_by("bob", target.text)]
    assert missed_by_bob
    for s in missed_by_bob:
        dec = by_key[(s["start"], s["end"], s["label"], json.dumps(s["attributes"]))]
        assert dec["decision"] == "accepted" and dec["overruled"] == ["bob"]
    dec = by_key[(added["start"], added["end"], "ORG", "{}")]
    assert dec["decision"] == "added" and dec["overruled"] == ["alice", "bob"]
    rejected = [d for d in body["decisions"] if d["decision"] == "rejected"]
    assert rejected and all(d["overruled"] == ["bob"] for d in rejected)
    # stale gold version is refused, bad spans are refused with the same validation
    assert api["lead"].put(f"{URL}/documents/{target.id}/gold", {"spans": gold, "version": 0})[0] == 409
    status, err = api["lead"].put(f"{URL}/documents/{target.id}/gold",
                                  {"spans": [{"start": 0, "end": 10**6, "label": "ORG"}], "version": 1})
    assert status == 422 and err["details"][0]["field"] == "end"
    assert api["bob"].put(f"{URL}/documents/{target.id}/gold", {"spans": [], "version": 1})[0] == 403

    # the gold annotation is stored: an ordinary submitted annotation of the user 'gold'
    status, stored = api["lead"].get(f"{URL}/documents/{target.id}/annotation?user=gold")
    assert status == 200 and stored["status"] == "submitted" and stored["version"] == 1
    key = lambda s: (s["start"], s["end"], s["label"])  # noqa: E731
    assert stored["spans"] == sorted(gold + [added], key=key)
    with h.session() as s:
        (ver,) = s.execute(select(AnnotationVersion).join(Annotation).join(User, User.id == Annotation.user_id)
                           .where(User.username == "gold", Annotation.document_id == target.id)).scalars()
        assert ver.saved_by == team["users"]["lead"].id
        assert s.execute(select(GoldDecision).where(GoldDecision.document_id == target.id)).first()
    # the exporter reads it as --source gold: the adjudicated document and the honeypot's
    # reference (also gold), with exactly gold's spans
    resp = api["lead"].client.get(f"{URL}/projects/{pid}/export?format=jsonl&source=gold",
                                  headers=api["lead"].headers)
    assert resp.status_code == 200, resp.data
    records = {r["id"]: r for r in map(json.loads, resp.get_data(as_text=True).splitlines())}
    assert set(records) == {target.external_id, honeypot.external_id}
    assert sorted(key(s) for s in records[target.external_id]["spans"]) == [key(s) for s in stored["spans"]]
    assert len(records[honeypot.external_id]["spans"]) == len(reference)
    # annotator accuracy against gold shows in the report
    status, report = api["lead"].get(f"{URL}/projects/{pid}/agreement")
    g = report["per_annotator"]
    assert g["alice"]["gold"]["documents"] == 1 and g["bob"]["gold"]["documents"] == 1
    assert g["alice"]["gold"]["f1"] > g["bob"]["gold"]["f1"]
    assert g["bob"]["gold"]["overruled_spans"] > g["alice"]["gold"]["overruled_spans"] >= 1
    assert "gold" not in report["annotators"] and "gold" not in g

    # the review page now proposes the stored gold
    status, rv = api["lead"].get(f"{URL}/documents/{target.id}/review")
    assert rv["proposed"] == stored["spans"] and rv["gold"]["version"] == 1
    assert {d["decided_by"] for d in rv["decisions"]} == {"lead"}


# --- routing details ----------------------------------------------------------------------------

def test_stale_reservation_is_released_and_k_is_honoured(h):
    alice, bob = h.user("alice"), h.user("bob")
    project = h.project("Solo", k=1)
    (doc,) = h.docs(project, [{"id": "only", "text": "Meta bought Scale AI."}])
    a, b = h.api(alice), h.api(bob)
    assert take(a, project.id)["id"] == doc.id
    assert take(b, project.id) is None  # k=1 and alice holds it
    assert take(a, project.id)["id"] == doc.id  # she gets her own unfinished work back
    with h.session() as s:
        s.execute(update(Reservation).values(touched_at=utcnow() - timedelta(minutes=29)))
        s.commit()
    assert take(b, project.id) is None  # 29 minutes: still held
    with h.session() as s:
        s.execute(update(Reservation).values(touched_at=utcnow() - timedelta(minutes=30, seconds=1)))
        s.commit()
    assert take(b, project.id)["id"] == doc.id
    assert take(a, project.id) is None  # released: not hers any more, and the place is taken
    submit(b, "alice", take(b, project.id))
    assert take(b, project.id) is None


def test_reservation_minutes_is_a_setting(h):
    lead, alice, bob = h.user("lena", "lead"), h.user("alice"), h.user("bob")
    project = h.project("Solo", k=1)
    (doc,) = h.docs(project, [{"id": "only", "text": "Meta bought Scale AI."}])
    status, body = h.api(lead)._call("patch", f"{URL}/projects/{project.id}/settings", {"reservation_minutes": 5})
    assert status == 200 and body["reservation_minutes"] == 5
    take(h.api(alice), project.id)
    with h.session() as s:
        s.execute(update(Reservation).values(touched_at=utcnow() - timedelta(minutes=6)))
        s.commit()
    assert take(h.api(bob), project.id)["id"] == doc.id


def test_annotator_sees_no_in_progress_work_of_others_even_when_not_blind(h):
    lead, alice, bob = h.user("lena", "lead"), h.user("alice"), h.user("bob")
    project = h.project("Open", k=2)
    (doc,) = h.docs(project, [{"id": "d", "text": "Meta bought Scale AI."}])
    h.api(lead)._call("patch", f"{URL}/projects/{project.id}/settings", {"blind": False})
    a = h.api(alice)
    a.put(f"{URL}/documents/{doc.id}/annotation",
          {"spans": [{"start": 0, "end": 4, "label": "ORG"}], "version": 0})
    assert h.api(bob).get(f"{URL}/documents/{doc.id}/annotation?user=alice")[0] == 403
    a.put(f"{URL}/documents/{doc.id}/annotation", {"spans": [], "version": 1, "status": "submitted"})
    status, body = h.api(bob).get(f"{URL}/documents/{doc.id}/annotation?user=alice")
    assert status == 200 and body["status"] == "submitted"


@pytest.mark.parametrize("body, field", [
    ({"k": 0}, "k"), ({"k": True}, "k"), ({"blind": "no"}, "blind"), ({"honeypot_rate": 1.5}, "honeypot_rate"),
    ({"honeypot_threshold": -0.1}, "honeypot_threshold"), ({"reservation_minutes": 0}, "reservation_minutes"),
    ({"colour": "red"}, "colour"), ({}, "body"), ({"suggestions": "maybe"}, "suggestions"),
    ({"suggestions": True}, "suggestions"), ({"control_share": 1.01}, "control_share"),
    ({"control_share": -0.5, "k": 3}, "control_share"), ({"order": "random"}, "order"),
])
def test_bad_settings_are_refused_whole(h, body, field):
    lead = h.api(h.user("lena", "lead"))
    project = h.project("P")
    before = h.counts()
    status, err = lead._call("patch", f"{URL}/projects/{project.id}/settings", body)
    assert status == 422 and err["ok"] is False and err["details"][0]["field"] == field
    assert h.counts() == before
    status, current = lead.get(f"{URL}/projects/{project.id}/settings")
    assert current == {"k": 2, "blind": True, "reservation_minutes": 30, "honeypot_rate": 0.0,
                       "honeypot_threshold": 0.7, "honeypot_feedback": False,
                       "suggestions": "on", "control_share": 0.1, "order": "document"}


def test_annotators_cannot_change_settings(h):
    alice = h.user("alice")
    project = h.project("P")
    status, err = h.api(alice)._call("patch", f"{URL}/projects/{project.id}/settings", {"blind": False})
    assert status == 403 and err["status"] == 403


def test_honeypot_slots_keep_the_rate():
    for rate in (0.5, 0.2, 0.1):
        every = round(1 / rate)
        slots = [p for p in range(every * 50) if honeypot_slot(p, rate, "7:3")]
        assert len(slots) == 50
        assert all(p // every == k for k, p in enumerate(slots))  # exactly one per block
    assert not any(honeypot_slot(p, 0.0, "x") for p in range(100))
    # different annotators get different places
    assert {tuple(p for p in range(20) if honeypot_slot(p, 0.2, f"1:{u}")) for u in range(10)}.__len__() > 1


def test_honeypots_are_mixed_in_at_the_rate_and_never_fill_k(h):
    lead, alice = h.user("lena", "lead"), h.user("alice")
    project = h.project("HP", k=1)
    docs = h.docs(project, [{"id": f"d{i}", "text": f"Meta paid {i} dollars."} for i in range(12)])
    hp = docs[:2]
    L = h.api(lead)
    for d in hp:
        assert L.put(f"{URL}/documents/{d.id}/honeypot", {"spans": [{"start": 0, "end": 4, "label": "ORG"}],
                                                          "version": 0})[0] == 200
    L._call("patch", f"{URL}/projects/{project.id}/settings", {"honeypot_rate": 0.2})
    a = h.api(alice)
    order = []
    while (d := take(a, project.id)) is not None:
        order.append(d["id"])
        submit(a, "alice", d)
    assert len(order) == 12 and len(set(order)) == 12
    hp_ids = {d.id for d in hp}
    positions = [i for i, did in enumerate(order) if did in hp_ids]
    expected = [p for p in range(10) if honeypot_slot(p, 0.2, f"{project.id}:{alice.id}")]
    assert positions == expected  # one in each block of five, where the hash put it
    status, listing = L.get(f"{URL}/projects/{project.id}/honeypots")
    assert [i["document_id"] for i in listing["items"]] == [d.id for d in hp]
    assert listing["items"][0]["reference_spans"] == 1
    # unmarking turns it back into an ordinary document; its gold stays
    status, body = L._call("delete", f"{URL}/documents/{hp[0].id}/honeypot")
    assert status == 200 and body["honeypot"] is False
    assert L.get(f"{URL}/documents/{hp[0].id}/annotation?user=gold")[1]["status"] == "submitted"


def test_honeypot_needs_a_reference(h):
    lead = h.api(h.user("lena", "lead"))
    project = h.project("HP")
    (doc,) = h.docs(project, [{"id": "d", "text": "Meta bought Scale AI."}])
    before = h.counts()
    status, err = lead.put(f"{URL}/documents/{doc.id}/honeypot", {})
    assert status == 422 and "reference" in err["error"]
    status, err = lead.put(f"{URL}/documents/{doc.id}/honeypot",
                                  {"spans": [{"start": 0, "end": 99, "label": "ORG"}], "version": 0})
    assert status == 422 and err["details"][0]["field"] == "end"
    assert h.counts() == before


# --- CLI ------------------------------------------------------------------------------------------

@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["--db", db_url, *args], catch_exceptions=False)


def _annotate(h, project, docs, who_spans):
    """who_spans: {username: [spans per document]} saved as submitted annotations."""
    for name, per_doc in who_spans.items():
        api = h.api(h.user(name))
        for doc, spans in zip(docs, per_doc, strict=True):
            if spans is not None:
                status, body = api.put(f"{URL}/documents/{doc.id}/annotation",
                                       {"spans": spans, "version": 0, "status": "submitted"})
                assert status == 200, body


def test_cli_agreement_and_auto_adjudicate(h, run):
    h.user("lena", "lead")
    project = h.project("Cli", k=2)
    docs = h.docs(project, [{"id": f"d{i}", "text": "Meta bought Scale AI for $14.3B."} for i in range(3)])
    meta = {"start": 0, "end": 4, "label": "ORG", "attributes": {}}
    scale = {"start": 12, "end": 20, "label": "ORG", "attributes": {}}
    _annotate(h, project, docs, {"alice": [[meta, scale], [meta], [meta]],
                                 "bob": [[meta, scale], [meta, scale], None]})
    r = run("agreement", "Cli", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["annotators"] == ["alice", "bob"] and data["coverage"]["with_2_or_more"] == 2
    assert data["per_annotator"]["alice"]["documents_done"] == 3
    text = run("agreement", "Cli").output
    assert "entity" in text and "alice|bob" in text and "d1" in text
    r = run("adjudicate", "Cli", "--auto", "--by", "lena")
    assert r.exit_code == 0, r.output
    assert "1 unanimous document accepted into gold" in r.output
    assert "1 not unanimous" in r.output and "1 incomplete" in r.output
    status, gold = h.api(h.user("lead2", "lead")).get(f"{URL}/documents/{docs[0].id}/annotation?user=gold")
    assert gold["status"] == "submitted" and [s["start"] for s in gold["spans"]] == [0, 12]
    assert "0 unanimous documents accepted" in run("adjudicate", "Cli", "--auto", "--by", "lena").output
    r = run("adjudicate", "Cli")
    assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1
    r = run("agreement", "Nope")
    assert r.exit_code == 1 and "No project" in r.output


def test_cli_team_settings_and_honeypots(h, run):
    project = h.project("Cli")
    h.docs(project, [{"id": "d0", "text": "Meta bought Scale AI.",
                             "spans": [{"start": 0, "end": 4, "label": "ORG"}]}])
    r = run("projects", "settings", "Cli", "--k", "3", "--no-blind", "--honeypot-rate", "0.1")
    assert r.exit_code == 0, r.output
    assert "k=3" in r.output and "blind=False" in r.output and "honeypot_rate=0.1" in r.output
    r = run("projects", "settings", "Cli", "--suggestions", "off", "--control-share", "0.25")
    assert r.exit_code == 0, r.output
    assert "suggestions=off" in r.output and "control_share=0.25" in r.output
    r = run("projects", "settings", "Cli", "--control-share", "2")
    assert r.exit_code != 0 and "control_share" in r.output
    r = run("honeypots", "add", "Cli", "d0", "--reference", "import")
    assert r.exit_code == 0, r.output
    assert "d0" in run("honeypots", "list", "Cli").output
    r = run("honeypots", "remove", "Cli", "d0")
    assert r.exit_code == 0 and "d0" not in run("honeypots", "list", "Cli").output
    r = run("honeypots", "add", "Cli", "nope")
    assert r.exit_code == 1 and "nope" in r.output
