"""``annotator patterns``: a project's spaCy-style patterns for suggestions (registered in
cli.py)."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from annotator.cli.base import AppContext, main


@main.command("patterns")
@click.argument("project")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--clear", is_flag=True, help="Remove the project's patterns.")
@click.pass_obj
def patterns_cmd(app: AppContext, project, file, clear):
    """Show PROJECT's patterns, or replace them by FILE (spaCy EntityRuler / SpanRuler JSON
    Lines: {"label": "ORG", "pattern": "Scale AI"} or a token pattern); all or nothing."""
    from annotator.services.assist import patterns_json, set_patterns
    from annotator.services.projects import find_project

    with app.session() as s:
        p = find_project(s, project)
        if file is None and not clear:
            out = patterns_json(p)
            for pat in out["items"]:
                click.echo(f"{pat['label']}\t{pat['pattern']!r}" if isinstance(pat["pattern"], str)
                           else f"{pat['label']}\t{pat['pattern']}")
            click.echo(f"{out['total']} patterns" + (f" ({out['version']})" if out["version"] else ""))
            return
        out = set_patterns(s, p, b"" if clear else Path(file).read_bytes())
        s.commit()
    click.echo(f"Project {p.name!r} now has {out['total']} patterns"
               + (f" ({out['version']})." if out["version"] else "."))


def _scores_lines(scores: dict) -> list[str]:
    """A trained version's held-out scores as a small table."""
    lines = [f"  {'label':<12} {'P':>6} {'R':>6} {'F':>6} {'support':>8}"]
    for label, sc in (scores.get("labels") or {}).items():
        lines.append(f"  {label:<12} {sc.get('p', 0):>6.2f} {sc.get('r', 0):>6.2f} "
                     f"{sc.get('f', 0):>6.2f} {sc.get('support', 0):>8}")
    overall = scores.get("overall") or {}
    if overall:
        lines.append(f"  {'overall':<12} {overall.get('p', 0):>6.2f} {overall.get('r', 0):>6.2f} "
                     f"{overall.get('f', 0):>6.2f}")
    curve = scores.get("curve") or []
    if curve:
        lines.append("  learning curve (held-out F1 by share of the training examples): "
                     + ", ".join(f"{round(c['share'] * 100)}% {c.get('f', 0):.2f}" for c in curve))
    for left in scores.get("left_out") or []:
        lines.append(f"  left out: {left}")
    return lines


def _foreground(app: AppContext, kind: str, project_id: int, params: dict) -> tuple[str, object]:
    """Run one job here and now (recorded in the queue table, for the lead's page), with its
    progress on stderr; pacing itself like the server's background process if a server runs."""
    from annotator.services.background import run_one
    from annotator.storage.db import Database, migrate
    from annotator.storage.inuse import holding
    from annotator.storage.jobs import Pacer, busy_path, claim, owner_id, start_now
    from annotator.storage.models import Job

    conf = app.config()
    url = conf["DATABASE_URL"]
    migrate(url)
    with holding(url, f"`annotator {kind}`"):
        db = Database(url)
        try:
            owner = owner_id()
            with db.session(write=False) as s:  # queued already (a trained first version's)
                found = [j.id for j in s.execute(select(Job).where(
                    Job.kind == kind, Job.project_id == project_id, Job.state == "queued"))
                    .scalars() if j.params == params]
            job = (claim(db, owner, found[0]) if found else None) or start_now(
                db, kind, project_id, params, owner)
            state = run_one(db, url, conf["DATA_DIR"], job, owner,
                            Pacer(busy_path(url, conf["DATA_DIR"])),
                            echo=lambda message: click.echo(f"  {message}", err=True))
            with db.session(write=False) as s:
                return state, s.get(Job, job.id)
        finally:
            db.dispose()


@main.command("train")
@click.argument("project")
@click.pass_obj
def train_cmd(app: AppContext, project):
    """Train PROJECT's next model version (spaCy NER, and a span categorizer for span labels
    once there are enough) from gold, else majority, else imported annotations; print its
    held-out scores; the first version then predicts every document (stored suggestions)."""
    import time

    from annotator.core.errors import AnnotatorError
    from annotator.services.learn import versions
    from annotator.services.projects import find_project

    with app.session() as s:
        p = find_project(s, project)
        before = (p.settings or {}).get("model")
    started = time.monotonic()
    state, job = _foreground(app, "train", p.id, {})
    if state != "done":
        keep = f"version {before} stays the one that suggests" if before else "no model suggests"
        raise AnnotatorError(f"training failed: {job.error} ({keep}).")
    result = job.result or {}
    with app.session() as s:
        found = {v["number"]: v for v in versions(s, find_project(s, project))}
    version = found[result["version"]]
    click.echo(f"Trained version {version['number']} of {p.name!r} in "
               f"{time.monotonic() - started:.1f} s on "
               + ", ".join(f"{n} {k}" for k, n in (result.get("documents") or {}).items() if n)
               + " documents. Held-out scores:")
    for line in _scores_lines(version["scores"]):
        click.echo(line)
    offered = version["offered_labels"]
    click.echo("  suggests " + (", ".join(offered) if offered else "no label yet")
               + " (a label suggests from a held-out precision of 0.8 over 5 predictions)")
    if result.get("active"):
        state, job = _foreground(app, "predict", p.id, {"version": version["number"]})
        if state != "done":
            raise AnnotatorError(f"predicting failed: {job.error}.")
        click.echo(f"Version {version['number']} suggests now: predictions stored for "
                   f"{(job.result or {}).get('documents', 0)} documents.")
    else:
        click.echo(f"Version {before} still suggests; to use this one: "
                   f"annotator models {project} --use {version['number']}")


@main.command("models")
@click.argument("project")
@click.option("--use", "use", type=int, default=None, help="Make this version the one that suggests.")
@click.option("--none", "none_", is_flag=True, help="No model suggests.")
@click.pass_obj
def models_cmd(app: AppContext, project, use, none_):
    """List PROJECT's trained model versions with their held-out scores, or choose the one that
    suggests (its predictions are then computed by the server's background process, or by
    `annotator train`'s next run)."""
    from annotator.services.learn import choose_version, versions
    from annotator.services.projects import find_project

    with app.session() as s:
        p = find_project(s, project)
        if use is not None or none_:
            choose_version(s, p, None if none_ else use)
            s.commit()
            click.echo(f"Project {p.name!r}: " + (f"version {use} suggests." if not none_
                                                  else "no model suggests."))
            return
        found = versions(s, p)
    if not found:
        click.echo("No model has been trained yet: annotator train " + project)
        return
    for v in found:
        overall = (v["scores"].get("overall") or {}).get("f")
        click.echo(f"v{v['number']}{' (suggests)' if v['active'] else ''}: from {v['source']}, "
                   f"{v['created_at'][:16]}, held-out F1 "
                   + (f"{overall:.2f}" if overall is not None else "-")
                   + f", predictions for {v['predicted_documents']} documents")
