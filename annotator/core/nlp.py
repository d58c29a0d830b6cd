"""Tokenisation for annotation snapping and export.

Korean attaches particles to nouns (``메타는`` = ``메타`` + ``는``), so a rule-based
tokenizer puts only about half of the entity mentions on token boundaries.  For
``lang == "ko"`` we segment with Kiwi (kiwipiepy) and cut the text at morpheme
boundaries taken from Kiwi's *surface positions*, never from morpheme forms, so
the text is always kept exactly (CRLF, NBSP, double spaces, emoji, NFD Hangul).

Heavy libraries (spaCy, Kiwi) are imported lazily inside functions: importing
this module costs nothing, and Kiwi (~3 s, ~0.5 GB) is loaded once per process
and per user-word list, on first use.

Public API
----------
``get_tokenizer_boundaries(text, lang, words=())``
    Non-whitespace token ``(start, end)`` code-point offsets (end exclusive),
    sorted, non-overlapping, covering every non-whitespace character.  This is
    what the annotation page snaps to and what the exporters use.
``doc_tokens(text, boundaries)``
    Expands boundaries into the full spaCy token list ``(start, end, ws)``,
    adding whitespace tokens the way spaCy does (a single space after a token is
    its ``whitespace_``; any other whitespace run becomes its own token).
``make_doc(vocab, text, boundaries)``
    A ``spacy.tokens.Doc`` whose ``doc.text == text``.
``make_nlp(lang, words=())``
    A blank spaCy pipeline; for ``ko`` its tokenizer is
    ``annotator.KoreanTokenizer.v1`` (registered in spaCy's registry and exposed
    through the ``spacy_tokenizers`` entry point, so ``spacy.load`` of a model
    trained on an export finds it wherever this package is installed).
"""

import bisect
import json
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence

KOREAN_TOKENIZER = "annotator.KoreanTokenizer.v1"

Boundaries = list[tuple[int, int]]

_WS = re.compile(r"\s+")
_HAS_WS = re.compile(r"\s")

# ---------------------------------------------------------------------------
# Kiwi, loaded lazily, cached per user-word list (each instance is ~0.5 GB,
# so only a few are kept).
# ---------------------------------------------------------------------------
_KIWI_CACHE_SIZE = 4
_kiwi_lock = threading.Lock()
_kiwis: "OrderedDict[tuple[str, ...], object]" = OrderedDict()


def _words_key(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({w.strip() for w in (words or ()) if w and w.strip()}))


def get_kiwi(words: Iterable[str] = ()):
    """The process-wide Kiwi analyser for this user-word list (loaded on first use)."""
    key = _words_key(words)
    with _kiwi_lock:
        kiwi = _kiwis.get(key)
        if kiwi is not None:
            _kiwis.move_to_end(key)
            return kiwi
        from kiwipiepy import Kiwi

        kiwi = Kiwi()
        for word in key:
            kiwi.add_user_word(word, "NNP")
        _kiwis[key] = kiwi
        while len(_kiwis) > _KIWI_CACHE_SIZE:
            _kiwis.popitem(last=False)
        return kiwi


# ---------------------------------------------------------------------------
# Boundary normalisation: shared by Kiwi output and by precomputed boundaries.
# ---------------------------------------------------------------------------
def _script(ch: str) -> str:
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F \
            or 0xA960 <= o <= 0xA97F or 0xD7B0 <= o <= 0xD7FF:
        return "H"
    if ch.isdigit():
        return "D"
    if ch.isalpha() and o < 0x0250:  # Basic Latin .. Latin Extended-B
        return "L"
    return "O"


def _split_scripts(text: str, start: int, end: int, out: Boundaries) -> None:
    """Append [start, end) split where Hangul meets Latin letters or digits.

    ``Scale AI는`` must give ``AI`` and ``는`` even if the analyser glued them.
    """
    cut = start
    prev = _script(text[start])
    for i in range(start + 1, end):
        cur = _script(text[i])
        if cur != prev and (prev == "H" or cur == "H") and "O" not in (prev, cur):
            out.append((cut, i))
            cut = i
        prev = cur
    out.append((cut, end))


def _fill_gap(text: str, start: int, end: int, out: Boundaries) -> None:
    """Tokens for characters no analyser token covered: split on whitespace,
    script switches, and put each punctuation/symbol character on its own."""
    for m in re.finditer(r"\S+", text[start:end]):
        s, e = start + m.start(), start + m.end()
        run = s
        for i in range(s, e):
            ch = text[i]
            if not (ch.isalnum() or unicodedata.category(ch)[0] == "M"):
                if run < i:
                    _split_scripts(text, run, i, out)
                out.append((i, i + 1))
                run = i + 1
        if run < e:
            _split_scripts(text, run, e, out)


def _is_clean(text: str, spans: Sequence[tuple[int, int]]) -> bool:
    """True when spans are sorted, non-overlapping, non-empty, whitespace-free
    and every gap between them is whitespace.

    Profiled at ~30% of a jsonl export with stored tokens when done token by token;
    now each test runs over all tokens at once in C (slicing via ``map``, one join)."""
    if not spans:
        return not text or text.isspace()
    try:
        starts = [s for s, _ in spans]
        ends = [e for _, e in spans]
    except (TypeError, ValueError):
        return False
    if starts[0] < 0 or ends[-1] > len(text):
        return False
    if not all(map(int.__lt__, starts, ends)) or not all(map(int.__le__, ends, starts[1:])):
        return False
    gaps = "".join(map(text.__getitem__, map(slice, [0] + ends, starts + [len(text)])))
    if gaps and not gaps.isspace():
        return False
    return _HAS_WS.search("".join(map(text.__getitem__, map(slice, starts, ends)))) is None


def normalise_boundaries(text: str, spans: Iterable[tuple[int, int]], split_scripts: bool = True) -> Boundaries:
    """Turn raw (possibly overlapping, empty, whitespace-crossing, incomplete)
    intervals into clean token boundaries.

    Overlapping intervals are merged (Kiwi reports contracted endings such as
    ``했`` = ``하`` + ``었`` at the same position), zero-length ones dropped,
    whitespace inside an interval splits it, uncovered non-space characters get
    their own tokens.  The result is sorted, non-overlapping and covers every
    non-whitespace character.
    """
    spans = spans if isinstance(spans, list) else list(spans)
    if not split_scripts and _is_clean(text, spans):  # fast path: stored boundaries, already clean
        return spans
    raw = sorted((max(0, int(s)), min(len(text), int(e))) for s, e in spans)
    merged: Boundaries = []
    for s, e in raw:
        if e <= s:
            continue
        if merged and s < merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
            continue
        merged.append((s, e))
    out: Boundaries = []
    prev = 0
    for s, e in merged:
        if s > prev:
            _fill_gap(text, prev, s, out)
        for m in re.finditer(r"\S+", text[s:e]):
            if split_scripts:
                _split_scripts(text, s + m.start(), s + m.end(), out)
            else:
                out.append((s + m.start(), s + m.end()))
        prev = e
    if prev < len(text):
        _fill_gap(text, prev, len(text), out)
    return out


def _nfc_map(text: str):
    """NFC text plus, for each of its characters, the (start, end) range in
    ``text`` it came from.  Kiwi only segments composed Hangul."""
    norm: list[str] = []
    src: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        piece = unicodedata.normalize("NFC", text[i:j])
        while j < n:
            longer = unicodedata.normalize("NFC", text[i:j + 1])
            if len(longer) != 1:
                break
            piece, j = longer, j + 1
        for ch in piece:
            norm.append(ch)
            src.append((i, j))
        i = j
    return "".join(norm), src


def _kiwi_boundaries(text: str, words: Iterable[str]) -> Boundaries:
    if not text:
        return []
    kiwi = get_kiwi(words)
    if unicodedata.is_normalized("NFC", text):
        raw = [(t.start, t.start + t.len) for t in kiwi.tokenize(text)]
    else:
        norm, src = _nfc_map(text)
        raw = []
        for t in kiwi.tokenize(norm):
            if t.len <= 0:
                continue
            raw.append((src[t.start][0], src[t.start + t.len - 1][1]))
    return normalise_boundaries(text, raw)


# ---------------------------------------------------------------------------
# spaCy side
# ---------------------------------------------------------------------------
def doc_tokens(text: str, boundaries: Sequence[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Full token list ``(start, end, ws)`` as a spaCy Doc built from these
    boundaries has it: a single ``" "`` after a token becomes its
    ``whitespace_`` (``ws=True``); any other whitespace run (``"\\n"``,
    ``"  "``, NBSP, ``"\\r\\n"``) becomes a whitespace token of its own."""
    out: list[tuple[int, int, bool]] = []
    append = out.append
    prev = 0
    last = None  # (start, end) of the previous token, not yet appended
    for s, e in boundaries:
        if last is not None:
            if s == prev + 1 and text[prev] == " ":  # the common case: one space between
                append((last[0], last[1], True))
            else:
                append((last[0], last[1], False))
                if s > prev:
                    _ws_run(text, prev, s, out)
        elif s > prev:
            _ws_run(text, prev, s, out)
        last = (s, e)
        prev = e
    if last is not None:
        append((last[0], last[1], False))
    if prev < len(text):
        _ws_run(text, prev, len(text), out)
    return out


def _ws_run(text, s, e, out):
    if out and text[s] == " " and not out[-1][2]:
        last = out[-1]
        out[-1] = (last[0], last[1], True)
        s += 1
    if s < e:
        out.append((s, e, False))


def make_doc(vocab, text: str, boundaries: Sequence[tuple[int, int]]):
    """A spaCy Doc with exactly these tokens; ``doc.text == text``."""
    from spacy.tokens import Doc

    toks = doc_tokens(text, boundaries)
    if not toks:
        return Doc(vocab, words=[], spaces=[])
    return Doc(vocab, words=[text[s:e] for s, e, _ in toks], spaces=[ws for _, _, ws in toks])


class KoreanTokenizer:
    """spaCy tokenizer backed by Kiwi; keeps the text exactly."""

    def __init__(self, vocab, user_words: Iterable[str] = ()):
        self.vocab = vocab
        self.user_words = list(_words_key(user_words))

    def __call__(self, text: str):
        return make_doc(self.vocab, text, _kiwi_boundaries(text, self.user_words))

    def pipe(self, texts, batch_size: int = 1000):
        for text in texts:
            yield self(text)

    # Serialisation: the only state is the user-word list.
    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return json.dumps({"user_words": self.user_words}, ensure_ascii=False).encode("utf8")

    def from_bytes(self, data: bytes, *, exclude=tuple()):
        if data:
            self.user_words = list(_words_key(json.loads(data.decode("utf8")).get("user_words", [])))
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        from pathlib import Path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())

    def from_disk(self, path, *, exclude=tuple()):
        from pathlib import Path

        path = Path(path)
        if path.is_file():
            self.from_bytes(path.read_bytes())
        return self


def create_korean_tokenizer(user_words: list[str] = []):  # noqa: B006 (spaCy registry signature)
    """spaCy registry function ``annotator.KoreanTokenizer.v1``."""
    words = list(user_words or [])

    def korean_tokenizer_factory(nlp):
        return KoreanTokenizer(nlp.vocab, words)

    return korean_tokenizer_factory


def register_tokenizer() -> None:
    """Register the tokenizer and the clause suggester in this process (the
    entry points do it for ``spacy.load`` when the package is installed)."""
    import spacy

    for registry, name, func in (
        (spacy.registry.tokenizers, KOREAN_TOKENIZER, create_korean_tokenizer),
        (spacy.registry.misc, CLAUSE_SUGGESTER, create_clause_suggester),
    ):
        try:
            registry.get(name)
        except Exception:  # catalogue.RegistryError: not installed as a package
            registry.register(name, func=func)


_nlp_lock = threading.Lock()
_nlps: dict = {}


def make_nlp(lang: str, words: Iterable[str] = ()):
    """A blank spaCy pipeline for ``lang`` (cached per (lang, words)).

    ``ko`` uses Kiwi through ``annotator.KoreanTokenizer.v1`` (spaCy's own
    Korean tokenizer needs MeCab and rewrites whitespace).  Other languages use
    ``spacy.blank(lang)``; ``words`` only matters for ``ko``.
    """
    key = (lang, _words_key(words) if lang == "ko" else ())
    with _nlp_lock:
        nlp = _nlps.get(key)
        if nlp is None:
            import spacy

            if lang == "ko":
                register_tokenizer()
                cfg = {"nlp": {"tokenizer": {"@tokenizers": KOREAN_TOKENIZER, "user_words": list(key[1])}}}
                nlp = spacy.blank("ko", config=cfg)
            else:
                nlp = spacy.blank(lang)
            _nlps[key] = nlp
        return nlp


def get_tokenizer_boundaries(text: str, lang: str, words: Iterable[str] = ()) -> Boundaries:
    """Token ``(start, end)`` code-point offsets, whitespace tokens excluded.

    Sorted, non-overlapping, covering every non-whitespace character of
    ``text``.  What the annotation page snaps to and what exports use.
    """
    if lang == "ko":
        return _kiwi_boundaries(text, words)
    nlp = make_nlp(lang)
    doc = nlp.make_doc(text)
    raw = [(t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
    return normalise_boundaries(text, raw, split_scripts=False)


def covering_tokens(boundaries: Sequence[tuple[int, int]], start: int, end: int) -> Boundaries:
    """Tokens overlapping [start, end) (boundaries sorted)."""
    starts = [s for s, _ in boundaries]
    i = max(0, bisect.bisect_right(starts, start) - 1)
    out = []
    while i < len(boundaries) and boundaries[i][0] < end:
        if boundaries[i][1] > start:
            out.append(boundaries[i])
        i += 1
    return out


# ---------------------------------------------------------------------------
# Span suggester for sentence-like spans (CLAIM).  spaCy's n-gram suggesters
# only propose short spans; claims are whole sentences or clauses of 10-60
# tokens, which n-grams up to that length would make far too expensive.
# ---------------------------------------------------------------------------
_SENT_END = frozenset(".?!。？！")
_CLAUSE_END = frozenset(",;:…，、–—")


def clause_segments(words: Sequence[str], is_space: Sequence[bool], max_clauses: int = 8) -> list[tuple[int, int]]:
    """Candidate (start, end) token ranges: every run of up to ``max_clauses``
    consecutive clauses inside one sentence.  Sentences end after ``. ? !``
    or at a whitespace token containing a line break; clauses end at
    ``, ; : …``.  A candidate ending at a clause break excludes the separator;
    one ending a sentence includes its final punctuation."""
    out: list[tuple[int, int]] = []
    sentence: list[tuple[int, int, int]] = []  # (start, end_without_sep, end_with_sep)
    start = None

    def close_sentence():
        for i in range(len(sentence)):
            for j in range(i, min(len(sentence), i + max_clauses)):
                s = sentence[i][0]
                out.append((s, sentence[j][1]))
                if sentence[j][2] != sentence[j][1]:
                    out.append((s, sentence[j][2]))
        sentence.clear()

    n = len(words)
    for k in range(n):
        if is_space[k]:
            if "\n" in words[k] or "\r" in words[k]:
                if start is not None:
                    sentence.append((start, k, k))
                    start = None
                close_sentence()
            continue
        if start is None:
            start = k
        w = words[k]
        if w and all(c in _SENT_END for c in w):
            sentence.append((start, k + 1, k + 1))
            start = None
            close_sentence()
        elif w and all(c in _CLAUSE_END for c in w):
            if k > start:
                sentence.append((start, k, k + 1))
            start = None
    if start is not None:
        sentence.append((start, n, n))
    close_sentence()
    return sorted(set(out))


def create_clause_suggester(max_clauses: int = 8):
    """spaCy registry function ``annotator.clause_suggester.v1`` (``@misc``)."""

    def clause_suggester(docs, *, ops=None):
        from thinc.api import get_current_ops
        from thinc.types import Ragged

        if ops is None:
            ops = get_current_ops()
        rows: list[tuple[int, int]] = []
        lengths = []
        for doc in docs:
            segs = clause_segments([t.text for t in doc], [t.is_space for t in doc], max_clauses)
            rows.extend(segs)
            lengths.append(len(segs))
        lengths_array = ops.asarray1i(lengths)
        if rows:
            return Ragged(ops.asarray2i(rows), lengths_array)
        return Ragged(ops.xp.zeros((0, 0), dtype="i"), lengths_array)

    return clause_suggester


CLAUSE_SUGGESTER = "annotator.clause_suggester.v1"
