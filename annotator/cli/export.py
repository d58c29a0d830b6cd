"""``annotator export``: training-ready files from a project (registered in cli.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from annotator.cli.base import AppContext, main
from annotator.core.errors import AnnotatorError


@main.command("export")
@click.argument("project")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "spacy", "conll", "hf"]), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: EXPORT_DIR/project-ID-SOURCE-FORMAT).")
@click.option("--source", default="all", show_default=True,
              help="best (to train on: gold, else majority, else import) | gold | import | majority "
                   "| all | annotator:NAME")
@click.option("--include-unfinished", is_flag=True, help="Also export in-progress annotations.")
@click.option("--dev", default=0.2, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Share of documents in the dev split (spacy, conll, hf).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the document split.")
@click.option("--min-aligned", default=0.99, show_default=True, type=click.FloatRange(0, 1),
              help="Refuse the export when, for any label, fewer spans align with tokens.")
@click.option("--no-tokens", is_flag=True, help="jsonl only: spans with character offsets, no tokens.")
@click.option("--provenance", is_flag=True,
              help="jsonl only: each span's origin (drawn by hand, or accepted from a suggestion).")
@click.pass_obj
def export_cmd(app: AppContext, project, fmt, out_dir, source, include_unfinished, dev, seed, min_aligned,
               no_tokens, provenance):
    """Export PROJECT (id or name) as jsonl, spacy (DocBin + config.cfg), conll or hf.

    Writes export-report.json next to the data: per-label alignment rates and
    every span that does not fall on token boundaries."""
    from annotator.core.exporters import ExportError, export
    from annotator.services.export_records import (
        TRAINING_SOURCE,
        check_provenance,
        export_labels,
        export_words,
        iter_records,
    )
    from annotator.services.projects import find_project

    with app.session() as s:
        p = find_project(s, project)
        if out_dir is None:
            out_dir = str(Path(app.config()["EXPORT_DIR"]) / f"project-{p.id}-{source.replace(':', '-')}-{fmt}")
        labels = export_labels(s, p)
        if provenance:
            check_provenance(fmt, source)
        try:
            report = export(iter_records(s, p, source, include_unfinished, tokens=not no_tokens,
                                         provenance=provenance), labels,
                            fmt, out_dir,
                            lang=p.language, words=export_words(p), dev=dev, seed=seed,
                            min_aligned=min_aligned, tokens=not no_tokens)
        except ExportError as e:
            report = e.report or {}
            raise AnnotatorError(str(e), None if report.get("refused") else report.get("misaligned")) from None
    rates = ", ".join(f"{k} {v['aligned']}/{v['total']}" for k, v in report["labels"].items()
                      if v["total"] and "aligned" in v)
    click.echo(f"Exported {report['records']} annotation(s) of {report['documents']} document(s) "
               f"from {p.name!r} as {fmt} into {out_dir}.")
    click.echo(f"Aligned spans: {rates or 'none'}; report: {out_dir}/export-report.json", file=sys.stderr)
    for name, info in report["files"].items():
        click.echo(f"  {name}\t{json.dumps(info)}")
    for note in report.get("notes") or ():
        click.echo(f"Note: {note}", file=sys.stderr)
    if source == "all" and fmt != "jsonl":
        click.echo("Note: --source all puts every annotator's copy of a document side by side; "
                   f"to train a model export --source {TRAINING_SOURCE} (gold, else majority, "
                   "else imported spans: one record per document).", file=sys.stderr)
    if fmt == "spacy":
        from annotator.core.exporters.docbin import training_command

        click.echo("Train it with:\n  " + training_command(out_dir, report["files"],
                                                            _python()))


def _python() -> str:
    """The Python this command runs in, as the user would type it: spaCy must run where
    annotator is installed (the Korean tokenizer is registered by it)."""
    import os
    import shutil

    exe, here = sys.executable, shutil.which("python")
    if here and os.path.realpath(here) == os.path.realpath(exe):
        return "python"
    short = os.path.relpath(exe)
    return exe if short.startswith("..") else short
