"""The README and the manual in docs/ stay honest: every CLI command and option, every
configuration key and every API endpoint is documented on its page, every page is one click
from the README, and every link between them leads somewhere."""

import re
from pathlib import Path

import click
import pytest

from annotator.cli import main
from annotator.core.config import PREFIX, SETTINGS

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
CLI = (DOCS / "cli.md").read_text(encoding="utf-8")
CONFIG = (DOCS / "configuration.md").read_text(encoding="utf-8")
API = (DOCS / "api.md").read_text(encoding="utf-8")
PAGES = sorted(DOCS.glob("*.md"))


def commands(group: click.Group, prefix: str = "annotator"):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


def test_every_cli_command_is_in_the_cli_reference():
    missing = [c for c in commands(main) if f"`{c}" not in CLI]
    assert not missing, missing


def test_every_setting_is_in_the_configuration_page():
    missing = [PREFIX + key for key in SETTINGS if f"`{PREFIX}{key}`" not in CONFIG]
    assert not missing, missing


def test_readme_first_screen_has_exactly_two_setup_commands():
    first = README.split("---", 1)[0]
    block = first.split("```bash", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert [ln.split()[0] for ln in lines] == ["./scripts/demo", "./scripts/test"]


def test_every_cli_option_is_in_its_commands_row():
    """A new option (say `annotator export --provenance`) is written in its command's row."""
    rows = [line for line in CLI.splitlines() if line.startswith("| `annotator ")]
    missing = []
    for name in commands(main):
        row = [r for r in rows if r.startswith((f"| `{name} ", f"| `{name}`"))]
        cmd = main
        for part in name.split()[1:]:
            cmd = cmd.commands[part]
        for param in cmd.params:
            flags = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
            if isinstance(param, click.Option) and flags and not any(f in " ".join(row) for f in flags):
                missing.append(f"{name} {flags[0]}")
    assert not missing, missing


def test_every_api_endpoint_is_in_the_api_reference(app):
    """Each JSON API rule has a row `| `METHOD /api/v1/...` (ids as <pid>, <did>, <username>)."""
    rows = "\n".join(line for line in API.splitlines() if line.startswith("| `"))
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if f"`{method} {path}" not in rows:
                missing.append(f"{method} {path}")
    assert not missing, missing


def test_the_readme_is_a_front_page_and_every_manual_page_is_one_click_from_it():
    assert len(README.splitlines()) <= 150
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)", README))
    assert {f"docs/{p.name}" for p in PAGES} - linked == set()


def _links(text: str):
    """Relative Markdown links and images: (target, anchor)."""
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        yield path, anchor


def _anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "SECURITY.md", *PAGES], ids=lambda p: p.name)
def test_every_link_leads_somewhere(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for path, anchor in _links(text):
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{path}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target.read_text(encoding="utf-8")):
            broken.append(f"{path}#{anchor}: no such heading")
    assert broken == []
