"""Server benchmarks through the HTTP API, against the real server in a separate process.

    python bench/bench_server.py [--quick] [--json bench/results/server.json]

Each row of the README's speed table: import, single saves, concurrent saves, export,
export memory, idle memory, cold start. Plain Python, no test runner.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "annotator" / "data" / "corpus"
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for c in children:
        out += tree_pids(int(c))
    return out


def tree_pss_mb(pid: int) -> float:
    return sum(pss_kb(p) for p in tree_pids(pid)) / 1024


def cli(db: str, *args: str, env=None) -> str:
    return subprocess.run([sys.executable, "-m", "annotator.cli", "--db", db, *args], check=True,
                          capture_output=True, text=True, env=env, cwd=ROOT).stdout


class Server:
    def __init__(self, db: str, workers: int, env: dict):
        self.db, self.workers, self.env = db, workers, env
        self.port = free_port()
        self.proc = None

    def start(self) -> float:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "annotator.cli", "--db", self.db, "serve", "--port", str(self.port),
             "--workers", str(self.workers)], env=self.env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a"))
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit("the server exited during start-up")
            time.sleep(0.005)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)


class Client:
    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None):
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed an idle keep-alive connection: reconnect once
            self.conn.close()
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
        return resp.status, resp.read()


def make_docs(n: int, size: int = 2000, seed: int = 0) -> list[dict]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt"))]
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        t = texts[i % len(texts)]
        start = rng.randrange(0, max(1, len(t) - size))
        docs.append({"id": f"b{i}", "text": t[start:start + size]})
    return docs


def spans_for(text: str, k: int = 5) -> list[dict]:
    """k non-overlapping entity spans on word boundaries (non-space ends)."""
    out, pos, step = [], 0, max(1, len(text) // (k + 1))
    for _ in range(k):
        s = pos
        while s < len(text) and text[s].isspace():
            s += 1
        e = min(len(text), s + 3)
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append({"start": s, "end": e, "label": "ORG", "attributes": {}})
        pos += step
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "server.json"))
    args = ap.parse_args()
    n_import = 1000 if args.quick else 10_000
    n_saves = 100 if args.quick else 500
    conc_seconds = 3 if args.quick else 20

    tmp = Path(tempfile.mkdtemp(prefix="annotator-bench-"))
    db = "sqlite:///" + str(tmp / "bench.db")
    env = {**os.environ, "ANNOTATOR_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT)}
    env.pop("ANNOTATOR_DATABASE_URL", None)
    results: dict = {"workers": args.workers, "cpu_count": os.cpu_count()}
    try:
        cli(db, "init", env=env)
        cli(db, "users", "add", "lead", "--role", "lead", "--password", PASSWORD, env=env)
        cli(db, "projects", "create", "Bench", "--language", "ko", "--k", "2", env=env)
        token = cli(db, "users", "token", "lead", env=env).strip().splitlines()[-1]
        annotators = []
        for i in range(8):
            cli(db, "users", "add", f"a{i}", "--password", PASSWORD, env=env)
            annotators.append(cli(db, "users", "token", f"a{i}", env=env).strip().splitlines()[-1])

        server = Server(db, args.workers, env)
        results["cold_start_first_s"] = server.start()
        time.sleep(1.0)
        results["idle_pss_mb"] = tree_pss_mb(server.proc.pid)

        # 1. import
        docs = make_docs(n_import)
        body = "\n".join(json.dumps(d, ensure_ascii=False) for d in docs).encode()
        lead = Client(server.port, token)
        t0 = time.perf_counter()
        status, data = lead.call("POST", "/api/v1/projects/1/documents", body)
        results["import_s"] = time.perf_counter() - t0
        results["import_docs"] = n_import
        assert status == 201, data[:300]

        # 2. single saves, one after another (each a new version of one annotation)
        status, data = lead.call("GET", "/api/v1/projects/1/documents?per_page=500")
        items = json.loads(data)["items"]
        doc_ids = [d["id"] for d in items]
        a0 = Client(server.port, annotators[0])
        _, data = a0.call("GET", f"/api/v1/documents/{doc_ids[0]}")
        text = json.loads(data)["text"]
        one = spans_for(text, 1)
        lat = []
        for v in range(n_saves):
            payload = json.dumps({"spans": one, "version": v}).encode()
            t0 = time.perf_counter()
            status, data = a0.call("PUT", f"/api/v1/documents/{doc_ids[0]}/annotation", payload)
            lat.append((time.perf_counter() - t0) * 1000)
            assert status == 200, data
        results["save_p50_ms"] = pct(lat, 50)
        results["save_p99_ms"] = pct(lat, 99)

        # 3. 8 concurrent clients, each saving its own documents for conc_seconds
        texts = {}
        for d in doc_ids[1:81]:
            _, data = a0.call("GET", f"/api/v1/documents/{d}")
            texts[d] = json.loads(data)["text"]
        stop_at = time.perf_counter() + conc_seconds
        lats: list[list[float]] = [[] for _ in range(8)]
        errors: list[str] = []

        def worker(i: int) -> None:
            c = Client(server.port, annotators[i])
            mine = doc_ids[1 + i * 10: 1 + (i + 1) * 10]
            versions = {d: 0 for d in mine}
            j = 0
            while time.perf_counter() < stop_at:
                d = mine[j % len(mine)]
                j += 1
                payload = json.dumps({"spans": spans_for(texts[d], 1 + j % 5), "version": versions[d]}).encode()
                t0 = time.perf_counter()
                status, data = c.call("PUT", f"/api/v1/documents/{d}/annotation", payload)
                lats[i].append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    errors.append(f"{status} {data[:200]!r}")
                    return
                versions[d] += 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        all_lat = [x for lst in lats for x in lst]
        results["concurrent_saves_per_s"] = len(all_lat) / wall
        results["concurrent_p99_ms"] = pct(all_lat, 99)
        results["concurrent_errors"] = len(errors)
        if errors:
            print("errors:", errors[:3], file=sys.stderr)

        # 4. export (when the export endpoint exists): 10,000 documents with 5 spans each
        status, _ = lead.call("GET", "/api/v1/projects/1/export?format=jsonl&source=all&limit=1")
        if status != 404:
            n_export = min(n_import, 10_000)
            a1 = Client(server.port, annotators[1])
            # bulk-submit 5 spans on every document through the API as annotator a1
            _, data = lead.call("GET", f"/api/v1/projects/1/documents?per_page=500&page=1")
            all_ids = []
            page = 1
            while True:
                _, data = lead.call("GET", f"/api/v1/projects/1/documents?per_page=500&page={page}")
                got = json.loads(data)["items"]
                if not got:
                    break
                all_ids += [(d["id"], d["preview"]) for d in got]
                page += 1
            by_id = {f"b{i}": d["text"] for i, d in enumerate(docs)}
            ext = {d["id"]: d for d in items}
            for did, _prev in all_ids[:n_export]:
                _, data = a1.call("GET", f"/api/v1/documents/{did}")
                t = json.loads(data)["text"]
                a1.call("PUT", f"/api/v1/documents/{did}/annotation",
                        json.dumps({"spans": spans_for(t, 5), "version": 0, "status": "submitted"}).encode())
            peak = [0.0]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], tree_pss_mb(server.proc.pid))
                    time.sleep(0.02)

            th = threading.Thread(target=sample)
            th.start()
            t0 = time.perf_counter()
            status, data = lead.call("GET", "/api/v1/projects/1/export?format=jsonl&source=all")
            results["export_s"] = time.perf_counter() - t0
            done.set()
            th.join()
            results["export_docs"] = n_export
            results["export_lines"] = data.count(b"\n")
            results["export_peak_pss_mb"] = peak[0]
        server.stop()

        # 7. cold start again (relaunch, warm file cache)
        starts = []
        for _ in range(3):
            s2 = Server(db, args.workers, env)
            starts.append(s2.start())
            s2.stop()
        results["cold_start_s"] = statistics.median(starts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    rows = [
        ("import documents (~2,000 chars) via API", f"{results.get('import_docs')} docs in {results.get('import_s', 0):.2f} s"),
        ("save one span, in a row: p50 / p99", f"{results['save_p50_ms']:.1f} / {results['save_p99_ms']:.1f} ms"),
        ("8 concurrent clients: throughput, p99", f"{results['concurrent_saves_per_s']:.0f} /s, {results['concurrent_p99_ms']:.1f} ms"),
        ("export 10,000 docs x 5 spans (jsonl)", f"{results['export_s']:.2f} s" if "export_s" in results else "n/a"),
        ("peak server memory during export (PSS)", f"{results['export_peak_pss_mb']:.0f} MB" if "export_peak_pss_mb" in results else "n/a"),
        ("server memory at idle (PSS, all processes)", f"{results['idle_pss_mb']:.0f} MB"),
        ("cold start to first 200 (relaunch, median of 3)", f"{results['cold_start_s']:.2f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"(workers={args.workers}, {os.cpu_count()} cores; JSON in {args.json})")


if __name__ == "__main__":
    main()
