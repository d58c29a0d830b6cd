"""Benchmark: the agreement report through the real DB -> report path.

Generates N documents (windows of the demo articles) x 3 annotators with entity and claim
spans that disagree now and then, inserts them in bulk into a fresh database, then times
``annotator.services.report.project_report`` (queries + agreement.py + per-annotator figures) and
prints wall time and peak memory.

    python bench/bench_agreement_report.py [--docs 10000] [--annotators 3] [--db URL]

Without --db a temporary SQLite file is used. A PostgreSQL URL must point at an empty,
disposable database (its schema is created here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from annotator.core.agreement import agreement_report
from annotator.services.demo import corpus_files
from annotator.services.projects import create_project, project_labels
from annotator.services.report import agreement_docs, annotator_figures, project_layers, project_report
from annotator.storage.db import Database, migrate
from annotator.storage.models import Annotation, Document, Project, Span, User, utcnow

ENTITY_RE = re.compile(r"알렉산드르 왕|알렉산더 왕|Alexandr Wang|저커버그|Scale AI|스케일 AI|메타|Meta|오픈AI|구글"
                       r"|\$[\d.]+B|\d+조\s?원|\d+억\s?달러")
LINE_RE = re.compile(r"\S(?:[^\n]*\S)?")


def windows(n: int, rng: random.Random) -> list[str]:
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in corpus_files())
    out = []
    for _ in range(n):
        size = rng.randint(300, 1500)
        start = rng.randrange(0, len(corpus) - size)
        out.append(corpus[start:start + size])
    return out


def spans_for(text: str, rng: random.Random, labels: dict[str, int]) -> list[tuple]:
    """(start, end, label_id, attributes): entities from patterns, lines as claims, with noise."""
    out = []
    for m in ENTITY_RE.finditer(text):
        if rng.random() < 0.1:
            continue  # missed
        word = m.group()
        label = "PERSON" if "왕" in word or "Wang" in word or "저커버그" in word else \
            "MONEY" if word[0].isdigit() or word[0] == "$" else "ORG"
        if rng.random() < 0.05:
            label = "PERSON" if label != "PERSON" else "ORG"  # confused
        end = m.end() - (1 if rng.random() < 0.05 and m.end() - m.start() > 2 else 0)
        if text[end - 1].isspace():
            end = m.end()
        out.append((m.start(), end, labels[label], {}))
    for m in list(LINE_RE.finditer(text))[:3]:
        if rng.random() < 0.7:
            out.append((m.start(), m.end(), labels["CLAIM"],
                        {"stance": rng.choice(["favor", "against", "neutral", "neutral"])}))
    return out


def build(url: str, n_docs: int, n_ann: int, seed: int) -> None:
    rng = random.Random(seed)
    migrate(url)
    db = Database(url)
    with db.session() as s:
        project = create_project(s, "Bench", language="ko", k=n_ann)
        labels = {lab.name: lab.id for lab in project_labels(s, project.id)}
        users = []
        for i in range(n_ann):
            u = User(username=f"annotator{i}", role="annotator", password_hash=None)
            s.add(u)
            s.flush()
            users.append(u.id)
        texts = windows(n_docs, rng)
        now = utcnow()
        s.execute(insert(Document.__table__), [
            {"id": d + 1, "project_id": project.id, "external_id": f"doc{d:06d}", "text": t, "meta": {},
             "content_hash": hashlib.sha256(t.encode()).hexdigest(), "created_at": now}
            for d, t in enumerate(texts)])
        anns, spans = [], []
        for d, text in enumerate(texts):
            for u, uid in enumerate(users):
                aid = d * n_ann + u + 1
                took = timedelta(seconds=rng.randint(30, 900))
                anns.append({"id": aid, "document_id": d + 1, "user_id": uid, "status": "submitted",
                             "version": 1, "created_at": now - took, "updated_at": now, "submitted_at": now})
                spans += [{"annotation_id": aid, "start": a, "end": b, "label_id": lab, "attributes": attrs}
                          for a, b, lab, attrs in spans_for(text, rng, labels)]
        for chunk in range(0, len(anns), 20000):
            s.execute(insert(Annotation.__table__), anns[chunk:chunk + 20000])
        for chunk in range(0, len(spans), 50000):
            s.execute(insert(Span.__table__), spans[chunk:chunk + 50000])
        s.commit()
        print(f"inserted {n_docs} documents, {len(anns)} annotations, {len(spans)} spans "
              f"({sum(map(len, texts)) / 1e6:.1f}M characters)")
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--annotators", type=int, default=3)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL of an empty database (default: temp SQLite)")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite:///{tmp.name}/bench.db"
    t0 = time.perf_counter()
    build(url, args.docs, args.annotators, args.seed)
    print(f"build: {time.perf_counter() - t0:.1f} s")

    db = Database(url)
    with db.session(write=False) as s:
        project = s.execute(select(Project).where(Project.name == "Bench")).scalar_one()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0, c0 = time.perf_counter(), time.process_time()
        report = project_report(s, project)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # where the time goes: DB -> plain data, agreement.py, per-annotator figures
        phases = {}
        c0 = time.process_time()
        docs = agreement_docs(s, project)
        phases["load"] = time.process_time() - c0
        c0 = time.process_time()
        agreement_report(docs, project_layers(project_labels(s, project.id)))
        phases["agreement.py"] = time.process_time() - c0
        c0 = time.process_time()
        annotator_figures(s, project, docs)
        phases["figures"] = time.process_time() - c0
        del docs
    with db.session(write=False) as s:
        project = s.execute(select(Project).where(Project.name == "Bench")).scalar_one()
        tracemalloc.start()
        project_report(s, project)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    db.dispose()
    size = len(json.dumps(report, ensure_ascii=False))
    ent = report["layers"]["entity"]
    print(f"report: {elapsed:.2f} s wall, {cpu:.2f} s CPU for {report['coverage']['documents']} documents x "
          f"{len(report['annotators'])} annotators; JSON {size / 1e6:.1f} MB")
    print("CPU by phase: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    print(f"peak memory: {peak / 2**20:.0f} MiB traced during the report (tracemalloc), "
          f"process max RSS {rss_after / 1024:.0f} MiB (was {rss_before / 1024:.0f} MiB before it)")
    print(f"entity: mean span F1 exact {ent['span_f1']['exact']['mean_over_pairs']:.3f}, "
          f"Krippendorff alpha {ent['token']['krippendorff_alpha']:.3f}")
    tmp.cleanup()


if __name__ == "__main__":
    main()


def run_http(n_docs: int = 10_000, n_ann: int = 3, runs: int = 1, seed: int = 5,
             db: str | None = None) -> dict:
    """The report through the HTTP API of the real server (``GET .../agreement``), for
    bench/run_all.py: wall time, the server's CPU time and its peak PSS."""
    import os
    import shutil
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import PASSWORD, ROOT, Client, Server, cli, median

    tmp = Path(tempfile.mkdtemp(prefix="annotator-bench-report-"))
    url = db or f"sqlite:///{tmp}/report.db"
    env = {**os.environ, "ANNOTATOR_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT),
           "ANNOTATOR_BACKGROUND_TOKENIZE": "false"}
    env.pop("ANNOTATOR_DATABASE_URL", None)
    t0 = time.perf_counter()
    build(url, n_docs, n_ann, seed)
    build_s = time.perf_counter() - t0
    server = None
    try:
        cli(url, "users", "add", "lead", "--role", "lead", "--password", PASSWORD, env=env)
        cli(url, "projects", "members", "1", "--add", "lead", env=env)  # leads see member projects
        token = cli(url, "users", "token", "lead", env=env).strip().splitlines()[-1]
        server = Server(url, 2, env)
        server.start()
        walls, cpus, peaks, size = [], [], [], 0
        for _ in range(runs):
            peak, done = [0.0], threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], server.pss_mb())
                    time.sleep(0.02)

            th = threading.Thread(target=sample)
            th.start()
            c0 = server.cpu_s()
            t0 = time.perf_counter()
            status, data = Client(server.port, token).call("GET", "/api/v1/projects/1/agreement")
            walls.append(time.perf_counter() - t0)
            cpus.append(server.cpu_s() - c0)
            done.set()
            th.join()
            if status != 200:
                raise SystemExit(f"agreement: {status} {data[:300]!r}")
            peaks.append(peak[0])
            size = len(data)
        report = json.loads(data)
        return {"docs": n_docs, "annotators": n_ann, "s": median(walls), "runs_s": walls,
                "server_cpu_s": median(cpus), "peak_pss_mb": median(peaks), "json_mb": round(size / 1e6, 1),
                "documents_in_report": report["coverage"]["documents"], "build_s": build_s}
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
