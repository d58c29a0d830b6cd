"""What stays in the web processes after bench_server's work: PSS per process, by mapping.

    python bench/mem_residual.py [--steps saves,concurrent,imports,spans,export] [--probe]

Starts the real server like bench_server.Bench (2 gthread workers, preload, SQLite), runs
the bench's steps in its order, and after each step prints, per process (master, each
worker): PSS split into [heap] (the main glibc arena), anonymous mappings (other glibc
arenas, obmalloc arenas, big malloc blocks), file-backed mappings, and stack/other.
``--probe`` runs the server through bench/mem_probe.py and, after each step, asks every
process for Python's and glibc's allocator statistics (a summary is printed, the full
dumps stay in /tmp/mem-probe).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server as bs
from common import ROOT, Server, make_docs, spans_for

PROBE_DIR = Path("/tmp/mem-probe")


class ProbeServer(Server):
    """The real server, run through mem_probe.py (which reports each process's allocators)."""

    def command(self) -> list[str]:
        return [sys.executable, str(ROOT / "bench" / "mem_probe.py"), "--db", self.db, "serve",
                "--port", str(self.port), "--workers", str(self.workers)]


def rollup(pid: int) -> str:
    keep = ("Rss", "Pss", "Shared_Dirty", "Private_Dirty", "Pss_Anon", "Pss_File")
    out = []
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        k, v = line.split(":", 1)
        if k in keep:
            out.append(f"{k} {int(v.split()[0]) / 1024:.1f}")
    return ", ".join(out)


def smaps(pid: int) -> dict[str, float]:
    """PSS (MB) of one process by kind of mapping; and Private_Dirty of anon."""
    out = {"heap": 0, "anon": 0, "file": 0, "other": 0}
    big_anon = []
    kind, name, size = "other", "", 0
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split(None, 5)
            name = parts[5] if len(parts) > 5 else ""
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            size = hi - lo
            if name == "[heap]":
                kind = "heap"
            elif name == "":
                kind = "anon"
            elif name.startswith("/") and "(deleted)" not in name:
                kind = "file"
            else:
                kind = "other"
        elif line.startswith("Pss:"):
            kb = int(line.split()[1])
            out[kind] += kb
            if kind == "anon" and kb > 1024:
                big_anon.append((round(size / 2**20, 1), round(kb / 1024, 1)))
    res = {k: v / 1024 for k, v in out.items()}
    res["total"] = sum(res.values())
    res["big_anon"] = sorted(big_anon, key=lambda x: -x[1])[:12]
    return res


def probe_summary(pid: int) -> str:
    path = PROBE_DIR / f"{pid}.txt"
    for _ in range(100):
        if path.exists() and "</malloc>" in path.read_text():
            break
        time.sleep(0.05)
    else:
        return "(no probe answer)"
    text = path.read_text()
    lines = []
    m = re.search(r"sqlite3_memory_used (\d+) highwater (\d+)", text)
    if m:
        lines.append(f"sqlite heap {int(m[1]) / 2**20:.1f} MB (highwater {int(m[2]) / 2**20:.1f})")
    lines += [ln[:300] for ln in text.splitlines() if "pool:" in ln or ln.startswith(("allocated_blocks", "gc types"))]
    th = text.splitlines()[0]
    lines.append(th[:160])
    # obmalloc
    m = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
    m2 = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    m3 = re.search(r"Total\s*=\s*([\d,]+)", text)
    if m:
        lines.append(f"obmalloc: arenas {m[1]} (x1 MiB? see dump), in use {int(m2[1].replace(',', '')) / 2**20:.1f} MB,"
                     f" total {int(m3[1].replace(',', '')) / 2**20:.1f} MB")
    # glibc arenas
    for hm in re.finditer(r'<heap nr="(\d+)">(.*?)</heap>', text, re.S):
        body = hm[2]
        sysb = re.search(r'<system type="current" size="(\d+)"', body)
        tot = re.search(r'<total type="fast" count="\d+" size="(\d+)"/>\s*'
                        r'<total type="rest" count="(\d+)" size="(\d+)"', body)
        if sysb:
            free = (int(tot[1]) + int(tot[3])) if tot else 0
            lines.append(f"glibc arena {hm[1]}: system {int(sysb[1]) / 2**20:.1f} MB, free in it "
                         f"{free / 2**20:.1f} MB ({tot[2] if tot else '?'} free chunks)")
    m = re.search(r'<total type="mmap" count="(\d+)" size="(\d+)"', text)
    if m:
        lines.append(f"glibc mmapped blocks: {m[1]}, {int(m[2]) / 2**20:.1f} MB")
    return "\n      ".join(lines)


def report(b: bs.Bench, label: str, probe: bool) -> float:
    pids = bs.web_pids(b.server)
    if probe:
        for p in pids:
            (PROBE_DIR / f"{p}.txt").unlink(missing_ok=True)
            os.kill(p, signal.SIGPWR)
        time.sleep(0.5)
    total = 0.0
    print(f"--- {label}", flush=True)
    for i, p in enumerate(pids):
        s = smaps(p)
        if not s:
            continue
        total += s["total"]
        who = "master" if i == 0 else f"worker{i}"
        print(f"  {who} {p}: PSS {s['total']:.1f} MB = heap {s['heap']:.1f} + anon {s['anon']:.1f} + "
              f"file {s['file']:.1f} + other {s['other']:.1f}; big anon (MB size, MB pss) {s['big_anon']}")
        print("      " + rollup(p))
        if probe:
            print("      " + probe_summary(p))
    print(f"  total web PSS {total:.1f} MB", flush=True)
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="saves,concurrent,imports,spans,export")
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--concurrent-s", type=float, default=20)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = ap.parse_args()
    steps = args.steps.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="annotator-mem-"))
    b = bs.Bench(None, 2, tmp, None)
    for kv in args.env:
        k, v = kv.split("=", 1)
        b.env[k] = v
    if args.probe:
        shutil.rmtree(PROBE_DIR, ignore_errors=True)
        PROBE_DIR.mkdir()
        b.env["MEM_PROBE_DIR"] = str(PROBE_DIR)
    try:
        b.setup()
        b.server = (ProbeServer if args.probe else Server)(b.db, b.workers, b.env, None)
        b.server.start()
        b.lead().json("GET", "/api/v1/me")
        time.sleep(1.5)
        report(b, "fresh", args.probe)
        pid = b.project("Saves")
        status, _ = b.lead().call("POST", f"/api/v1/projects/{pid}/documents", bs.jsonl(make_docs(1000, seed=3)))
        assert status == 201
        b.settle()
        report(b, "after 1,000-document import", args.probe)
        if "saves" in steps:
            bs.row_saves(b, pid, 500, 3)
            b.settle()
            report(b, "after 3x500 saves", args.probe)
        if "concurrent" in steps:
            bs.row_concurrent(b, pid, args.concurrent_s, 3)
            b.settle()
            report(b, "after 8 concurrent clients x3", args.probe)
        if "imports" in steps:
            r = bs.row_import(b, 10_000, 3)
            b.settle()
            report(b, f"after 3 imports of 10,000 ({r['runs_s']})", args.probe)
        if "spans" in steps or "export" in steps:
            epid = b.project("Export")
            docs = make_docs(10_000, seed=1)
            for d in docs:
                d["spans"] = spans_for(d["text"], 5)
            status, _ = b.lead().call("POST", f"/api/v1/projects/{epid}/documents", bs.jsonl(docs))
            assert status == 201
            b.settle()
            report(b, "after import with spans (= bench's idle before export)", args.probe)
            time.sleep(3)
            report(b, "3 s later", False)
        if "export" in steps:
            for _ in range(3):
                status, data = b.lead().call(
                    "GET", f"/api/v1/projects/{epid}/export?format=jsonl&source=all&tokens=false")
                assert status == 200
            b.settle()
            report(b, "after 3 exports", args.probe)
        if args.probe:
            for sig, what in ((signal.SIGRTMIN + 1, "malloc_trim(0) in every process"),
                              (signal.SIGRTMIN + 2, "gc.collect() + malloc_trim(0) in every process")):
                for p in bs.web_pids(b.server):
                    os.kill(p, sig)
                time.sleep(1)
                report(b, what, sig == signal.SIGRTMIN + 2 and False)
                if sig == signal.SIGRTMIN + 2:
                    for p in bs.web_pids(b.server):
                        print(f"  {p} after gc: " + probe_summary(p))
            for p in bs.web_pids(b.server):
                gcf = PROBE_DIR / f"{p}.gc"
                if gcf.exists():
                    print(f"  {p} gc.collect() found: {gcf.read_text().strip()}")
    finally:
        if b.server:
            b.server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
