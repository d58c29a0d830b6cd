"""The commands over the database, its users, projects and documents: thin click commands
over the services (annotator.services).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from annotator.cli.base import AppContext, main
from annotator.core.errors import AnnotatorError


@main.command()
@click.pass_obj
def init(app: AppContext):
    """Create or upgrade the database schema."""
    from annotator.storage.db import migrate

    url = app.config()["DATABASE_URL"]
    migrate(url)
    click.echo(f"Database ready: {url}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log", is_flag=True, help="Log every request to stdout.")
@click.pass_obj
def serve(app: AppContext, host, port, workers, access_log):
    """Serve the web app on a production WSGI server (gunicorn)."""
    from annotator.storage.db import migrate
    from annotator.web.server import run

    conf = app.config()
    migrate(conf["DATABASE_URL"])
    run(host, port, workers, {"DATABASE_URL": conf["DATABASE_URL"]}, access_log=access_log)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-serve", is_flag=True, help="Load the demo and exit.")
@click.option("--access-log", is_flag=True, help="Log every request to stdout.")
@click.pass_obj
def demo(app: AppContext, host, port, workers, no_serve, access_log):
    """Load the demo project (five Korean news articles), print log-ins, then serve."""
    from annotator.services.demo import load_demo
    from annotator.web.server import run

    with app.session(create=True) as s:
        project, passwords = load_demo(s)
    click.echo(f"Demo project: {project.name!r} (id {project.id})")
    for name, (role, pw) in passwords.items():
        said = (f"password: {pw}" if pw else
                f"kept, with its password (a new one: annotator users password {name})")
        click.echo(f"  {name:<8} {role:<10} {said}")
    click.echo(f"Data: {_where(app)} (kept when you stop; run the demo again to restart)")
    if not no_serve:
        click.echo(f"Open http://{host}:{port}/  (stop with Ctrl-C)")
        run(host, port, workers, {"DATABASE_URL": app.config()["DATABASE_URL"]}, access_log=access_log)


def _where(app: AppContext) -> str:
    from annotator.storage.db import sqlite_file

    url = app.config()["DATABASE_URL"]
    return sqlite_file(url) or url.split("@")[-1]


@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH when it exists.")
@click.pass_obj
def backup_cmd(app: AppContext, path, force):
    """Copy the live SQLite database to PATH, consistent while people work (PostgreSQL: pg_dump)."""
    from annotator.storage.backup import backup

    out = backup(app.config()["DATABASE_URL"], path, force=force)
    click.echo(f"Backed up {out['source']} to {out['path']} ({out['bytes']} bytes, "
               f"schema {out['revision']}, integrity ok).")


@main.command("restore")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace an existing database (a copy of it is kept).")
@click.pass_obj
def restore_cmd(app: AppContext, path, yes):
    """Replace the SQLite database by the backup PATH (the server must be stopped)."""
    from annotator.storage.backup import restore

    out = restore(app.config()["DATABASE_URL"], path, confirm=yes)
    if out["safety_copy"]:
        click.echo(f"Kept the previous database as {out['safety_copy']}.")
    migrated = f", migrated from schema {out['revision']} to {out['now']}" \
        if out["revision"] != out["now"] else ""
    click.echo(f"Restored {out['path']} from {out['from']}{migrated}.")


@main.group()
def users():
    """Manage users."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "lead", "annotator"]), default="annotator", show_default=True)
@click.option("--password", default=None, help="Prompted for when omitted.")
@click.pass_obj
def users_add(app: AppContext, name, role, password):
    """Add a user."""
    from annotator.services.users import create_user

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.session(create=True) as s:
        create_user(s, name, role, password)
    click.echo(f"Added {role} {name}.")


def _person(s, name: str, what: str):
    """The user NAME, refused when it is a built-in pseudo-user (which ``what``)."""
    from annotator.services.users import get_user

    user = get_user(s, name)
    if not user.is_person:
        raise AnnotatorError(f"{name!r} is a built-in pseudo-user and {what}.")
    return user


@users.command("password")
@click.argument("name")
@click.option("--password", default=None, help="Prompted for when omitted.")
@click.pass_obj
def users_password(app: AppContext, name, password):
    """Set NAME's password; every log-in session of NAME ends (API tokens stay)."""
    from annotator.services.users import set_password

    if password is None:  # before the session: no write lock held while someone types
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with app.session() as s:
        set_password(s, _person(s, name, "cannot log in"), password)
    click.echo(f"Set the password of {name}; every session of {name} was logged out.")


@users.command("list")
@click.pass_obj
def users_list(app: AppContext):
    """List users."""
    from sqlalchemy import select

    from annotator.storage.models import User

    with app.session() as s:
        for u in s.execute(select(User).order_by(User.id)).scalars():
            if u.is_person:
                click.echo(f"{u.username}\t{u.role}\t{'active' if u.active else 'inactive'}")


@users.command("token")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Revoke all of the user's tokens instead.")
@click.pass_obj
def users_token(app: AppContext, name, revoke):
    """Print a new API token for NAME (shown once; the last line is the token)."""
    from annotator.services.users import create_token, revoke_tokens

    with app.session() as s:
        user = _person(s, name, "cannot have tokens")
        if revoke:
            click.echo(f"Revoked {revoke_tokens(s, user)} token(s) of {name}.")
            return
        token = create_token(s, user)
    click.echo(f"New API token for {name} (store it now; it is not shown again):")
    click.echo(token)


@main.group()
def projects():
    """Manage projects."""


@projects.command("create")
@click.argument("name")
@click.option("--language", default="en", show_default=True, help="Language code, e.g. ko.")
@click.option("--k", default=2, show_default=True, type=int, help="Annotators per document.")
@click.option("--guidelines", type=click.Path(exists=True, dir_okay=False), help="Markdown file.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with a label set (default: the 'news' set).")
@click.pass_obj
def projects_create(app: AppContext, name, language, k, guidelines, labels_file):
    """Create a project."""
    from annotator.services.projects import create_project

    label_set = "news"
    if labels_file:
        try:
            label_set = json.loads(Path(labels_file).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise AnnotatorError(f"{labels_file} is not valid JSON (line {e.lineno}): {e.msg}.") from None
    text = Path(guidelines).read_text(encoding="utf-8") if guidelines else ""
    with app.session(create=True) as s:
        p = create_project(s, name, language=language, k=k, guidelines=text, label_set=label_set)
    click.echo(f"Created project {p.name!r} (id {p.id}).")


@projects.command("list")
@click.pass_obj
def projects_list(app: AppContext):
    """List projects with their document counts."""
    from sqlalchemy import func, select

    from annotator.storage.models import Document, Project

    with app.session() as s:
        counts = dict(s.execute(select(Document.project_id, func.count()).group_by(Document.project_id)).all())
        for p in s.execute(select(Project).order_by(Project.id)).scalars():
            click.echo(f"{p.id}\t{p.name}\t{p.language}\tk={p.k}\t{counts.get(p.id, 0)} documents")


@projects.command("words")
@click.argument("project")
@click.option("--add", "add", multiple=True, help="A word to add (repeatable).")
@click.option("--remove", "remove", multiple=True, help="A word to remove (repeatable).")
@click.pass_obj
def projects_words(app: AppContext, project, add, remove):
    """Show or change PROJECT's word list (names the tokenizer does not know)."""
    from annotator.services.projects import find_project
    from annotator.services.tokens import set_words, word_list

    with app.session() as s:
        p = find_project(s, project)
        words = word_list(p)
        if add or remove:
            words = set_words(s, p, [w for w in words + list(add) if w not in set(remove)])
    for w in words:
        click.echo(w)


@projects.command("members")
@click.argument("project")
@click.option("--add", "add", multiple=True, metavar="NAME",
              help="Make NAME a member (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="NAME",
              help="Remove member NAME (repeatable).")
@click.pass_obj
def projects_members(app: AppContext, project, add, remove):
    """List PROJECT's members, or add and remove some (all or nothing).

    Admins see every project without being members."""
    from annotator.services.members import add_members, members, remove_member
    from annotator.services.projects import find_project

    with app.session() as s:
        p = find_project(s, project)
        if add:
            add_members(s, p, list(add))
        for name in remove:
            remove_member(s, p, name)
        people = members(s, p)
    if add or remove:
        click.echo(f"{p.name!r} now has {len(people)} member(s).")
    for u in people:
        click.echo("\t".join([u.username, u.role] + ([] if u.active else ["inactive"])))


@main.command("import")
@click.argument("project")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["auto", "ours", "prodigy", "doccano", "conll"]),
              default="auto", show_default=True,
              help="auto: by file suffix and content (doccano and Prodigy JSONL are recognised).")
@click.option("--prodigy-answers", "answers", default="accept", show_default=True,
              help="Prodigy answers whose records keep their spans (comma-separated: accept, "
                   "reject, ignore); other records are imported without spans.")
@click.pass_obj
def import_cmd(app: AppContext, project, files, fmt, answers):
    """Import documents into PROJECT (id or name) from .txt, .jsonl, .csv or .conll files, with
    their spans if they carry any (all or nothing)."""
    from annotator.services.export_records import export_labels
    from annotator.services.importing import import_records, prodigy_answers, read_files
    from annotator.services.projects import find_project

    keep = prodigy_answers(answers)
    with app.session() as s:
        p = find_project(s, project)
        with click.progressbar(files, label="Reading", file=sys.stderr,
                               hidden=len(files) < 20) as bar:
            items, notes = read_files([(Path(path).name, Path(path).read_bytes()) for path in bar],
                                      fmt, export_labels(s, p), keep)
        result = import_records(s, p, items, app.config()["MAX_DOCUMENT_CHARS"])
    for note in notes:
        click.echo(note)
    click.echo(f"Imported {result['imported']} documents into {p.name!r} "
               f"({result['with_spans']} with annotations).")


@main.command("tokenize")
@click.argument("project", required=False)
@click.pass_obj
def tokenize_cmd(app: AppContext, project):
    """Store the tokens of every document that has none yet (of PROJECT, or of all projects).

    The server does this in the background after each import; this runs it in the foreground.
    """
    from annotator.services.projects import find_project
    from annotator.services.tokenize_job import run_job
    from annotator.storage.db import migrate

    conf = app.config()
    migrate(conf["DATABASE_URL"])
    pid = None
    if project:
        with app.session() as s:
            pid = find_project(s, project).id
    n = run_job(conf["DATABASE_URL"], conf["DATA_DIR"], pid)
    click.echo(f"Tokenized {n} documents.")

