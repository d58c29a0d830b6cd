"""Idle and slow clients against the real server: does everyone else keep their latency?

    python bench/bench_clients.py [--db URL] [--seconds 15] [--only NAME] [--json FILE]

For each scenario, one client (one keep-alive connection, a Bearer token) alternates reading
a document and saving its annotation, back to back for ``--seconds``, while other sockets
misbehave:

- ``idle N``: N connections opened that never send a byte (each reopened when the server
  closes it: what browsers' speculative connections and a careless load balancer do);
- ``slow bodies``: 8 connections sending a save's headers, then its 1,000-byte body at one
  byte per 0.5 s (reopened after the server answers or closes);
- ``slow large bodies``: the same with an import's headers (Content-Length 8 MiB), which the
  event loop hands to a thread after the headers;
- the worst mix: 500 idle connections plus 8 slow bodies.

Prints p50 / p99 / max of the client's requests, requests that failed or timed out (20 s),
and what the misbehaving sockets were answered (408s, closes). Loopback only; every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import Bench
from common import Client, make_docs, pct, spans_for

TIMEOUT_S = 20.0
SCENARIO_LIMIT_S = 240.0  # no scenario runs longer than this


class Misbehaving:
    """N sockets that misbehave until stopped (each thread bounded in time)."""

    def __init__(self, port: int, n: int, kind: str, token: str, pid: int):
        self.port, self.n, self.kind, self.token, self.pid = port, n, kind, token, pid
        self.stop_at = time.monotonic() + SCENARIO_LIMIT_S
        self.stopped = threading.Event()
        self.answers: dict[str, int] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(1.0 if self.n < 100 else 2.0)  # let them connect (and trickle)
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        for t in self.threads:
            t.join(timeout=5)

    def _note(self, what: str) -> None:
        with self.lock:
            self.answers[what] = self.answers.get(what, 0) + 1

    def _head(self) -> bytes:
        if self.kind == "slow_large":
            return (f"POST /api/v1/projects/{self.pid}/documents HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {self.token}\r\nContent-Type: application/jsonl\r\n"
                    f"Content-Length: {8 << 20}\r\n\r\n").encode()
        return (f"PUT /api/v1/documents/1/annotation HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: 1000\r\n\r\n").encode()

    def _run(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.stop_at:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                self._note("connect failed")
                time.sleep(0.2)
                continue
            try:
                if self.kind == "idle":
                    s.settimeout(1.0)
                    while not self.stopped.is_set() and time.monotonic() < self.stop_at:
                        try:
                            if s.recv(1) == b"":
                                self._note("closed by the server")
                                break
                        except TimeoutError:
                            continue
                else:
                    s.sendall(self._head())
                    s.settimeout(0.5)
                    while not self.stopped.is_set() and time.monotonic() < self.stop_at:
                        try:
                            got = s.recv(4096)
                            self._note(got.split(b" ", 2)[1].decode() if got else "closed by the server")
                            self.stopped.wait(1.0)  # a client answered waits a moment to retry
                            break
                        except TimeoutError:
                            pass
                        try:
                            s.sendall(b" ")
                        except OSError:
                            self._note("closed by the server")
                            break
            except OSError:
                self._note("reset")
            finally:
                s.close()


def measure(b: Bench, token: str, did: int, text: str, seconds: float) -> dict:
    c = Client(b.server.port, token)
    c.conn.timeout = TIMEOUT_S
    lat, failed = [], 0
    try:
        status, data = c.call("GET", f"/api/v1/documents/{did}/annotation")
    except OSError:
        status, data = 0, b""
        c = Client(b.server.port, token)
        c.conn.timeout = TIMEOUT_S
    version = (json.loads(data).get("version") or 0) if status == 200 else 0
    stop_at, i = time.monotonic() + seconds, 0
    while time.monotonic() < stop_at:
        i += 1
        t0 = time.perf_counter()
        try:
            if i % 2:
                body = json.dumps({"spans": spans_for(text, 1 + i % 5), "version": version}).encode()
                status, data = c.call("PUT", f"/api/v1/documents/{did}/annotation", body)
                if status == 200:
                    version = json.loads(data)["version"]
            else:
                status, data = c.call("GET", f"/api/v1/documents/{did}")
        except OSError:
            status = 0
            c = Client(b.server.port, token)
            c.conn.timeout = TIMEOUT_S
        lat.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            failed += 1
    return {"requests": len(lat), "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1),
            "max_ms": round(max(lat), 1), "failed": failed}


SCENARIOS = [
    ("no misbehaving clients", []),
    ("200 idle connections", [("idle", 200)]),
    ("500 idle connections", [("idle", 500)]),
    ("8 slow bodies (1 byte / 0.5 s)", [("slow", 8)]),
    ("8 slow large bodies (8 MiB announced)", [("slow_large", 8)]),
    ("500 idle + 8 slow bodies", [("idle", 500), ("slow", 8)]),
]


def run(db: str | None, seconds: float, workers: int = 2, only: str = "") -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-clients-"))
    b = Bench(db, workers, tmp, os.environ.get("BENCH_SERVER_LOG"))
    if b.db.startswith("postgresql"):
        from annotator.storage.db import reset_postgres

        reset_postgres(b.db)
    b.setup()
    b.start()
    try:
        pid = b.project("clients")
        b.lead().json("POST", f"/api/v1/projects/{pid}/documents",
                      [{"text": d["text"]} for d in make_docs(20)], expect=201)
        did = b.doc_ids(pid, 1)[0]
        text = Client(b.server.port, b.tokens[0]).json("GET", f"/api/v1/documents/{did}")["text"]
        rows = []
        for name, kinds in SCENARIOS:
            if only and only not in name:
                continue
            groups = [Misbehaving(b.server.port, k, kind, b.lead_token, pid) for kind, k in kinds]
            for g in groups:
                g.__enter__()
            try:
                row = {"scenario": name, **measure(b, b.tokens[0], did, text, seconds)}
            finally:
                for g in groups:
                    g.__exit__(None, None, None)
            row["misbehaving_answered"] = {k: v for g in groups for k, v in g.answers.items()}
            rows.append(row)
            print(f"{name:40} {row['requests']:6} requests  p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                  f"max {row['max_ms']:7.1f} ms  failed {row['failed']}  "
                  f"misbehaving sockets got: {row['misbehaving_answered'] or '-'}", flush=True)
            time.sleep(1.0)
        return rows
    finally:
        b.server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--seconds", type=float, default=15.0,
                    help="how long the measured client runs in each scenario")
    ap.add_argument("--only", default="", help="run the scenarios whose name contains this")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    rows = run(args.db, args.seconds, only=args.only)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
