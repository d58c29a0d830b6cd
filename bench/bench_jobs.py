"""Saves while the server's background process works (issue 12): 8 clients saving, idle, then
while it tokenizes a fresh import, then while it trains a model; the same row run_all.py prints.

    python bench/bench_jobs.py [--import-docs 10000] [--train-docs 300] [--seconds 20] [--runs 3]
                               [--db URL] [--json FILE]

The server is the real one (``annotator serve``, 2 workers, its background process) on a fresh
database; the documents are cut from the demo articles (common.make_docs), the training
documents carry made-up ORG spans (the model's quality is not what is measured here).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import Bench, jsonl, row_saves_while_jobs
from common import make_docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--import-docs", type=int, default=10_000)
    ap.add_argument("--train-docs", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", default=None, help="an EMPTY, disposable PostgreSQL database URL")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="annotator-bench-jobs-"))
    b = Bench(args.db, args.workers, tmp, None)
    try:
        b.setup()
        b.start()
        pid = b.project("Saves")
        status, data = b.lead().call("POST", f"/api/v1/projects/{pid}/documents",
                                     jsonl(make_docs(1100, seed=3)))
        assert status == 201, data[:300]
        res = row_saves_while_jobs(b, pid, args.import_docs, args.train_docs, args.seconds, args.runs)
    finally:
        if b.server:
            b.server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    idle = res["idle"]
    print(f"idle:        {idle['per_s']:,.0f} saves/s, p99 {idle['p99_ms']:.0f} ms")
    for key in ("tokenizing", "training"):
        r = res[key]
        print(f"{key + ':':12} {r['per_s']:,.0f} saves/s, p99 {r['p99_ms']:.0f} ms "
              f"(x{r['throughput_ratio']:.2f} throughput, x{r['p99_ratio']:.2f} p99"
              + ("" if r["still_running"] else "; the job ended before the clients") + ")")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
