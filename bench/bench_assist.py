"""Replay an annotator who is offered suggestions, through the real server (issue 12).

    python bench/bench_assist.py --gold FILE.jsonl [--language ko] [--background-spans 2000]
                                 [--train-every K] [--k 2] [--explain] [--db URL] [--json FILE]

FILE is our JSONL (``id``, ``text``, ``spans``: ``start``, ``end``, ``label``, ``stance``?). The
bench imports the texts without their spans into a fresh project, stores their tokens as the
background job would (``annotator tokenize``), then goes through the documents in order as one
annotator: it asks for suggestions, accepts those that are in the gold, rejects the rest (POST
.../suggestions/rejections, as the page does), and when no suggestion is left to accept it
draws the first missing gold entity by hand and saves, which feeds the dictionary as on the
page ("label all occurrences"); spans of kind ``span`` (CLAIMs) are drawn by hand. Then it
submits, and the next document profits from everything submitted before it.

``--train-every K`` adds the third source, the model: after every K submitted documents the
lead trains a new version through the API (POST .../train; the server's background process
trains it on what was submitted so far, then stores its predictions), makes it the one that
suggests, and the replay goes on once its predictions are stored. Training time is printed
apart; the per-source lines show what each source adds.

``--background-spans N`` first stores N accepted spans in other documents of the project, so
that the suggestion requests are timed against a project of that size.

Prints, for entity spans: gold spans, drawn by hand, accepted, rejected, suggestion precision,
per source; CLAIM-like spans beside them; and the time per suggestion request (p50, p95).
``--json FILE`` writes ``gold_spans``, ``drawn_by_hand``, ``accepted``, ``rejected``,
``suggestion_precision``, ``p95_ms`` and the rest, with ``reasons``: why each entity was drawn by
hand (no source offered it; offered with another label; offered with other bounds; off the
token boundaries; suppressed as unwanted, i.e. rejected more often than accepted in the
project; hidden by an overlap); ``--explain`` prints each one.

``--k 2`` replays two annotators on every document, the second right after the first, and
counts the suggestions the second saw that only the first one's spans on that document could
explain (``leaks``: it must be 0) and the model answers withheld for that reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import Bench
from common import Client, cli, pct

ENTITY_LABELS = {"PERSON", "ORG", "MONEY"}


def read_gold(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                rec = json.loads(line)
                if "text" not in rec:
                    raise SystemExit(f"{path}:{n}: no 'text'")
                out.append(rec)
    return out


def wire(s: dict) -> dict:
    attrs = {"stance": s["stance"]} if s.get("stance") else dict(s.get("attributes") or {})
    return {"start": s["start"], "end": s["end"], "label": s["label"], "attributes": attrs}


def background(b: Bench, pid: int, n: int) -> None:
    """n accepted spans in documents of their own (one submitted annotation each), of made-up
    names that occur in no real text: they cost what a dictionary of that size costs, and
    change no suggestion."""
    if n <= 0:
        return
    per_doc = 50
    names = [f"Zq{i:05d}x" for i in range(n)]
    docs = [{"text": "bg " + " ".join(names[i:i + per_doc])} for i in range(0, n, per_doc)]
    b.lead().json("POST", f"/api/v1/projects/{pid}/documents", docs, expect=201)
    filler = Client(b.server.port, b.tokens[1])
    ids = b.doc_ids(pid, 10**6)
    for did in ids[-len(docs):]:
        text = filler.json("GET", f"/api/v1/documents/{did}")["text"]
        spans, i = [], 3
        for w in text[3:].split(" "):
            spans.append({"start": i, "end": i + len(w), "label": "ORG", "attributes": {}})
            i += len(w) + 1
        filler.json("PUT", f"/api/v1/documents/{did}/annotation",
                    {"version": 0, "spans": spans, "status": "submitted"})


def wait_jobs(lead: Client, pid: int, deadline_s: float = 1800) -> list[dict]:
    """Until the project's background jobs are all finished; the jobs, newest first."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        items = lead.json("GET", f"/api/v1/projects/{pid}/jobs")["items"]
        if not any(j["state"] in ("queued", "running") for j in items):
            return items
        time.sleep(2)
    raise SystemExit(f"the background jobs did not finish within {deadline_s} s")


def train(b: Bench, pid: int, stats: dict) -> None:
    """A new model version from what was submitted so far, suggesting once predicted."""
    lead = b.lead()
    t0 = time.perf_counter()
    job = lead.json("POST", f"/api/v1/projects/{pid}/train", {}, expect=202)
    items = wait_jobs(lead, pid)
    done = next(j for j in items if j["id"] == job["id"])
    if done["state"] != "done":
        stats["trainings"].append({"error": done["error"]})
        print(f"  training refused or failed: {done['error']}", file=sys.stderr)
        return
    number = done["result"]["version"]
    lead.json("PUT", f"/api/v1/projects/{pid}/model", {"version": number})
    wait_jobs(lead, pid)
    stats["trainings"].append({"version": number, "seconds": round(time.perf_counter() - t0, 1),
                               "overall": done["result"].get("overall")})
    print(f"  version {number}: trained and predicted in {time.perf_counter() - t0:.1f} s, "
          f"held-out {done['result'].get('overall')}", file=sys.stderr)


REASONS = ("no source offered it", "offered with another label", "offered with other bounds",
           "off the token boundaries", "suppressed as unwanted", "hidden by an overlap")


class Project:
    """What the replay knows the project accepted and rejected, (surface, label) -> count, per
    person and document: the explanations and the leak count are worked out from it."""

    def __init__(self):
        self.accepted: dict[tuple, dict] = {}  # (surface, label) -> {(person, doc): count}
        self.rejected: dict[tuple, int] = {}

    def submit(self, person: int, doc: int, text: str, spans) -> None:
        for sp in spans:
            key = (text[sp["start"]:sp["end"]], sp["label"])
            by = self.accepted.setdefault(key, {})
            by[(person, doc)] = by.get((person, doc), 0) + 1

    def support(self, key: tuple, person: int, doc: int) -> int:
        """How many spans of (surface, label) the person may be shown on doc: everyone's
        elsewhere, and their own here."""
        return sum(n for (p, d), n in self.accepted.get(key, {}).items() if d != doc or p == person)

    def unwanted(self, key: tuple) -> bool:
        return self.rejected.get(key, 0) > sum(self.accepted.get(key, {}).values())


def explain(g: dict, text: str, offered: list[dict], bounds: tuple[set, set], project: Project,
            person: int, doc: int, mine: set) -> str:
    """Why the gold entity ``g`` was drawn by hand (REASONS), from every suggestion the person
    was offered on the document and what the project had accepted and rejected."""
    start, end, label = g["start"], g["end"], g["label"]
    if any(s["start"] == start and s["end"] == end and s["label"] != label for s in offered):
        return "offered with another label"
    if any(s["label"] == label and s["start"] < end and start < s["end"] for s in offered):
        return "offered with other bounds"
    key = (text[start:end], label)
    known = project.support(key, person, doc) > 0 or key in mine
    if not known:
        return "no source offered it"
    if start not in bounds[0] or end not in bounds[1]:
        return "off the token boundaries"
    if project.unwanted(key):
        return "suppressed as unwanted"
    return "hidden by an overlap"


def annotate(a: Client, person: int, did: int, rec: dict, kinds: dict, stats: dict, times: list,
             project: Project, first: int | None = None, explain_out: list | None = None) -> None:
    """One person's pass over one document: accept what is in the gold, reject the rest, draw
    the first missing entity by hand when nothing is left to accept, submit. ``first``: the
    person who annotated the document before (``--k 2``): a suggestion whose (surface, label)
    only their spans on this document support is counted as a leak."""
    doc = a.json("GET", f"/api/v1/documents/{did}")
    text = doc["text"]
    bounds = ({t[0] for t in doc["tokens"] or ()}, {t[1] for t in doc["tokens"] or ()})
    entities = {(s["start"], s["end"], s["label"]): wire(s) for s in rec.get("spans", [])
                if kinds.get(s["label"]) == "entity"}
    others = [wire(s) for s in rec.get("spans", []) if kinds.get(s["label"]) != "entity"]
    stats["gold_spans"] += len(entities)
    stats["span_kind_gold"] += len(others)
    have: dict = {}
    rejected: set = set()
    offered: list = []
    version = 0

    def save(status=None):
        nonlocal version
        body = {"version": version, "spans": list(have.values()) + (others if status else [])}
        if status:
            body["status"] = status
        version = a.json("PUT", f"/api/v1/documents/{did}/annotation", body)["version"]

    while True:
        t0 = time.perf_counter()
        got = a.json("GET", f"/api/v1/documents/{did}/suggestions")
        times.append((time.perf_counter() - t0) * 1000)
        if got["pending"]:
            raise SystemExit(f"document {did}: tokens pending; run `annotator tokenize` first")
        if got.get("withheld"):
            stats["withheld"] += 1
        took = False
        for s in got["items"]:
            key = (s["start"], s["end"], s["label"])
            offered.append(s)
            if first is not None and s["source"] == "dictionary":
                pair = (text[s["start"]:s["end"]], s["label"])
                mine = {(text[k[0]:k[1]], k[2]) for k in have}
                if project.support(pair, person, did) == 0 and pair not in mine:
                    stats["leaks"] += 1  # only the first person's spans on this document say so
            src = stats["by_source"].setdefault(s["source"], {"accepted": 0, "rejected": 0})
            if key in entities and key not in have:
                have[key] = entities[key]
                stats["accepted"] += 1
                src["accepted"] += 1
                took = True
            elif key not in rejected and key not in have:
                rejected.add(key)
                stats["rejected"] += 1
                src["rejected"] += 1
                pair = (text[s["start"]:s["end"]], s["label"])
                project.rejected[pair] = project.rejected.get(pair, 0) + 1
                stats["rejections"].append({"document": rec.get("id", did), "start": s["start"], "end": s["end"],
                                            "label": s["label"], "text": pair[0], "source": s["source"]})
                a.json("POST", f"/api/v1/documents/{did}/suggestions/rejections",
                       {"start": s["start"], "end": s["end"], "label": s["label"],
                        "source": s["source"], "version": s["version"]}, expect=201)
        if took:
            save()
            continue
        missing = sorted(set(entities) - set(have))
        if not missing:
            break
        g = entities[missing[0]]
        mine = {(text[k[0]:k[1]], k[2]) for k in have}
        why = explain(g, text, offered, bounds, project, person, did, mine)
        stats["reasons"][why] = stats["reasons"].get(why, 0) + 1
        if explain_out is not None:
            explain_out.append({"document": rec.get("id", did), "person": person, "start": g["start"],
                                "end": g["end"], "label": g["label"], "text": text[g["start"]:g["end"]],
                                "reason": why})
        have[missing[0]] = g
        stats["drawn_by_hand"] += 1
        save()
    stats["span_kind_drawn"] += len(others)
    save("submitted")
    project.submit(person, did, text, list(have.values()))


def replay(b: Bench, pid: int, gold: list[dict], ids: list[int], train_every: int = 0, k: int = 1,
           explain_out: list | None = None) -> dict:
    people = [Client(b.server.port, b.tokens[i]) for i in range(k)]
    kinds = {lab["name"]: lab["kind"] for lab in people[0].json("GET", f"/api/v1/projects/{pid}")["labels"]}
    stats = {"gold_spans": 0, "drawn_by_hand": 0, "accepted": 0, "rejected": 0,
             "span_kind_gold": 0, "span_kind_drawn": 0, "by_source": {}, "trainings": [],
             "reasons": dict.fromkeys(REASONS, 0), "leaks": 0, "withheld": 0, "k": k,
             "rejections": []}
    times: list = []
    project = Project()
    for n, (rec, did) in enumerate(zip(gold, ids)):
        if train_every and n and n % train_every == 0:
            train(b, pid, stats)
        for person, a in enumerate(people):  # with k = 2 the second follows the first on each document
            annotate(a, person, did, rec, kinds, stats, times, project,
                     first=0 if person else None, explain_out=explain_out)
    shown = stats["accepted"] + stats["rejected"]
    stats["suggestion_precision"] = round(stats["accepted"] / shown, 3) if shown else None
    stats["drawn_share"] = round(stats["drawn_by_hand"] / stats["gold_spans"], 3) if stats["gold_spans"] else None
    stats["requests"] = len(times)
    stats["p50_ms"] = round(pct(times, 50), 1)
    stats["p95_ms"] = round(pct(times, 95), 1)
    for src in stats["by_source"].values():
        n = src["accepted"] + src["rejected"]
        src["precision"] = round(src["accepted"] / n, 3) if n else None
    return stats


def run(gold_path: str, language: str, n_background: int, db: str | None,
        train_every: int = 0, k: int = 1, explain_out: list | None = None) -> dict:
    gold = read_gold(gold_path)
    tmp = Path(tempfile.mkdtemp(prefix="bench-assist-"))
    b = Bench(db, 1, tmp, os.environ.get("BENCH_SERVER_LOG"))
    if b.db.startswith("postgresql"):
        from annotator.storage.db import reset_postgres

        reset_postgres(b.db)
    b.setup()
    b.start()
    try:
        pid = b.lead().json("POST", "/api/v1/projects", {"name": "assist", "language": language,
                                                          "k": k}, expect=201)["id"]
        b.lead().json("POST", f"/api/v1/projects/{pid}/members", {"usernames": ["a0", "a1"]})
        # the replay measures what suggestions do: no control documents
        b.lead().json("PATCH", f"/api/v1/projects/{pid}/settings", {"control_share": 0})
        b.lead().json("POST", f"/api/v1/projects/{pid}/documents",
                      [{"text": r["text"], "id": str(r.get("id", i))} for i, r in enumerate(gold)],
                      expect=201)
        ids = b.doc_ids(pid, len(gold))
        background(b, pid, n_background)
        cli(b.db, "tokenize", env=b.env)
        stats = replay(b, pid, gold, ids, train_every, k, explain_out)
        stats["background_spans"] = n_background
        stats["train_every"] = train_every
        return stats
    finally:
        b.server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", required=True, help="our JSONL: id, text, spans")
    ap.add_argument("--language", default="ko")
    ap.add_argument("--background-spans", type=int, default=0)
    ap.add_argument("--train-every", type=int, default=0,
                    help="train a model version after every K submitted documents (0: no model)")
    ap.add_argument("--k", type=int, default=1, choices=(1, 2),
                    help="2: a second annotator follows the first on every document, and the replay "
                         "counts the suggestions only the first one's spans there could explain (leaks)")
    ap.add_argument("--explain", action="store_true", help="print why each entity was drawn by hand")
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    drawn: list = []
    s = run(args.gold, args.language, args.background_spans, args.db, args.train_every, args.k, drawn)
    if args.explain:
        for d in drawn:
            print(f"  {d['document']} [{d['start']}, {d['end']}) {d['label']:7} {d['text']!r}: {d['reason']}")
        for r in s["rejections"]:
            print(f"  rejected: {r['document']} [{r['start']}, {r['end']}) {r['label']:7} {r['text']!r} "
                  f"({r['source']})")
    print(f"entity spans in the gold      {s['gold_spans']}")
    print(f"drawn by hand                 {s['drawn_by_hand']} ({s['drawn_share']:.0%})")
    print(f"accepted suggestions          {s['accepted']}")
    print(f"rejected suggestions          {s['rejected']}")
    print(f"suggestion precision          {s['suggestion_precision']}")
    for name, src in sorted(s["by_source"].items()):
        print(f"  {name:12} accepted {src['accepted']:4}  rejected {src['rejected']:4}  "
              f"precision {src['precision']}")
    print("why each was drawn by hand:")
    for why in REASONS:
        print(f"  {why:28} {s['reasons'][why]}")
    print(f"span-kind spans (CLAIM)       {s['span_kind_gold']}, all drawn by hand")
    if s["k"] > 1:
        print(f"k = {s['k']}: suggestions only the first annotator's spans on the document explain: "
              f"{s['leaks']} (model answers withheld: {s['withheld']})")
    for t in s["trainings"]:
        print(f"model version {t.get('version', '-')}: " + (f"{t['seconds']} s to train and predict"
              if "seconds" in t else f"failed: {t['error']}"))
    print(f"suggestion requests           {s['requests']}: p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms "
          f"({s['background_spans']} other accepted spans in the project)")
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=2))


if __name__ == "__main__":
    main()
