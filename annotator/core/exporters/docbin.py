"""``spacy``: ``train.spacy`` / ``dev.spacy`` DocBins plus a ready ``config.cfg``.

Entity-kind spans go to ``doc.ents``; span-kind spans (CLAIM) to
``doc.spans["sc"]`` labelled with their enumerated attributes
(``CLAIM_favor``).  An entity span that does not align with tokens is never
stretched: its tokens are marked *missing* in ``doc.ents`` (unknown to the
NER loss) and it is listed in the report.  A span-kind span that does not align
cannot be represented in ``doc.spans`` and is listed in the report (and counts
against ``min_aligned``).

Each split is written to ONE ``.spacy`` file by :class:`StreamingDocBin`, which
keeps no doc in memory: each doc's arrays are appended to temporary files and
the final msgpack+zlib blob (the exact structure ``DocBin.to_bytes``
produces, so ``DocBin().from_disk`` and ``spacy train`` read it) is assembled
by streaming through ``zlib.compressobj``.  Only the set of distinct strings
is held for the whole run.
"""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

from annotator.core import nlp as _nlp
from annotator.core.exporters._common import Prepared, missing_token_ranges

SPANS_KEY = "sc"
_COPY = 1 << 20


class StreamingDocBin:
    """Write-only DocBin with constant memory: ``add(doc)`` ... ``close()``.

    Does what ``DocBin.add`` does, but appends each doc's arrays and
    msgpack items to temporary files at once, and packs with one reused
    msgpack Packer: ``srsly.msgpack_dumps`` builds a new Packer per call, which
    rescans the whole function registry and the installed entry points
    (milliseconds per call, several calls per doc in ``DocBin.add``)."""

    def __init__(self, path):
        import numpy
        import srsly
        from spacy.attrs import SPACY
        from spacy.tokens import DocBin

        self._numpy = numpy
        self._SPACY = SPACY
        self._packer = srsly.msgpack.Packer(use_bin_type=True)
        self.path = Path(path)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=".docbin-", dir=self.path.parent))
        names = ("tokens", "spaces", "lengths", "cats", "flags", "span_groups")
        self.files = {n: open(self.tmpdir / n, "wb", buffering=_COPY) for n in names}
        self.count = 0
        self.strings: set[str] = set()
        ref = DocBin(store_user_data=False)
        self.attrs = list(ref.attrs)
        self.version = ref.version
        self._empty_groups = None
        self._string_cols = None
        self._seen_hashes: set[int] = set()

    def __len__(self) -> int:
        return self.count

    def _pack(self, obj) -> bytes:
        return self._packer.pack(obj)

    def span_groups_bytes(self, doc) -> bytes:
        """``doc.spans.to_bytes()``, byte for byte, with the reused packer."""
        if len(doc.spans) == 0:
            if self._empty_groups is None:
                self._empty_groups = doc.spans.to_bytes()
            return self._empty_groups
        msg: dict = {}
        for key, group in doc.spans.items():
            spans = [struct.pack(">QQQllll", sp.id, sp.kb_id, sp.label, sp.start, sp.end,
                                 sp.start_char, sp.end_char) for sp in group]
            gb = self._pack({"name": group.name, "attrs": group.attrs, "spans": spans})
            msg.setdefault(gb, []).append(key)
        return self._pack(msg)

    def add(self, doc) -> None:
        np, f = self._numpy, self.files
        array = doc.to_array(self.attrs)
        if len(array.shape) == 1:
            array = array.reshape((array.shape[0], 1))
        spaces = doc.to_array(self._SPACY).reshape((-1, 1))
        f["tokens"].write(np.ascontiguousarray(array, dtype="uint64").tobytes("C"))
        f["spaces"].write(np.asarray(spaces, dtype=bool).tobytes("C"))
        f["lengths"].write(struct.pack("=i", array.shape[0]))
        f["flags"].write(self._pack({"has_unknown_spaces": doc.has_unknown_spaces}))
        f["cats"].write(self._pack(doc.cats))
        f["span_groups"].write(self._pack(self.span_groups_bytes(doc)))  # a bin item, as in DocBin
        self._add_strings(doc, array)
        strings = self.strings
        for group in doc.spans.values():
            for span in group:
                strings.add(span.label_)
                if span.kb_id in span.doc.vocab.strings:
                    strings.add(span.kb_id_)
        self.count += 1

    def _add_strings(self, doc, array) -> None:
        """The strings ``DocBin.add`` collects (text, tag_, lemma_, norm_, morph, dep_,
        ent_type_, ent_kb_id_, ent_id_ of every token), found from the distinct hashes in
        the doc's array instead of token by token: profiled, the per-token loop (nine
        attribute lookups on a Token object made per token) was ~40% of a spacy export."""
        np = self._numpy
        if self._string_cols is None:
            from spacy.attrs import DEP, ENT_ID, ENT_KB_ID, ENT_TYPE, LEMMA, MORPH, NORM, ORTH, TAG

            wanted = (ORTH, TAG, LEMMA, NORM, MORPH, DEP, ENT_TYPE, ENT_KB_ID, ENT_ID)
            self._string_cols = [self.attrs.index(a) for a in wanted if a in self.attrs]
            missing = [a for a in wanted if a not in self.attrs]
            if missing:  # not with spaCy's DocBin attributes; keep the exact old way
                self._string_cols = []
        if not self._string_cols or len(doc) == 0:
            if len(doc) == 0:
                return
            for token in doc:
                self.strings.update((token.text, token.tag_, token.lemma_, token.norm_,
                                     str(token.morph), token.dep_, token.ent_type_,
                                     token.ent_kb_id_, token.ent_id_))
            return
        seen, store = self._seen_hashes, doc.vocab.strings
        new = [h for h in np.unique(array[:, self._string_cols]).tolist() if h not in seen]
        try:
            found = [store[h] for h in new]
        except KeyError:  # a hash the StringStore does not know: collect token by token
            self._string_cols, cols = [], self._string_cols
            self._add_strings(doc, array)
            self._string_cols = cols
            return
        seen.update(new)
        self.strings.update(found)

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        comp = zlib.compressobj()
        pack = self._pack
        tmp_out = self.path.with_name("." + self.path.name + ".part")
        with open(tmp_out, "wb") as out:
            def emit(b: bytes) -> None:
                out.write(comp.compress(b))

            def emit_file(name: str) -> None:
                with open(self.tmpdir / name, "rb") as fh:
                    while True:
                        block = fh.read(_COPY)
                        if not block:
                            break
                        emit(block)

            def size(name: str) -> int:
                return (self.tmpdir / name).stat().st_size

            emit(b"\x89")  # fixmap, 9 entries: the keys of DocBin.to_bytes
            emit(pack("version") + pack(self.version))
            emit(pack("attrs") + pack(self.attrs))
            for key in ("tokens", "spaces", "lengths"):
                emit(pack(key) + b"\xc6" + struct.pack(">I", size(key)))  # bin32 header
                emit_file(key)
            emit(pack("strings") + b"\xdd" + struct.pack(">I", len(self.strings)))  # array32 header
            for s in sorted(self.strings):
                emit(pack(s))
            for key in ("cats", "flags", "span_groups"):
                emit(pack(key) + b"\xdd" + struct.pack(">I", self.count))
                emit_file(key)
            out.write(comp.flush())
        os.replace(tmp_out, self.path)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def abort(self) -> None:
        for fh in self.files.values():
            fh.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def build_doc(vocab, p: Prepared, labelset):
    """The spaCy Doc of one prepared record (ents, missing tokens, span group)."""
    from spacy.tokens import Doc, Span

    text = p.text  # p.toks is what make_doc would compute again from p.boundaries
    doc = Doc(vocab, words=[text[a:b] for a, b, _ in p.toks], spaces=[ws for _, _, ws in p.toks])
    ents, groups = [], []
    for s in p.spans:
        if not s.aligned:
            continue
        if s.kind == "entity":
            ents.append(Span(doc, s.token_start, s.token_end + 1, label=s.label))
        else:
            groups.append(Span(doc, s.token_start, s.token_end + 1,
                               label=labelset.group_label(s.label, s.attributes)))
    missing = [Span(doc, a, b) for a, b in missing_token_ranges(p)]
    doc.set_ents(sorted(ents, key=lambda x: x.start), missing=missing, default="outside")
    if labelset.span_labels:
        doc.spans[SPANS_KEY] = groups
    return doc


def make_config(lang: str, words, with_ner: bool, with_spancat: bool, dev_path: str = "dev.spacy") -> str:
    """A CPU, no-vectors training config for ``ner`` (+ ``spancat``), naming the
    project's tokenizer for ``ko`` (and the clause suggester for spancat)."""
    from spacy.cli.init_config import init_config

    pipeline = (["ner"] if with_ner else []) + (["spancat"] if with_spancat else [])
    if not pipeline:
        pipeline = ["ner"]
    # spaCy's own "ko" defaults need MeCab; generate language-neutral, then patch.
    config = init_config(lang="xx" if lang == "ko" else lang, pipeline=pipeline,
                         optimize="efficiency", gpu=False, pretraining=False, silent=True)
    config["nlp"]["lang"] = lang
    if lang == "ko":
        config["nlp"]["tokenizer"] = {"@tokenizers": _nlp.KOREAN_TOKENIZER, "user_words": list(words)}
    config["paths"]["train"] = "train.spacy"
    config["paths"]["dev"] = dev_path
    if with_spancat:
        config["components"]["spancat"]["spans_key"] = SPANS_KEY
        config["components"]["spancat"]["suggester"] = {"@misc": _nlp.CLAUSE_SUGGESTER, "max_clauses": 8}
    return config.to_str()


def training_command(folder: str, files, python: str = "python") -> str:
    """The command that trains on a spaCy export in ``folder`` (as written: relative or
    absolute), from the folder that holds it; ``files``: the export's file names.
    spaCy reads the config's relative paths from the working directory, so they are given."""
    import shlex

    def at(name: str) -> str:
        return shlex.quote(f"{folder.rstrip('/')}/{name}")

    dev = "dev.spacy" if "dev.spacy" in files else "train.spacy"
    return (f"{shlex.quote(python)} -m spacy train {at('config.cfg')} --paths.train "
            f"{at('train.spacy')} --paths.dev {at(dev)} --output {at('model')}")


class SpacyExporter:
    """``train.spacy`` / ``dev.spacy`` and a ``config.cfg`` that ``spacy train`` runs as it is.

    Never an empty split with success: an export with no document in train (or, with a dev
    share, none in dev) is refused with what to do; ``dev=0`` writes no ``dev.spacy`` and the
    config evaluates on ``train.spacy``. A component whose labels have no example in
    ``train.spacy`` is left out of the config with a note (spaCy stops with E143 otherwise)."""

    split = True

    def __init__(self, out_dir: Path, ctx):
        self.out_dir = Path(out_dir)
        self.ctx = ctx
        self.vocab = _nlp.make_nlp(ctx.lang, ctx.words).vocab
        names = ("train", "dev") if ctx.dev > 0 else ("train",)
        self.bins = {name: StreamingDocBin(self.out_dir / f"{name}.spacy") for name in names}
        self.docs = {name: 0 for name in names}
        self.with_ents = {name: 0 for name in names}
        self.with_groups = {name: 0 for name in names}

    def add(self, p: Prepared, split: str | None) -> None:
        split = split or "train"
        doc = build_doc(self.vocab, p, self.ctx.labelset)
        self.docs[split] += 1
        self.with_ents[split] += any(s.kind == "entity" and s.aligned for s in p.spans)
        self.with_groups[split] += any(s.kind == "span" and s.aligned for s in p.spans)
        self.bins[split].add(doc)

    def refusal(self) -> str | None:
        """Why these files would not train (None: they do)."""
        total, dev = sum(self.docs.values()), self.ctx.dev
        what = f"{total} record(s) of {self.ctx.report.documents} document(s)"
        if total == 0:
            return ("Nothing to train on: no annotation was exported (only submitted ones count, "
                    "unless --include-unfinished). Annotate and submit documents, or choose "
                    "another --source.")
        if self.docs["train"] == 0:
            return (f"No document fell in the training split ({what}, dev share {dev}): lower "
                    f"--dev, or export more documents.")
        if dev > 0 and self.docs["dev"] == 0:
            return (f"No document fell in the dev split ({what}, dev share {dev}, seed "
                    f"{self.ctx.seed}): with this few documents use --dev 0 to train on all "
                    f"of them (config.cfg then evaluates on train.spacy), or another --seed, a "
                    f"larger --dev, or more documents.")
        if not self.with_ents["train"] and not self.with_groups["train"]:
            return ("No span in the training split: nothing to learn. Annotate spans, or "
                    "choose another --source.")
        return None

    def close(self) -> dict:
        files = {}
        for name, db in self.bins.items():
            db.close()
            files[f"{name}.spacy"] = {"docs": self.docs[name]}
        ls = self.ctx.labelset
        with_ner = bool(ls.entity_labels) and self.with_ents["train"] > 0
        with_spancat = bool(ls.span_labels) and self.with_groups["train"] > 0
        for on, labels, component in ((with_ner, ls.entity_labels, "ner"),
                                      (with_spancat, ls.span_labels, "spancat")):
            if labels and not on:
                self.ctx.report.notes.append(
                    f"{component} is left out of config.cfg: train.spacy has no "
                    f"{'/'.join(sorted(labels))} span to learn from (spaCy would stop with E143).")
        dev_path = "dev.spacy" if "dev" in self.bins else "train.spacy"
        if dev_path == "train.spacy":
            self.ctx.report.notes.append("--dev 0: no dev.spacy; config.cfg evaluates on "
                                         "train.spacy, so its scores are not held out.")
        cfg = make_config(self.ctx.lang, self.ctx.words, with_ner, with_spancat, dev_path)
        (self.out_dir / "config.cfg").write_text(cfg, encoding="utf8")
        files["config.cfg"] = {"components": (["ner"] if with_ner else [])
                               + (["spancat"] if with_spancat else [])}
        return files

    def abort(self) -> None:
        for db in self.bins.values():
            db.abort()
