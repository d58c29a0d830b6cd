"""Export throughput and peak memory, to show memory does not grow with N.

    python bench/bench_export.py                      # N = 10,000 and 100,000; jsonl and spacy
    python bench/bench_export.py --n 1000 --formats jsonl conll hf spacy

Documents are cut from the corpus articles (emoji and NBSP included) at token
boundaries, 5 spans each (4 entities + 1 CLAIM with a stance), with
precomputed token boundaries as the web app stores them.  The articles are
tokenised once with Kiwi in the parent; each (format, N) run happens in a
fresh child process that never loads Kiwi, so its ``ru_maxrss`` is the peak
of that export alone (read as VmHWM from /proc/self/status: ru_maxrss would
be inherited from the parent across fork+exec on Linux).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS = [
    {"name": "PERSON", "kind": "entity", "attributes": {}},
    {"name": "ORG", "kind": "entity", "attributes": {}},
    {"name": "MONEY", "kind": "entity", "attributes": {}},
    {"name": "CLAIM", "kind": "span",
     "attributes": {"stance": {"values": ["favor", "against", "neutral"], "required": True}}},
]


def tokenise_corpus(path: Path) -> None:
    from annotator.core import nlp

    arts = []
    for p in sorted((ROOT / "annotator" / "data" / "corpus").glob("*.txt")):
        with open(p, encoding="utf8", newline="") as f:
            text = f.read()
        arts.append({"name": p.stem, "text": text, "tokens": nlp.get_tokenizer_boundaries(text, "ko")})
    path.write_text(json.dumps(arts, ensure_ascii=False), encoding="utf8")


def records(arts: list, n: int, seed: int = 0):
    """Yield n records lazily (constant memory)."""
    rng = random.Random(seed)
    stances = ["favor", "against", "neutral"]
    for i in range(n):
        art = arts[i % len(arts)]
        toks = art["tokens"]
        k = rng.randint(60, 200)  # tokens per document
        a = rng.randrange(0, max(1, len(toks) - k))
        sel = toks[a:a + k]
        base = sel[0][0]
        text = art["text"][base:sel[-1][1]]
        tokens = [(s - base, e - base) for s, e in sel]
        picks = sorted(rng.sample(range(len(tokens)), 4))
        spans = [{"start": tokens[j][0], "end": tokens[j][1], "label": LABELS[m % 3]["name"], "attributes": {}}
                 for m, j in enumerate(picks)]
        c = rng.randrange(0, len(tokens) - 10)
        spans.append({"start": tokens[c][0], "end": tokens[c + 9][1], "label": "CLAIM",
                      "attributes": {"stance": stances[i % 3]}})
        yield {"document": {"id": i + 1, "external_id": f"{art['name']}#{i}", "text": text, "meta": {"i": i}},
               "source": "gold", "annotator": "gold", "status": "submitted", "spans": spans, "tokens": tokens}


def peak_rss_kb() -> int:
    """High-water RSS of this process in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(corpus: Path, fmt: str, n: int, out: Path) -> None:
    from annotator.core.exporters import export

    arts = json.loads(corpus.read_text("utf8"))
    rss0 = peak_rss_kb()
    chars = [0]

    def counted():
        for r in records(arts, n):
            chars[0] += len(r["document"]["text"])
            yield r

    t, c = time.perf_counter(), time.process_time()
    report = export(counted(), LABELS, fmt, out, lang="ko")
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    rss = peak_rss_kb()
    size = sum(p.stat().st_size for p in out.iterdir())
    print(json.dumps({"format": fmt, "n": n, "seconds": round(dt, 2), "cpu_s": round(cpu, 2),
                      "chars_per_doc": round(chars[0] / max(1, n)), "docs_per_s": round(n / dt),
                      "rss_before_mb": round(rss0 / 1024), "peak_rss_mb": round(rss / 1024),
                      "output_mb": round(size / 2**20, 1), "records": report["records"],
                      "aligned_rate": report["aligned_rate"]}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--formats", nargs="+", default=["jsonl", "spacy"])
    ap.add_argument("--child", nargs=3, metavar=("CORPUS", "FORMAT", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], int(args.child[2]), Path(args.out))
        return
    run(args.n, args.formats)


def run(ns: list[int], formats: list[str]) -> list[dict]:
    """Print one line per (format, N) and return the figures, for bench/run_all.py."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.json"
        # Kiwi (~0.5 GB) is loaded in a throwaway process, not here or in the runs.
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import bench_export; "
                "bench_export.tokenise_corpus(__import__('pathlib').Path(sys.argv[2]))")
        subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(corpus)], check=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
        print(f"{'format':6} {'N':>7} {'s':>7} {'docs/s':>7} {'peak RSS MB':>11} {'RSS before':>11} {'out MB':>7}")
        for fmt in formats:
            for n in ns:
                out = Path(tmp) / f"{fmt}-{n}"
                res = subprocess.run([sys.executable, __file__, "--child", str(corpus), fmt, str(n), "--out", str(out)],
                                     capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
                if res.returncode:
                    sys.exit(res.stderr)
                r = json.loads(res.stdout.strip().splitlines()[-1])
                results.append(r)
                print(f"{fmt:6} {n:>7} {r['seconds']:>7} {r['docs_per_s']:>7} {r['peak_rss_mb']:>11} "
                      f"{r['rss_before_mb']:>11} {r['output_mb']:>7}", flush=True)
                for p in out.iterdir():
                    p.unlink()
    return results


if __name__ == "__main__":
    main()
