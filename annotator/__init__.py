"""annotator: text annotation for training data. ``create_app`` builds the web app.

Importing the package does nothing else: no Flask, no database, no spaCy. Its layers, each a
subpackage that imports only the ones below it (tests/test_layers.py holds them to it):

- ``core``: the rules, pure functions of their input (spans and offsets, agreement, formats,
  exporters, tokenizers, suggestions, errors); no Flask, no database;
- ``storage``: the database (tables, engines, migrations, locks, backup, the job queue);
- ``services``: the application's work over the database (annotating, importing, routing,
  honeypots, adjudication, reports, exports, tokenizing, training);
- ``web`` and ``cli``: the faces, the browser's pages with the JSON API, and the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: dict | None = None) -> Flask:
    """The Flask app (annotator.web.app.create_app)."""
    from annotator.web.app import create_app as _create_app

    return _create_app(overrides)
