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
