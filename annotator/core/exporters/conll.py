"""``conll``: CoNLL-2003 style BIO over the project's tokens.

``train.conll`` / ``dev.conll``; each document starts with
``-DOCSTART- -X- -X- O`` and a blank line; one ``token -X- _ TAG`` line per
non-whitespace token; a blank line wherever the text has a line break
(sentences/paragraphs) and after each document.  Only entity-kind labels can be
expressed in BIO: span-kind spans (CLAIM) are counted in the report under
``not_exported``.  Tokens of an entity span that does not align get the tag
``-`` (missing, spaCy's convention), never ``O`` and never a stretched entity.
"""
from __future__ import annotations

import os
from pathlib import Path

from annotator.core.exporters._common import Prepared, bio_tags

DOCSTART = "-DOCSTART- -X- -X- O\n"


def conll_lines(p: Prepared):
    tags = bio_tags(p)
    yield DOCSTART
    yield "\n"
    pending = False  # a sentence has tokens not yet closed by a blank line
    for i, (s, e, _) in enumerate(p.toks):
        word = p.text[s:e]
        if word.isspace():
            if pending and ("\n" in word or "\r" in word):
                yield "\n"
                pending = False
            continue
        yield f"{word} -X- _ {tags[i]}\n"
        pending = True
    if pending:
        yield "\n"


class ConllExporter:
    split = True
    ext = "conll"

    def __init__(self, out_dir: Path, ctx):
        self.out_dir = Path(out_dir)
        self.ctx = ctx
        self.files = {}
        self.counts = {}
        for name in ("train", "dev"):
            path = self.out_dir / f".{name}.{self.ext}.part"
            self.files[name] = open(path, "w", encoding="utf8", newline="")
            self.counts[name] = 0

    def add(self, p: Prepared, split: str | None) -> None:
        f = self.files[split or "train"]
        for line in conll_lines(p):
            f.write(line)
        self.counts[split or "train"] += 1
        for s in p.spans:
            if s.kind != "entity":
                self.ctx.report.count_not_exported(s.label)

    def close(self) -> dict:
        out = {}
        for name, f in self.files.items():
            f.close()
            os.replace(self.out_dir / f".{name}.{self.ext}.part", self.out_dir / f"{name}.{self.ext}")
            out[f"{name}.{self.ext}"] = {"docs": self.counts[name]}
        return out

    def abort(self) -> None:
        for name, f in self.files.items():
            f.close()
            (self.out_dir / f".{name}.{self.ext}.part").unlink(missing_ok=True)
