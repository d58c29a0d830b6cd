"""``GET /api/v1/projects/<pid>/export``: a project's annotations as training data.

``format=jsonl`` (default) streams JSON Lines as they are produced (one read
transaction, constant memory; no alignment threshold since jsonl keeps every
span's character offsets).  ``format=spacy|conll|hf`` builds the files in a
temporary directory and streams them back as a zip (data files plus
``export-report.json``); when for some label fewer than ``min_aligned`` of the
spans fall on token boundaries the answer is 422 with the misaligned spans.

Query parameters: ``format``, ``source`` (all | best | gold | import | majority |
annotator:NAME), ``include_unfinished`` (1/true), ``dev``, ``seed``, ``report`` (1/true:
the export report as JSON, no files),
``min_aligned``, ``tokens`` (jsonl only; ``false``: no tokens, nothing tokenized),
``provenance`` (jsonl only; each span's ``origin``: drawn by hand or accepted from which
suggestion).
Leads and admins only.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from flask import Blueprint, Response, g, request

from annotator.core.errors import BadRequest, Invalid
from annotator.core.numbers import decimal
from annotator.services.export_records import (
    check_provenance,
    check_source,
    export_labels,
    export_words,
    iter_records,
)
from annotator.storage.models import Project
from annotator.web import db

bp = Blueprint("api_export", __name__, url_prefix="/api/v1")
FORMATS = ("jsonl", "spacy", "conll", "hf")
CHUNK = 1 << 16


def _float_arg(name: str, default: float, lo: float, hi: float, hi_open: bool = False) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    value = decimal(raw, lo, hi)
    if value is None or (hi_open and value == hi):
        bound = f"below {hi}" if hi_open else f"at most {hi}"
        raise Invalid(f"'{name}' must be a number from {lo} and {bound} (digits 0-9 and '.').",
                      [{"field": name, "reason": "not a number in range", "min": lo, "max": hi}])
    return value


def _bool_arg(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes", "on")


@bp.get("/projects/<int:pid>/export")
def export_project(pid: int):
    s = db.session()
    p = db.get_project_or_404(pid, g.user, lead=True)
    fmt = request.args.get("format", "jsonl")
    if fmt not in FORMATS:
        raise BadRequest(f"'format' must be one of {', '.join(FORMATS)}.", [{"field": "format"}])
    source = check_source(s, request.args.get("source", "all"))
    unfinished = _bool_arg("include_unfinished")
    labels, lang, words = export_labels(s, p), p.language, export_words(p)
    name = f"project-{p.id}-{source.replace(':', '-')}"

    tokens = request.args.get("tokens", "true").lower() not in ("0", "false", "no", "off")
    if not tokens and fmt != "jsonl":
        raise BadRequest("'tokens=false' is only for format=jsonl.", [{"field": "tokens"}])
    provenance = _bool_arg("provenance")
    if provenance:
        check_provenance(fmt, source)
    if _bool_arg("report"):
        return _report_only(s, p, fmt, source, unfinished, labels, lang, words, tokens, name)
    if fmt == "jsonl":
        from annotator.core.exporters import iter_jsonl

        database = db.get_db()

        def generate():
            # Its own read session: the request's is closed once the response starts.
            # Lines are sent in blocks of ~64 KiB: one write per line was a system call per
            # record in the server (profiled: a third of a 10,000-line export).
            with database.session(write=False) as rs:
                project = rs.get(Project, pid)
                block, size = [], 0
                records = iter_records(rs, project, source, unfinished, tokens=tokens,
                                       json_text=not tokens, provenance=provenance)
                for line in iter_jsonl(records, labels, lang, words, tokens=tokens):
                    if isinstance(line, str):
                        line = line.encode()
                    block.append(line)
                    size += len(line)
                    if size >= CHUNK:
                        yield b"".join(block)
                        block, size = [], 0
                if block:
                    yield b"".join(block)

        return Response(generate(), mimetype="application/x-ndjson",
                        headers={"Content-Disposition": f'attachment; filename="{name}.jsonl"'})

    from annotator.core.exporters import ExportError, export

    dev, seed, min_aligned = _split_args()
    tmp = Path(tempfile.mkdtemp(prefix="annotator-export-"))
    try:
        try:
            export(iter_records(s, p, source, unfinished), labels, fmt, tmp / "export", lang=lang,
                   words=words, dev=dev, seed=seed, min_aligned=min_aligned)
        except ExportError as e:
            report = e.report or {}
            raise Invalid(str(e), (report.get("misaligned") or [])[:200]) from None
        zpath = tmp / f"{name}.zip"
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted((tmp / "export").iterdir()):
                z.write(f, f"{name}/{f.name}")
        size = zpath.stat().st_size
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def stream():
        try:
            with open(zpath, "rb") as fh:
                while True:
                    block = fh.read(CHUNK)
                    if not block:
                        break
                    yield block
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    return Response(stream(), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}.zip"',
                             "Content-Length": str(size)})


def _split_args() -> tuple[float, int, float]:
    from annotator.web.api import int_arg

    return (_float_arg("dev", 0.2, 0.0, 1.0, hi_open=True), int_arg("seed", 0, 0, 2**31 - 1),
            _float_arg("min_aligned", 0.99, 0.0, 1.0))


def _report_only(s, p, fmt, source, unfinished, labels, lang, words, tokens, name):
    """``report=true``: the export report of these options, without the files (the export
    page shows it before the download): alignment per label, the misaligned spans, notes,
    and, when the export would be refused, why; for spacy the command that trains on the zip."""
    from annotator.core.exporters import ExportError, export
    from annotator.core.exporters.docbin import training_command

    dev, seed, min_aligned = _split_args()
    tmp = Path(tempfile.mkdtemp(prefix="annotator-export-report-"))
    try:
        try:
            report = export(iter_records(s, p, source, unfinished, tokens=tokens), labels, fmt,
                            tmp / "export", lang=lang, words=words, dev=dev, seed=seed,
                            min_aligned=None if fmt == "jsonl" else min_aligned, tokens=tokens)
        except ExportError as e:
            report = dict(e.report or {}, ok=False, error=str(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    filename = f"{name}.jsonl" if fmt == "jsonl" else f"{name}.zip"
    out = {"report": report, "filename": filename, "train_command": None}
    if fmt == "spacy" and report.get("ok"):
        out["train_command"] = f"unzip {filename}\n" + training_command(name, report["files"])
    return out
