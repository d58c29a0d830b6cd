"""Every benchmark of the speed issue in one command; prints one table and writes JSON.

    python bench/run_all.py [--quick] [--runs 3] [--json bench/results/all.json]
                            [--db postgresql+psycopg://...EMPTY_DB] [--skip page,report,export]

- server rows (bench_server.py): the real server (``annotator serve``, gunicorn, 2 workers)
  started as a separate process on 127.0.0.1 with a fresh database, driven through the HTTP
  API with documents cut from the demo articles (emoji included);
- the annotate page on a 100,000-character document with 2,000 spans in headless Chromium
  (bench_page.py);
- the agreement report for 10,000 documents x 3 annotators through the API
  (bench_agreement_report.py);
- exports of 10,000 and 100,000 documents to jsonl and spacy, each in a fresh process, to
  show that peak memory does not grow with the number of documents (bench_export.py).

Rows are medians of ``--runs`` runs where a run is cheap (server rows, page opens); the
report and the 100,000-document exports run once. CPU seconds are shown beside wall time:
on a shared machine wall time also measures everybody else. ``--db`` runs the server rows
and the report on PostgreSQL (the URL must name an EMPTY, disposable database: its schema
is dropped). Whole suite: < 10 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

# The figures (doccano 1.8.4, Label Studio 1.23.2; 2-core machine, default SQLite,
# through their HTTP APIs, median of three clean runs).
PEERS = {
    "import": ("4.6 s", "3.1 s", "<= 0.3 s"),
    "save": ("11 / 24 ms", "88 / 112 ms", "<= 2 / 5 ms"),
    "concurrent": ("131 /s, 149 ms", "16 /s, 1,136 ms", ">= 1,000 /s, <= 30 ms"),
    "export": ("9.9 s", "14.7 s", "<= 0.5 s"),
    "export_mem": ("1,916 MB", "753 MB", "<= 150 MB"),
    "idle": ("516 MB", "260 MB", "<= 80 MB"),
    "cold": ("2.4 s", "3.4 s", "<= 0.7 s"),
}


def yes(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


def table(res: dict) -> list[tuple]:
    """(row, ours, CPU, doccano, Label Studio, target, met?)."""
    rows = []
    s = res.get("server")
    if s:
        imp, sv, cc, ex = s["import"], s["save"], s["concurrent"], s["export"]
        rows += [
            (f"import {imp['docs']:,} documents of ~2,000 chars (JSON Lines, {imp['body_mb']} MB)",
             f"{imp['s']:.2f} s", f"{imp['cpu_s']:.2f} s", *PEERS["import"], yes(imp["s"] <= 0.3)),
            (f"save one span annotation, {sv['saves']} in a row, p50 / p99",
             f"{sv['p50_ms']:.1f} / {sv['p99_ms']:.1f} ms", f"{sv['server_cpu_ms_per_save']:.2f} ms/save",
             *PEERS["save"], yes(sv["p50_ms"] <= 2 and sv["p99_ms"] <= 5)),
            (f"{cc['clients']} concurrent clients saving for {cc['seconds']:g} s: throughput, p99",
             f"{cc['per_s']:,.0f} /s, {cc['p99_ms']:.0f} ms",
             f"{cc['server_cpu_ms_per_save']:.2f} ms/save (+{cc['client_cpu_ms_per_save']:.2f} client)",
             *PEERS["concurrent"], yes(cc["per_s"] >= 1000 and cc["p99_ms"] <= 30)),
            (f"export {ex['docs']:,} documents with 5 spans each (jsonl, character offsets, "
             f"{ex['output_mb']} MB)", f"{ex['s']:.2f} s", f"{ex['cpu_s']:.2f} s", *PEERS["export"],
             yes(ex["s"] <= 0.5)),
            ("peak memory during that export (PSS, web processes)", f"{ex['peak_pss_mb']:.0f} MB",
             f"(idle before: {ex['pss_before_mb']:.0f} MB)", *PEERS["export_mem"], yes(ex["peak_pss_mb"] <= 150)),
            ("server memory at idle (PSS, all processes)", f"{s['idle_pss_mb']:.0f} MB", "", *PEERS["idle"],
             yes(s["idle_pss_mb"] <= 80)),
            ("cold start to first 200 (relaunch)", f"{s['cold_start_s']:.2f} s", "", *PEERS["cold"],
             yes(s["cold_start_s"] <= 0.7)),
        ]
        tk = s.get("tokenizer")
        if tk:
            rows.append((f"background tokenizer (Kiwi): import of {tk['docs']} Korean documents answers in",
                         f"{tk['import_s']:.2f} s", f"all tokenized after {tk['all_tokenized_after_s']:.0f} s; "
                         f"job {tk['job_cpu_s']:.0f} s CPU, {tk['job_peak_pss_mb']:.0f} MB, nice 19",
                         "", "", "import never waits", yes(tk["import_s"] < 1)))
        wj = s.get("while_jobs")
        if wj:
            idle = wj["idle"]
            for key, what in (("tokenizing", f"tokenizing a fresh import of {wj['import_docs']:,} documents"),
                              ("training", f"training on {wj['train_docs']} documents")):
                r = wj[key]
                rows.append((f"{r['clients']} clients saving while the background process is {what}",
                             f"{r['per_s']:,.0f} /s, {r['p99_ms']:.0f} ms",
                             f"idle: {idle['per_s']:,.0f} /s, {idle['p99_ms']:.0f} ms; ratio "
                             f"{r['throughput_ratio']:.2f}, p99 x{r['p99_ratio']:.2f}"
                             + ("" if r["still_running"] else " (job ended early)"),
                             "", "", ">= 0.8 x idle, p99 <= 2 x idle",
                             yes(r["throughput_ratio"] >= 0.8 and r["p99_ratio"] <= 2)))
    p = res.get("page")
    if p:
        rows.append((f"open a {p['chars']:,}-character document with {p['spans']:,} spans (Chromium)",
                     f"{p['open_ms']:.0f} ms", f"render after scripts {p['render_after_scripts_ms']:.0f} ms",
                     "", "", "", "-"))
        rows.append(("  label key -> highlight painted / Ctrl-Z / Tab", f"{p['label_key_to_paint_ms']:.0f} / "
                     f"{p['undo_to_paint_ms']:.0f} / {p['tab_to_paint_ms']:.0f} ms", "", "", "", "", "-"))
    r = res.get("report")
    if r:
        rows.append((f"agreement report, {r['docs']:,} documents x {r['annotators']} annotators (API)",
                     f"{r['s']:.2f} s", f"{r['server_cpu_s']:.2f} s; peak {r['peak_pss_mb']:.0f} MB",
                     "", "", "", "-"))
    ex = res.get("export_scaling")
    if ex:
        for fmt in sorted({e["format"] for e in ex}):
            runs = sorted((e for e in ex if e["format"] == fmt), key=lambda e: e["n"])
            small, big = runs[0], runs[-1]
            grows = big["peak_rss_mb"] > small["peak_rss_mb"] * 1.2 + 10
            rows.append((f"export {big['n']:,} documents to {fmt} (~{big['chars_per_doc']} chars, 5 spans; "
                         f"in-process)", f"{big['seconds']:.1f} s, peak {big['peak_rss_mb']} MB",
                         f"{big['cpu_s']:.1f} s; at {small['n']:,}: {small['seconds']:.1f} s, "
                         f"{small['peak_rss_mb']} MB", "", "", "memory flat in N", yes(not grows)))
    return rows


def print_table(rows: list[tuple]) -> None:
    head = ("row", "ours", "CPU", "doccano 1.8.4", "Label Studio 1.23.2", "target", "met?")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def markdown(rows: list[tuple]) -> str:
    head = ("job", "ours", "our CPU", "doccano 1.8.4", "Label Studio 1.23.2", "target", "met?")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default=str(HERE / "results" / "all.json"))
    ap.add_argument("--db", default=None, help="an EMPTY, disposable PostgreSQL database URL")
    ap.add_argument("--skip", default="", help="comma-separated: server, page, report, export")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    t_all = time.perf_counter()
    res: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick, "runs": args.runs,
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "load_avg_at_start": os.getloadavg()},
                 "database": "postgresql" if args.db else "sqlite", "timings_s": {}}

    def step(name: str, fn):
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        res[name] = fn()
        res["timings_s"][name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] done in {res['timings_s'][name]} s", file=sys.stderr, flush=True)

    from annotator.storage.db import reset_postgres

    if "server" not in skip:
        import bench_server

        if args.db:
            reset_postgres(args.db)
        step("server", lambda: bench_server.run(args.quick, args.runs, 2, args.db))
    if "page" not in skip:
        import bench_page

        ns = SimpleNamespace(chars=20_000 if args.quick else 100_000, spans=400 if args.quick else 2_000,
                             presses=5 if args.quick else 20, loads=args.runs, chromium=args.chromium)
        step("page", lambda: bench_page.run(ns))
    if "report" not in skip:
        import bench_agreement_report

        if args.db:
            reset_postgres(args.db)
        step("report", lambda: bench_agreement_report.run_http(1000 if args.quick else 10_000, 3, 1,
                                                               db=args.db))
    if "export" not in skip:
        import bench_export

        ns = [1000, 10_000] if args.quick else [10_000, 100_000]
        step("export_scaling", lambda: bench_export.run(ns, ["jsonl", "spacy"]))
    res["machine"]["load_avg_at_end"] = os.getloadavg()
    res["total_s"] = round(time.perf_counter() - t_all, 1)
    rows = table(res)
    res["table_markdown"] = markdown(rows)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2, ensure_ascii=False))
    print()
    print_table(rows)
    print(f"\n({res['database']}; {os.cpu_count()} CPUs; load average {res['machine']['load_avg_at_start'][0]:.1f} "
          f"at start, {res['machine']['load_avg_at_end'][0]:.1f} at end; total {res['total_s']:.0f} s; "
          f"JSON in {args.json})")


if __name__ == "__main__":
    main()
