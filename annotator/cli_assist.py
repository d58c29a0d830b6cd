"""``annotator patterns``: a project's spaCy-style patterns for suggestions (registered in
cli.py)."""
from __future__ import annotations

from pathlib import Path

import click

from .cli import AppContext, main


@main.command("patterns")
@click.argument("project")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--clear", is_flag=True, help="Remove the project's patterns.")
@click.pass_obj
def patterns_cmd(app: AppContext, project, file, clear):
    """Show PROJECT's patterns, or replace them by FILE (spaCy EntityRuler / SpanRuler JSON
    Lines: {"label": "ORG", "pattern": "Scale AI"} or a token pattern); all or nothing."""
    from .assist import patterns_json, set_patterns
    from .projects import find_project

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
