"""Shared pieces of the benchmarks: the real server in its own process, a keep-alive HTTP
client, process-tree memory (PSS) and CPU time, and documents cut from the demo articles.

Plain Python, no test runner. Every figure is measured through the HTTP API unless a bench
says otherwise.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "annotator" / "data" / "corpus"
PASSWORD = "bench-password-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def tree_cpu_s(pid: int) -> float:
    return sum(cpu_s(p) for p in tree_pids(pid))


def cli(db: str, *args: str, env=None) -> str:
    return subprocess.run([sys.executable, "-m", "annotator.cli", "--db", db, *args], check=True,
                          capture_output=True, text=True, env=env, cwd=ROOT).stdout


class Server:
    """``annotator serve`` in its own process, on a free loopback port."""

    def __init__(self, db: str, workers: int, env: dict, log: str | None = None):
        self.db, self.workers, self.env = db, workers, env
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = log or os.environ.get("BENCH_SERVER_LOG", os.devnull)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "annotator.cli", "--db", self.db, "serve", "--port", str(self.port),
                "--workers", str(self.workers)]

    def start(self) -> float:
        """Start and return the seconds from launch to the first 200 of /api/v1/health."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(), env=self.env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=open(self.log, "a"), start_new_session=True)
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited during start-up (log: {self.log})")
            time.sleep(0.002)

    def pss_mb(self) -> float:
        return tree_pss_mb(self.proc.pid)

    def cpu_s(self) -> float:
        return tree_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            others = tree_pids(self.proc.pid)[1:]
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for pid in others:  # e.g. a background tokenizer job still running
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


class Client:
    """One keep-alive connection with a Bearer token."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None):
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # the server closed an idle keep-alive connection: once more
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
        return resp.status, resp.read()

    def json(self, method: str, path: str, body=None, expect: int = 200):
        raw = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        status, data = self.call(method, path, raw)
        if status != expect:
            raise SystemExit(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data else None


def corpus_texts() -> list[str]:
    out = []
    for p in sorted(CORPUS.glob("*.txt")):
        with open(p, encoding="utf-8", newline="") as f:
            out.append(f.read())
    return out


def make_docs(n: int, size: int = 2000, seed: int = 0) -> list[dict]:
    """n documents of ``size`` characters cut from the demo articles (joined end to end).

    Every fifth one is cut around an emoji (characters outside the BMP, two UTF-16 units),
    so the astral-plane paths are exercised on every run.
    """
    corpus = "\n\n".join(corpus_texts())
    ring = corpus + "\n\n" + corpus[:size]
    emoji = [i for i, ch in enumerate(corpus) if ord(ch) > 0xFFFF]
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        if i % 5 == 0 and emoji:
            start = max(0, rng.choice(emoji) - rng.randrange(size))
        else:
            start = rng.randrange(0, len(corpus))
        docs.append({"id": f"b{i}", "text": ring[start:start + size], "meta": {"n": i}})
    return docs


def spans_for(text: str, k: int = 5, label: str = "ORG") -> list[dict]:
    """k non-overlapping entity spans of up to 3 characters, not starting or ending in space."""
    out, pos, step = [], 0, max(1, len(text) // (k + 1))
    for _ in range(k):
        s = pos
        while s < len(text) and text[s].isspace():
            s += 1
        e = min(len(text), s + 3, pos + step)
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s and not (0xDC00 <= ord(text[s]) <= 0xDFFF):
            out.append({"start": s, "end": e, "label": label, "attributes": {}})
        pos += step
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)
