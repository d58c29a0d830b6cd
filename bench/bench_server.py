"""Server benchmarks through the HTTP API, against the real server in a separate process.

    python bench/bench_server.py [--quick] [--runs 3] [--json bench/results/server.json]

The rows of the speed table (docs/speed.md): import, single saves, concurrent saves, export, export
memory, idle memory, cold start; plus the background tokenizer (import never waits for it).
A fresh SQLite database in a temporary folder (or ``--db`` naming an empty PostgreSQL
database), documents cut from the demo articles (emoji included, see common.make_docs).
Each row is the median of ``--runs`` runs; CPU seconds of the server's processes are
reported beside wall time, because on a shared machine wall time also measures the others.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLK_TCK,
    PASSWORD,
    ROOT,
    Client,
    Server,
    cli,
    cpu_s,
    make_docs,
    median,
    pct,
    pss_kb,
    spans_for,
    tree_pids,
)

N_CLIENTS = 8

from annotator.core.spans import is_cluster_boundary  # noqa: E402


def jsonl(docs: list[dict]) -> bytes:
    return "\n".join(json.dumps(d, ensure_ascii=False) for d in docs).encode()


def web_pids(server: Server) -> list[int]:
    """The master and its gunicorn workers (not a background tokenizer job)."""
    pids = tree_pids(server.proc.pid)
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"tokenize_job" not in cmd and b"annotator.services.background" not in cmd:
            out.append(pid)
    return out


def web_pss_mb(server: Server) -> float:
    return sum(pss_kb(p) for p in web_pids(server)) / 1024


def web_cpu_s(server: Server) -> float:
    """CPU seconds of the web processes, including workers that have exited (a worker retires
    after a big request, annotator/web/server.py): the master's reaped children's times."""
    try:
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK  # cutime + cstime
    except OSError:
        reaped = 0.0
    return sum(cpu_s(p) for p in web_pids(server)) + reaped


class Bench:
    def __init__(self, db: str | None, workers: int, tmp: Path, log: str | None):
        self.tmp = tmp
        self.db = db or "sqlite:///" + str(tmp / "bench.db")
        self.env = {**os.environ, "ANNOTATOR_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT),
                    "ANNOTATOR_BACKGROUND_TOKENIZE": "false"}
        self.env.pop("ANNOTATOR_DATABASE_URL", None)
        self.workers = workers
        self.log = log
        self.server: Server | None = None

    def setup(self) -> None:
        cli(self.db, "init", env=self.env)
        cli(self.db, "users", "add", "lead", "--role", "lead", "--password", PASSWORD, env=self.env)
        self.lead_token = cli(self.db, "users", "token", "lead", env=self.env).strip().splitlines()[-1]
        self.tokens = []
        for i in range(N_CLIENTS):
            cli(self.db, "users", "add", f"a{i}", "--password", PASSWORD, env=self.env)
            self.tokens.append(cli(self.db, "users", "token", f"a{i}", env=self.env).strip().splitlines()[-1])

    def start(self, env: dict | None = None) -> float:
        self.server = Server(self.db, self.workers, env or self.env, self.log)
        return self.server.start()

    def lead(self) -> Client:
        return Client(self.server.port, self.lead_token)

    def project(self, name: str, language: str = "ko") -> int:
        pid = self.lead().json("POST", "/api/v1/projects", {"name": name, "language": language, "k": 2},
                               expect=201)["id"]
        # the annotators work on it: members (the lead became one by creating it)
        self.lead().json("POST", f"/api/v1/projects/{pid}/members",
                         {"usernames": [f"a{i}" for i in range(N_CLIENTS)]})
        return pid

    def doc_ids(self, pid: int, n: int) -> list[int]:
        lead, out, page = self.lead(), [], 1
        while len(out) < n:
            got = lead.json("GET", f"/api/v1/projects/{pid}/documents?per_page=500&page={page}")["items"]
            if not got:
                break
            out += [d["id"] for d in got]
            page += 1
        return out[:n]


    def settle(self) -> None:
        """Between runs: let the previous run's writes reach the disk (the WAL checkpointed
        into the database, dirty pages flushed), so that a run does not pay for the last."""
        if self.db.startswith("sqlite:///"):
            import sqlite3

            conn = sqlite3.connect(self.db.removeprefix("sqlite:///"), timeout=30)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                conn.close()
        os.sync()
        time.sleep(0.5)


# --- rows ------------------------------------------------------------------------------

def row_import(b: Bench, n: int, runs: int) -> dict:
    body = jsonl(make_docs(n))
    walls, cpus, pids = [], [], []
    for r in range(runs):
        b.settle()
        pid = b.project(f"Import {r}")
        lead = b.lead()
        c0 = web_cpu_s(b.server)
        t0 = time.perf_counter()
        status, data = lead.call("POST", f"/api/v1/projects/{pid}/documents", body)
        walls.append(time.perf_counter() - t0)
        cpus.append(web_cpu_s(b.server) - c0)
        if status != 201:
            raise SystemExit(f"import: {status} {data[:300]!r}")
        pids.append(pid)
    return {"docs": n, "body_mb": round(len(body) / 1e6, 1), "s": median(walls), "runs_s": walls,
            "cpu_s": median(cpus), "projects": pids}


def row_saves(b: Bench, pid: int, n: int, runs: int) -> dict:
    ids = b.doc_ids(pid, runs)
    a0 = Client(b.server.port, b.tokens[0])
    p50s, p99s, cpus = [], [], []
    for r in range(runs):
        did = ids[r]
        text = a0.json("GET", f"/api/v1/documents/{did}")["text"]
        one = spans_for(text, 1)
        lat = []
        c0 = web_cpu_s(b.server)
        for v in range(n):
            payload = json.dumps({"spans": one, "version": v}).encode()
            t0 = time.perf_counter()
            status, data = a0.call("PUT", f"/api/v1/documents/{did}/annotation", payload)
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise SystemExit(f"save: {status} {data[:300]!r}")
        cpus.append((web_cpu_s(b.server) - c0) / n * 1000)
        p50s.append(pct(lat, 50))
        p99s.append(pct(lat, 99))
    return {"saves": n, "p50_ms": median(p50s), "p99_ms": median(p99s), "runs_p50_ms": p50s,
            "runs_p99_ms": p99s, "server_cpu_ms_per_save": median(cpus)}


def _client(port: int, token: str, docs: list[tuple[int, str]], start_at: float, stop_at: float,
            out) -> None:
    c = Client(port, token)
    versions = {d: 0 for d, _ in docs}
    lat, errors, j = [], [], 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        d, text = docs[j % len(docs)]
        j += 1
        spans = [x for x in spans_for(text, 1 + j % 5)  # never inside a character (emoji + VS16)
                 if is_cluster_boundary(text, x["start"]) and is_cluster_boundary(text, x["end"])]
        payload = json.dumps({"spans": spans, "version": versions[d]}).encode()
        t0 = time.perf_counter()
        status, data = c.call("PUT", f"/api/v1/documents/{d}/annotation", payload)
        lat.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            errors.append(f"{status} {data[:200]!r}")
            break
        versions[d] += 1
    out.send((lat, errors, time.process_time()))
    out.close()


def row_concurrent(b: Bench, pid: int, seconds: float, runs: int, first: int = 0) -> dict:
    """8 client processes (one keep-alive connection each), each saving its own documents
    (from the project's document number ``first``: a later call saves other documents)."""
    ids = b.doc_ids(pid, first + 1 + N_CLIENTS * 10 * runs + 10)[first:]
    lead = b.lead()
    texts = {d: lead.json("GET", f"/api/v1/documents/{d}")["text"] for d in ids[10:]}
    ctx = mp.get_context("fork")
    thr, p99s, p50s, cpus, client_cpu, errors = [], [], [], [], [], []
    for r in range(runs):
        base = 10 + r * N_CLIENTS * 10
        pipes, procs = [], []
        start_at = time.time() + 0.5
        stop_at = start_at + seconds
        for i in range(N_CLIENTS):
            mine = [(d, texts[d]) for d in ids[base + i * 10: base + (i + 1) * 10]]
            rx, tx = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_client, args=(b.server.port, b.tokens[i], mine, start_at, stop_at, tx))
            p.start()
            pipes.append(rx)
            procs.append(p)
        while time.time() < start_at:
            time.sleep(0.001)
        c0 = web_cpu_s(b.server)
        results = [rx.recv() for rx in pipes]
        wall = time.time() - start_at
        cpu = web_cpu_s(b.server) - c0
        for p in procs:
            p.join()
        lat = [x for res in results for x in res[0]]
        errors += [e for res in results for e in res[1]]
        thr.append(len(lat) / wall)
        p99s.append(pct(lat, 99))
        p50s.append(pct(lat, 50))
        cpus.append(cpu / max(1, len(lat)) * 1000)
        client_cpu.append(sum(res[2] for res in results) / max(1, len(lat)) * 1000)
    if errors:
        print("errors:", errors[:3], file=sys.stderr)
    return {"clients": N_CLIENTS, "seconds": seconds, "per_s": median(thr), "p99_ms": median(p99s),
            "p50_ms": median(p50s), "runs_per_s": thr, "runs_p99_ms": p99s,
            "server_cpu_ms_per_save": median(cpus), "client_cpu_ms_per_save": median(client_cpu),
            "errors": len(errors)}


def row_export(b: Bench, n: int, runs: int) -> dict:
    """n documents imported with 5 spans each (one submitted annotation per document), then
    exported as JSON Lines through the API, peak PSS of the web processes sampled meanwhile."""
    pid = b.project("Export")
    docs = make_docs(n, seed=1)
    for d in docs:
        d["spans"] = spans_for(d["text"], 5)
    body = jsonl(docs)
    t0 = time.perf_counter()
    status, data = b.lead().call("POST", f"/api/v1/projects/{pid}/documents", body)
    import_s = time.perf_counter() - t0
    if status != 201:
        raise SystemExit(f"import with spans: {status} {data[:300]!r}")
    out: dict = {"docs": n, "spans_per_doc": 5, "import_with_spans_s": import_s}
    b.settle()
    idle = web_pss_mb(b.server)
    walls, cpus, peaks, sizes = [], [], [], []
    for _ in range(runs):
        peak = [0.0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], web_pss_mb(b.server))
                time.sleep(0.01)

        th = threading.Thread(target=sample)
        th.start()
        lead = b.lead()
        c0 = web_cpu_s(b.server)
        t0 = time.perf_counter()
        status, data = lead.call("GET", f"/api/v1/projects/{pid}/export?format=jsonl&source=all&tokens=false")
        walls.append(time.perf_counter() - t0)
        cpus.append(web_cpu_s(b.server) - c0)
        done.set()
        th.join()
        if status != 200:
            raise SystemExit(f"export: {status} {data[:300]!r}")
        lines = data.count(b"\n")
        if lines != n:
            raise SystemExit(f"export: {lines} lines, expected {n}")
        first = json.loads(data[:data.index(b"\n")])
        assert len(first["spans"]) == 5, first["spans"]
        peaks.append(peak[0])
        sizes.append(len(data))
    out.update({"s": median(walls), "runs_s": walls, "cpu_s": median(cpus), "peak_pss_mb": median(peaks),
                "runs_peak_pss_mb": peaks, "pss_before_mb": idle, "output_mb": round(sizes[0] / 1e6, 1),
                "project": pid})
    return out


def row_tokenizer(b: Bench, n: int) -> dict:
    """With background tokenizing on (the default): the import answers without tokenizing,
    a low-priority job tokenizes every new document; how long it takes and what it costs."""
    b.server.stop()
    env = dict(b.env, ANNOTATOR_BACKGROUND_TOKENIZE="true")
    b.start(env)
    pid = b.project("Tokenize")
    body = jsonl(make_docs(n, seed=2))
    lead = b.lead()
    t0 = time.perf_counter()
    status, data = lead.call("POST", f"/api/v1/projects/{pid}/documents", body)
    import_s = time.perf_counter() - t0
    if status != 201:
        raise SystemExit(f"import: {status} {data[:300]!r}")
    ids = b.doc_ids(pid, n)
    peak_job, job_cpu = 0.0, 0.0
    deadline = time.perf_counter() + 600
    last = ids[-1]
    while time.perf_counter() < deadline:
        jobs = [p for p in tree_pids(b.server.proc.pid) if p not in web_pids(b.server)]
        if jobs:
            peak_job = max(peak_job, sum(pss_kb(p) for p in jobs) / 1024)
            job_cpu = max(job_cpu, sum(cpu_s(p) for p in jobs))
        doc = lead.json("GET", f"/api/v1/documents/{last}")
        if doc["tokens"] is not None:
            first = lead.json("GET", f"/api/v1/documents/{ids[0]}")
            if first["tokens"] is not None:
                break
        time.sleep(0.2)
    done_s = time.perf_counter() - t0
    b.server.stop()
    b.start()
    return {"docs": n, "import_s": import_s, "all_tokenized_after_s": done_s,
            "job_peak_pss_mb": peak_job, "job_cpu_s": job_cpu}


def _job_state(b: Bench, pid: int, kind: str) -> str | None:
    items = b.lead().json("GET", f"/api/v1/projects/{pid}/jobs")["items"]
    found = [j for j in items if j["kind"] == kind]
    return found[0]["state"] if found else None


def _wait_running(state, what: str, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if state() == "running":
            return
        time.sleep(0.2)
    raise SystemExit(f"no {what} job ran within {deadline_s} s")


def row_saves_while_jobs(b: Bench, saves_pid: int, n_import: int, n_train: int, seconds: float,
                         runs: int, first: int = 0) -> dict:
    """8 clients saving (row_concurrent) while the server's background process (a) tokenizes a
    fresh import of ``n_import`` documents, (b) trains a model on ``n_train`` documents with
    spans; beside the same clients with nothing running in the background, measured in the
    same server, just before. The target (issue 12): at least 80 % of the idle throughput,
    p99 within 2x of idle. A job must still be running when the clients stop, or the figure is
    not 'while' (said in ``still_running``)."""
    b.server.stop()
    b.start(dict(b.env, ANNOTATOR_BACKGROUND_TOKENIZE="true"))
    _wait_no_jobs(b)  # the documents imported before (the start queues their tokenizing)
    b.settle()
    block = N_CLIENTS * 10 * runs + 10  # documents one row_concurrent saves
    idle = row_concurrent(b, saves_pid, seconds, runs, first=first)
    out = {"idle": idle}
    # (a) tokenizing a fresh import
    tok_pid = b.project("Tokenize while saving")
    status, data = b.lead().call("POST", f"/api/v1/projects/{tok_pid}/documents",
                                 jsonl(make_docs(n_import, seed=5)))
    if status != 201:
        raise SystemExit(f"import: {status} {data[:300]!r}")
    _wait_running(lambda: _any_state(b, "tokenize"), "tokenize", 300)
    out["tokenizing"] = row_concurrent(b, saves_pid, seconds, runs, first=first + block)
    out["tokenizing"]["still_running"] = _any_state(b, "tokenize") == "running"
    # (b) training on documents imported with spans
    train_pid = b.project("Train while saving")
    docs = make_docs(n_train, seed=6)
    for d in docs:
        d["spans"] = [x for x in spans_for(d["text"], 8, "ORG")
                      if is_cluster_boundary(d["text"], x["start"])
                      and is_cluster_boundary(d["text"], x["end"])]
    status, data = b.lead().call("POST", f"/api/v1/projects/{train_pid}/documents", jsonl(docs))
    if status != 201:
        raise SystemExit(f"import: {status} {data[:300]!r}")
    b.lead().json("POST", f"/api/v1/projects/{train_pid}/train", {}, expect=202)
    _wait_running(lambda: _job_state(b, train_pid, "train"), "train", 1800)  # after the tokenizing
    out["training"] = row_concurrent(b, saves_pid, seconds, runs, first=first + 2 * block)
    out["training"]["still_running"] = _job_state(b, train_pid, "train") == "running"
    for key in ("tokenizing", "training"):
        r = out[key]
        r["throughput_ratio"] = round(r["per_s"] / idle["per_s"], 3) if idle["per_s"] else None
        r["p99_ratio"] = round(r["p99_ms"] / idle["p99_ms"], 3) if idle["p99_ms"] else None
    out["import_docs"], out["train_docs"] = n_import, n_train
    b.server.stop()
    b.start()
    return out


def _wait_no_jobs(b: Bench, deadline_s: float = 1800) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        jobs = b.lead().json("GET", "/api/v1/background")["jobs"]
        if not any(j["state"] in ("queued", "running") for j in jobs):
            return
        time.sleep(1)
    raise SystemExit(f"background jobs still running after {deadline_s} s")


def _any_state(b: Bench, kind: str) -> str | None:
    """The state of the newest job of ``kind`` in any project (GET /api/v1/background)."""
    items = [j for j in b.lead().json("GET", "/api/v1/background")["jobs"] if j["kind"] == kind]
    return items[0]["state"] if items else None


def row_idle_and_cold(b: Bench, runs: int) -> dict:
    b.server.stop()
    starts, idles = [], []
    for _ in range(runs):
        starts.append(b.start())
        b.lead().json("GET", "/api/v1/me")
        time.sleep(1.5)
        idles.append(web_pss_mb(b.server))
        b.server.stop()
    b.start()
    return {"cold_start_s": median(starts), "runs_cold_start_s": starts, "idle_pss_mb": median(idles),
            "runs_idle_pss_mb": idles}


def run(quick: bool = False, runs: int = 3, workers: int = 2, db: str | None = None,
        log: str | None = None) -> dict:
    n_import = 1000 if quick else 10_000
    n_saves = 100 if quick else 500
    conc_seconds = 3 if quick else 20
    n_export = 1000 if quick else 10_000
    tmp = Path(tempfile.mkdtemp(prefix="annotator-bench-"))
    b = Bench(db, workers, tmp, log)
    res: dict = {"workers": workers, "cpu_count": os.cpu_count(), "quick": quick, "runs": runs,
                 "database": "postgresql" if db and db.startswith("postgresql") else "sqlite"}
    try:
        b.setup()
        res["first_start_s"] = b.start()
        b.lead().json("GET", "/api/v1/me")
        time.sleep(1.5)
        res["first_idle_pss_mb"] = web_pss_mb(b.server)
        # first, while the database holds no other documents for the job to tokenize
        print("  background tokenizer ...", file=sys.stderr, flush=True)
        res["tokenizer"] = row_tokenizer(b, 50 if quick else 200)
        # saves on their own project of 1,000 documents, before the bulk imports
        pid = b.project("Saves")
        # saves on their own documents: 4 x 250 are saved (concurrent, then while jobs run)
        status, data = b.lead().call("POST", f"/api/v1/projects/{pid}/documents", jsonl(make_docs(1100, seed=3)))
        assert status == 201, data[:300]
        b.settle()
        print("  saves ...", file=sys.stderr, flush=True)
        res["save"] = row_saves(b, pid, n_saves, runs)
        print("  concurrent saves ...", file=sys.stderr, flush=True)
        b.settle()
        res["concurrent"] = row_concurrent(b, pid, conc_seconds, runs)
        print("  import ...", file=sys.stderr, flush=True)
        res["import"] = row_import(b, n_import, runs)
        print("  export ...", file=sys.stderr, flush=True)
        res["export"] = row_export(b, n_export, runs)
        print("  saves while background jobs run ...", file=sys.stderr, flush=True)
        res["while_jobs"] = row_saves_while_jobs(b, pid, n_import, 40 if quick else 300,
                                                 conc_seconds, runs,
                                                 first=N_CLIENTS * 10 * runs + 10)
        print("  idle memory and cold start ...", file=sys.stderr, flush=True)
        res.update(row_idle_and_cold(b, runs))
    finally:
        if b.server:
            b.server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", default=None, help="an EMPTY, disposable PostgreSQL database URL")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "server.json"))
    args = ap.parse_args()
    res = run(args.quick, args.runs, args.workers, args.db)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
