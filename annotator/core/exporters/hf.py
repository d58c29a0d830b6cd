"""``hf``: Hugging Face token-classification JSONL.

``train.jsonl`` / ``dev.jsonl`` with one ``{"id", "tokens", "ner_tags"}`` line
per exported annotation (non-whitespace tokens; ``ner_tags`` are indices into
``tags.json``, which lists ``O`` then ``B-``/``I-`` per entity label).  Tokens
of an entity span that does not align get ``-100`` (the ignore index of
PyTorch/transformers losses).  Span-kind spans (CLAIM) cannot be expressed and
are counted in the report under ``not_exported``.  ``id`` is the document key,
suffixed with ``@annotator`` for per-annotator exports.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import orjson

from annotator.core.exporters._common import Prepared, bio_tags, doc_key

IGNORE = -100


def hf_record(p: Prepared, tag_index: dict) -> dict:
    tags = bio_tags(p)
    tokens, ids = [], []
    for i, (s, e, _) in enumerate(p.toks):
        word = p.text[s:e]
        if word.isspace():
            continue
        tokens.append(word)
        ids.append(IGNORE if tags[i] == "-" else tag_index[tags[i]])
    key = doc_key(p.document)
    source = p.record.get("source") or ""
    if source.startswith("annotator:"):
        key = f"{key}@{p.record.get('annotator') or source.split(':', 1)[1]}"
    return {"id": key, "tokens": tokens, "ner_tags": ids}


class HfExporter:
    split = True

    def __init__(self, out_dir: Path, ctx):
        self.out_dir = Path(out_dir)
        self.ctx = ctx
        self.tag_index = {t: i for i, t in enumerate(ctx.labelset.bio_tags)}
        self.files, self.counts = {}, {}
        for name in ("train", "dev"):
            self.files[name] = open(self.out_dir / f".{name}.jsonl.part", "w", encoding="utf8", newline="")
            self.counts[name] = 0

    def add(self, p: Prepared, split: str | None) -> None:
        name = split or "train"
        self.files[name].write(orjson.dumps(hf_record(p, self.tag_index)).decode() + "\n")
        self.counts[name] += 1
        for s in p.spans:
            if s.kind != "entity":
                self.ctx.report.count_not_exported(s.label)

    def close(self) -> dict:
        out = {}
        for name, f in self.files.items():
            f.close()
            os.replace(self.out_dir / f".{name}.jsonl.part", self.out_dir / f"{name}.jsonl")
            out[f"{name}.jsonl"] = {"records": self.counts[name]}
        tags = {"tags": self.ctx.labelset.bio_tags, "ignore_index": IGNORE}
        (self.out_dir / "tags.json").write_text(json.dumps(tags, ensure_ascii=False, indent=1) + "\n",
                                                encoding="utf8")
        out["tags.json"] = {}
        return out

    def abort(self) -> None:
        for name, f in self.files.items():
            f.close()
            (self.out_dir / f".{name}.jsonl.part").unlink(missing_ok=True)
