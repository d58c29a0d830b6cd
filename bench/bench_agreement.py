"""Benchmark agreement_report on synthetic data.

Usage: python bench/bench_agreement.py [n_docs] [n_annotators]
Defaults: 10,000 documents x 3 annotators, ~2,000 characters and ~5 spans each.
Prints generation time, report time and peak memory (tracemalloc for Python
allocations incl. numpy, ru_maxrss for the whole process).
"""

from __future__ import annotations

import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotator.core.agreement import agreement_report

WORDS = ("the of and to in a is that for it as was with be by on not he this are or "
         "Acme Corp Globex Initech Bob Smith Alice Jones paid million dollars $ 5 , . "
         "메타가 선택한 남자 알렉산드르 왕은 성공할 수 있을까").split()
LABELS = ["PERSON", "ORG", "MONEY", "CLAIM"]
STANCES = ["favor", "against", "neutral"]


def make_docs(n_docs: int, users: list[str], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        parts, size = [], 0
        while size < 2000:
            w = rng.choice(WORDS)
            parts.append(w)
            size += len(w) + 1
        text = " ".join(parts)[:2000]
        gold = []
        for _ in range(5):
            s = rng.randrange(len(text) - 60)
            label = rng.choice(LABELS)
            e = s + (rng.randint(20, 60) if label == "CLAIM" else rng.randint(2, 15))
            attrs = {"stance": rng.choice(STANCES)} if label == "CLAIM" else {}
            gold.append({"start": s, "end": e, "label": label, "attributes": attrs})
        anns = {}
        for u in users:
            spans = []
            for g in gold:
                if rng.random() < 0.1:
                    continue
                g = dict(g)
                if rng.random() < 0.2:
                    g["end"] = max(g["start"] + 1, g["end"] + rng.randint(-3, 3))
                if g["label"] == "CLAIM" and rng.random() < 0.2:
                    g["attributes"] = {"stance": rng.choice(STANCES)}
                spans.append(g)
            anns[u] = spans
        docs.append({"id": d, "text": text, "annotations": anns})
    return docs


def main() -> None:
    n_docs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    n_users = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    users = [f"user{k}" for k in range(n_users)]
    t0 = time.perf_counter()
    docs = make_docs(n_docs, users)
    t1 = time.perf_counter()
    n_chars = sum(len(d["text"]) for d in docs)
    n_spans = sum(len(s) for d in docs for s in d["annotations"].values())
    print(f"generated {n_docs} docs x {n_users} annotators: {n_chars:,} chars, "
          f"{n_spans:,} spans in {t1 - t0:.2f} s")

    # wall time without tracemalloc (its hooks slow Python allocations ~5x);
    # best of 3 because shared machines are noisy
    times, cpu = [], []
    for _ in range(3):
        t2, c2 = time.perf_counter(), time.process_time()
        report = agreement_report(docs)
        times.append(time.perf_counter() - t2)
        cpu.append(time.process_time() - c2)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    agreement_report(docs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"agreement_report: best {min(times):.2f} s wall, {min(cpu):.2f} s CPU; wall runs "
          + ", ".join(f"{t:.2f}" for t in times))
    print(f"peak traced memory during report: {peak / 2**20:.1f} MiB; "
          f"process max RSS (incl. the generated input): {rss:.0f} MiB")
    ent = report["layers"]["entity"]
    pair = f"{users[0]}|{users[1]}"
    print(f"entity: overlap F1 mean {ent['span_f1']['overlap']['mean_over_pairs']:.4f}, "
          f"alpha {ent['token']['krippendorff_alpha']:.4f}, "
          f"tokens per pair {ent['token']['cohen_kappa']['pairs'][pair]['n_tokens']:,}")


if __name__ == "__main__":
    main()
