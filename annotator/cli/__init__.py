"""The command line, `annotator ...`: ``base`` holds the group and what every command shares;
each module beside it registers its commands on the group (``commands``: database, users,
projects, documents; ``teams``: agreement, adjudication, honeypots; ``export``; ``assist``:
patterns, suggestions and the model)."""

from annotator.cli import assist, commands, export, teams  # noqa: F401  (each registers its commands)
from annotator.cli.base import main

__all__ = ["main"]
