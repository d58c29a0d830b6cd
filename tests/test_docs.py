"""The README stays honest: every CLI command and configuration key is documented."""

from pathlib import Path

import click

from annotator.cli import main
from annotator.config import PREFIX, SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "annotator"):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


def test_every_cli_command_is_in_the_readme():
    missing = [c for c in commands(main) if f"`{c}" not in README]
    assert not missing, missing


def test_every_setting_is_in_the_readme():
    missing = [PREFIX + key for key in SETTINGS if f"`{PREFIX}{key}`" not in README]
    assert not missing, missing


def test_readme_first_screen_has_exactly_two_setup_commands():
    first = README.split("---", 1)[0]
    block = first.split("```bash", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert [ln.split()[0] for ln in lines] == ["./scripts/demo", "./scripts/test"]


def test_every_cli_option_is_in_its_commands_readme_row():
    """A new option (say `annotator export --provenance`) is written in its command's row."""
    rows = [line for line in README.splitlines() if line.startswith("| `annotator ")]
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


def test_every_api_endpoint_is_in_the_readme(app):
    """Each JSON API rule has a row `| `METHOD /api/v1/...` (ids as <pid>, <did>, <username>)."""
    import re

    rows = "\n".join(line for line in README.splitlines() if line.startswith("| `"))
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if f"`{method} {path}" not in rows:
                missing.append(f"{method} {path}")
    assert not missing, missing
