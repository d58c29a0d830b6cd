"""Team commands: agreement report, adjudication, honeypots, team settings.

Registered on the `annotator` group by one import line at the end of cli.py.
"""

from __future__ import annotations

import json

import click

from annotator.cli.base import AppContext, main
from annotator.cli.commands import projects
from annotator.core.errors import AnnotatorError


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _actor(s, name: str | None):
    """The lead a command acts as (--by), or the system user 'gold' for automatic work."""
    from annotator.services.users import get_user, gold_user

    if name is None:
        return gold_user(s)
    user = get_user(s, name)
    if not user.is_lead:
        raise AnnotatorError(f"{name!r} is not a lead or an admin.")
    return user


def _document(s, project, ref: str):
    from sqlalchemy import select

    from annotator.storage.models import Document

    doc = s.execute(select(Document).where(Document.project_id == project.id,
                                           Document.external_id == ref)).scalar_one_or_none()
    if doc is None:
        raise AnnotatorError(f"Project {project.name!r} has no document with id {ref!r}.")
    return doc


def report_lines(report: dict) -> list[str]:
    """The agreement report as text for a terminal."""
    cov, proj = report["coverage"], report["project"]
    lines = [f"Project {proj['name']!r} (k={proj['k']}): {cov['documents']} documents, "
             f"{cov['with_2_or_more']} with 2+ annotators, {cov['with_1']} with 1, {cov['with_0']} with none",
             "Annotators: " + (", ".join(report["annotators"]) or "none")]
    for layer, data in report["layers"].items():
        tok = data["token"]
        fleiss = ", ".join(f"{k} annotators {_fmt(v['kappa'])}" for k, v in tok["fleiss_kappa"].items()) or "-"
        lines += ["", f"[{layer}] {', '.join(proj['layers'][layer])}",
                  f"  span F1 (mean over pairs): exact {_fmt(data['span_f1']['exact']['mean_over_pairs'])}"
                  f", overlap {_fmt(data['span_f1']['overlap']['mean_over_pairs'])}",
                  f"  Cohen's kappa (mean over pairs) {_fmt(tok['cohen_kappa']['mean_over_pairs'])}; "
                  f"Fleiss' kappa: {fleiss}; Krippendorff's alpha {_fmt(tok['krippendorff_alpha'])}"]
        if "stance" in data:
            st = data["stance"]
            lines.append(f"  stance: agreement {_fmt(st['percent_agreement'])}, alpha {_fmt(st['alpha'])}"
                         f" over {st['n_pairs']} matched claims")
        lines.append(f"  {'pair':<24} {'docs':>5} {'exact F1':>9} {'overlap F1':>11} {'kappa':>7}")
        for pair, entry in data["span_f1"]["exact"]["pairs"].items():
            lines.append(f"  {pair:<24} {entry['n_docs']:>5} {_fmt(entry['f1']):>9} "
                         f"{_fmt(data['span_f1']['overlap']['pairs'][pair]['f1']):>11} "
                         f"{_fmt(tok['cohen_kappa']['pairs'][pair]['kappa']):>7}")
    lines += ["", f"{'annotator':<16} {'docs':>5} {'median s':>9} {'spans/doc':>10} "
                  f"{'honeypot F1':>12} {'gold F1':>8} {'overruled':>10}"]
    for user, f in report["per_annotator"].items():
        hp, gold = f["honeypot"] or {}, f["gold"] or {}
        flag = " FLAGGED" if hp.get("flagged") else ""
        lines.append(f"{user:<16} {f['documents_done']:>5} {_fmt(f['median_seconds'], 1):>9} "
                     f"{_fmt(f['spans_per_document'], 2):>10} {_fmt(hp.get('f1')):>12} "
                     f"{_fmt(gold.get('f1')):>8} {_fmt(gold.get('overruled_spans')):>10}{flag}")
    lines += [""] + suggestion_lines(report["suggestions"])
    worst = [d for d in report["documents"] if d["disagreement"] is not None][:10]
    if worst:
        lines += ["", "Most disagreement (1 - mean overlap F1 over pairs and layers):"]
        lines += [f"  {d['external_id']:<32} {d['disagreement']:.3f}  {', '.join(d['annotators'])}" for d in worst]
    return lines


def _decimal(value) -> str:
    """A median with one decimal, whole or not (3 and 1.5 as 3.0 and 1.5), or "-"."""
    return "-" if value is None else f"{value:.1f}"


def suggestion_lines(sec: dict) -> list[str]:
    """The report's suggestion section as text, as the report page shows it: documents with
    suggestions beside those without, then per source and label (anchoring.py says what each
    figure is; an undefined one is "-", its reason in --json)."""
    arms = (sec["arms"]["with"], sec["arms"]["without"])
    lines = ["Suggestions: documents shown with them and without (control documents, honeypots, "
             "suggestions off)",
             f"  {'':<34} {'with':>8} {'without':>8}"]
    for name, cell in (("annotations", lambda a: str(a["annotations"])),
                       ("median seconds per document", lambda a: _decimal(a["median_seconds"])),
                       ("median entity spans per document", lambda a: _decimal(a["median_spans"])),
                       ("entity F1 against gold (exact)", lambda a: _fmt(a["gold"]["f1"], 2)),
                       ("  over annotations with gold", lambda a: str(a["gold_annotations"]))):
        lines.append(f"  {name:<34} {cell(arms[0]):>8} {cell(arms[1]):>8}")
    if not sec["sources"]:
        return lines + ["  No suggestion accepted or rejected in submitted work yet."]
    lines += ["  per source and label: acc, rej, ed = accepted, rejected, edited after accepting;",
              "  P, R = precision, recall against what people submitted (subm) and against gold",
              f"  {'source':<11} {'label':<12} {'acc':>4} {'rej':>4} {'ed':>4} {'acc.rate':>8} "
              f"{'ed.rate':>7} {'P subm':>6} {'P gold':>6} {'R subm':>6} {'R gold':>6}"]
    for source, data in sec["sources"].items():
        rows = [*data["labels"].items(), ("all labels", data["all"])]
        for i, (label, f) in enumerate(rows):
            lines.append(
                f"  {'' if i else source:<11} {label:<12} {f['accepted']:>4} {f['rejected']:>4} "
                f"{f['edited']:>4} {_fmt(f['acceptance_rate'], 2):>8} {_fmt(f['edit_rate'], 2):>7} "
                f"{_fmt(f['precision_submitted'], 2):>6} {_fmt(f['precision_gold'], 2):>6} "
                f"{_fmt(f['recall_submitted'], 2):>6} {_fmt(f['recall_gold'], 2):>6}")
    return lines


@main.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (as the API returns it).")
@click.pass_obj
def agreement(app: AppContext, project, as_json):
    """Inter-annotator agreement of PROJECT (id or name), from submitted annotations."""
    from annotator.services.projects import find_project
    from annotator.services.report import project_report

    with app.session() as s:
        report = project_report(s, find_project(s, project))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(report_lines(report)))


@main.command()
@click.argument("project")
@click.option("--auto", is_flag=True, help="Accept every unanimous, complete document into gold.")
@click.option("--by", "by", default=None, help="Lead to record as the adjudicator (default: the system user 'gold').")
@click.pass_obj
def adjudicate(app: AppContext, project, auto, by):
    """Adjudicate PROJECT into gold (--auto: all unanimous documents at once)."""
    from annotator.services.adjudication import auto_adjudicate
    from annotator.services.projects import find_project

    if not auto:
        raise AnnotatorError("Only --auto is done here; settle conflicts on the review page "
                             "(/documents/<id>/adjudicate) or with PUT /api/v1/documents/<id>/gold.")
    with app.session() as s:
        counts = auto_adjudicate(s, find_project(s, project), _actor(s, by))
    n = counts["accepted"]
    click.echo(f"{n} unanimous document{'' if n == 1 else 's'} accepted into gold; "
               f"{counts['not_unanimous']} not unanimous, {counts['incomplete']} incomplete, "
               f"{counts['already_gold']} already had gold.")


@projects.command("settings")
@click.argument("project")
@click.option("--k", type=int, default=None, help="Annotators per document.")
@click.option("--blind/--no-blind", default=None, help="Whether annotators see only their own work.")
@click.option("--reservation-minutes", type=int, default=None, help="Release untouched reservations after this.")
@click.option("--honeypot-rate", type=float, default=None,
              help="Share of an annotator's documents that are honeypots (0-1).")
@click.option("--honeypot-threshold", type=float, default=None, help="Flag annotators whose honeypot F1 is below this.")
@click.option("--honeypot-feedback/--no-honeypot-feedback", default=None,
              help="Whether annotators may see their own honeypot F1.")
@click.option("--suggestions", type=click.Choice(["on", "off"]), default=None,
              help="Whether annotators are shown suggestions (issue 12).")
@click.option("--control-share", type=float, default=None,
              help="Share of each annotator's documents shown without suggestions (0-1).")
@click.option("--order", type=click.Choice(["document", "uncertain"]), default=None,
              help="The queue's order: by document, or the model's least certain first.")
@click.pass_obj
def projects_settings(app: AppContext, project, **values):
    """Show or change PROJECT's team settings."""
    from annotator.services.projects import find_project
    from annotator.services.routing import team_settings, update_settings

    changes = {k: v for k, v in values.items() if v is not None}
    with app.session() as s:
        p = find_project(s, project)
        current = update_settings(s, p, changes) if changes else team_settings(p)
    click.echo(" ".join(f"{k}={v}" for k, v in current.items()))


@main.group()
def honeypots():
    """Gold-check documents mixed into annotators' queues."""


@honeypots.command("add")
@click.argument("project")
@click.argument("documents", nargs=-1, required=True)
@click.option("--reference", type=click.Choice(["gold", "import"]), default="gold", show_default=True,
              help="The reference: the document's gold, or the spans it was imported with.")
@click.option("--by", "by", default=None, help="Lead to record (default: the system user 'gold').")
@click.pass_obj
def honeypots_add(app: AppContext, project, documents, reference, by):
    """Mark DOCUMENTS (external ids) of PROJECT as honeypots."""
    from annotator.services import honeypots as hp
    from annotator.services.annotations import annotation_state
    from annotator.services.projects import find_project
    from annotator.services.users import get_user, gold_user
    from annotator.storage.models import IMPORT_USER

    with app.session() as s:
        p = find_project(s, project)
        actor = _actor(s, by)
        for ref in documents:
            doc = _document(s, p, ref)
            body = {}
            if reference == "import":
                imported = annotation_state(s, doc, get_user(s, IMPORT_USER))
                if imported["status"] != "submitted":
                    raise AnnotatorError(f"Document {ref!r} was imported without spans.")
                body = {"spans": imported["spans"], "version": annotation_state(s, doc, gold_user(s))["version"]}
            hp.mark(s, doc, actor, body)
    click.echo(f"Marked {len(documents)} honeypot document(s) in {p.name!r}.")


@honeypots.command("remove")
@click.argument("project")
@click.argument("documents", nargs=-1, required=True)
@click.pass_obj
def honeypots_remove(app: AppContext, project, documents):
    """Turn honeypot DOCUMENTS back into ordinary documents (their gold stays)."""
    from annotator.services import honeypots as hp
    from annotator.services.projects import find_project

    with app.session() as s:
        p = find_project(s, project)
        for ref in documents:
            hp.unmark(s, _document(s, p, ref))
    click.echo(f"Unmarked {len(documents)} document(s).")


@honeypots.command("list")
@click.argument("project")
@click.pass_obj
def honeypots_list(app: AppContext, project):
    """List PROJECT's honeypots and each annotator's F1 against them."""
    from annotator.services import honeypots as hp
    from annotator.services.projects import find_project
    from annotator.services.report import honeypot_scores

    with app.session() as s:
        p = find_project(s, project)
        items = hp.listing(s, p)
        scores = honeypot_scores(s, p)
    for item in items:
        click.echo(f"{item['external_id']}\t{item['reference_spans']} reference spans")
    for user, entry in scores.items():
        flag = "\tFLAGGED" if entry["flagged"] else ""
        click.echo(f"{user}\tF1 {_fmt(entry['f1'])}\tover {entry['documents']} document(s){flag}")
