"""Tokenizer: exact text, clean boundaries, Korean particles split, spaCy
integration (registry, serialisation), clause suggester, lazy imports."""
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from annotator.core import nlp

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted((ROOT / "annotator" / "data" / "corpus").glob("*.txt"))
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("annotated-*.jsonl"))


def read_exact(path):
    with open(path, encoding="utf8", newline="") as f:
        return f.read()


def assert_clean(text, bounds):
    """Sorted, non-overlapping, non-empty, whitespace-free, and every
    non-whitespace character covered."""
    prev = 0
    for s, e in bounds:
        assert prev <= s < e <= len(text), (prev, s, e)
        assert not any(c.isspace() for c in text[s:e]), repr(text[s:e])
        assert text[prev:s].strip() == "" or text[prev:s].isspace(), repr(text[prev:s])
        prev = e
    assert text[prev:].strip() == ""
    covered = sum(e - s for s, e in bounds)
    assert covered == sum(1 for c in text if not c.isspace())


EDGE = [
    "메타는 Scale AI는 143억달러를 썼다.\r\n알렉산드르 왕이라는  이름",
    "윤슬\u00a0기자\u00a0\u00a0메타\u3000구글\t애플",
    unicodedata.normalize("NFD", "메타는 좋다. 왕은  했었어요"),
    "NFC 메타" + unicodedata.normalize("NFD", "메타는") + " 혼합",
    "👩‍👩‍👧‍👦 가족은 😀📷 Bloomberg / Getty Images 👍🏽",
    "  앞뒤 공백  \n\n",
    "\r\n\r\n",
    "",
    " ",
    "a\u2028b\u0085c",
    "Meta-Scale 오큘러스/Carmack 과학기술정책실)국장 (+AI 전략가의 여정)",
    "e\u0301tude 한국어",  # combining mark
]


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_text_exact_and_boundaries_clean(path):
    text = read_exact(path)
    bounds = nlp.get_tokenizer_boundaries(text, "ko")
    assert_clean(text, bounds)
    doc = nlp.make_nlp("ko")(text)
    assert doc.text == text
    assert [(t.idx, t.idx + len(t)) for t in doc if not t.is_space] == bounds


def test_corpus_has_the_hard_cases():
    texts = [read_exact(p) for p in CORPUS]
    assert any(any(ord(c) > 0xFFFF for c in t) for t in texts), "an article with emoji"
    assert any("\u00a0" in t for t in texts), "an article with NBSP"
    assert any("  " in t for t in texts), "an article with double spaces"


@pytest.mark.parametrize("text", EDGE, ids=range(len(EDGE)))
def test_edge_strings_text_exact(text):
    bounds = nlp.get_tokenizer_boundaries(text, "ko")
    assert_clean(text, bounds)
    doc = nlp.make_nlp("ko")(text)
    assert doc.text == text
    assert doc.text_with_ws == text


def tokens(text, lang="ko", words=()):
    return [text[s:e] for s, e in nlp.get_tokenizer_boundaries(text, lang, words)]


def test_particles_split_from_nouns():
    toks = tokens("메타는 알렉산드르 왕이라는 이름에 Scale AI는 143억달러를 썼다.")
    for t in ("메타", "는", "알렉산드르", "왕", "Scale", "AI", "이름", "143", "달러", "."):
        assert t in toks, (t, toks)
    assert "메타는" not in toks and "AI는" not in toks


def test_script_switch_guard_on_glued_tokens():
    # precomputed boundaries that glue Latin and Hangul get split
    text = "Scale AI는 좋다"
    assert [text[s:e] for s, e in nlp.normalise_boundaries(text, [(0, 5), (6, 9), (10, 12)])] == \
        ["Scale", "AI", "는", "좋다"]


def test_nfd_hangul_cut_at_particles():
    text = unicodedata.normalize("NFD", "메타는 왕에게")
    toks = [unicodedata.normalize("NFC", t) for t in tokens(text)]
    assert toks[:2] == ["메타", "는"]


def test_overlapping_and_empty_morphemes_are_merged():
    # Kiwi reports 했 as 하 + 었 at the same position, and zero-length copulas
    text = "했었어요 그것이다"
    raw = [(0, 1), (0, 2), (2, 4), (5, 7), (7, 7), (7, 8), (8, 9)]
    assert [text[s:e] for s, e in nlp.normalise_boundaries(text, raw)] == ["했었", "어요", "그것", "이", "다"]
    # gaps are filled, whitespace inside a raw interval splits it
    assert [text[s:e] for s, e in nlp.normalise_boundaries(text, [(0, 6)])] == ["했었어요", "그", "것이다"]


def test_user_words_change_segmentation_and_are_cached_per_list():
    text = "메타슈퍼인텔리전스를 만들었다"
    assert tokens(text)[0] != "메타슈퍼인텔리전스"
    assert tokens(text, words=["메타슈퍼인텔리전스"])[:2] == ["메타슈퍼인텔리전스", "를"]
    assert nlp.get_kiwi(["b", "a"]) is nlp.get_kiwi(("a", "b", "a"))
    assert nlp.get_kiwi(()) is not nlp.get_kiwi(["a"])


def test_whitespace_tokens_like_spacy():
    text = "메타는  좋다\n구글\u00a0애플 끝"
    toks = nlp.doc_tokens(text, nlp.get_tokenizer_boundaries(text, "ko"))
    words = [(text[s:e], ws) for s, e, ws in toks]
    assert ("는", True) in words and (" ", False) in words  # double space: one absorbed, one token
    assert ("\n", False) in words and ("\u00a0", False) in words
    assert ("애플", True) in words


def test_non_korean_language_uses_spacy_blank():
    text = "Hello, world!  It's fine."
    b = nlp.get_tokenizer_boundaries(text, "en")
    assert [text[s:e] for s, e in b] == ["Hello", ",", "world", "!", "It", "'s", "fine", "."]
    assert nlp.make_nlp("en")(text).text == text


def test_rule_based_tokenizer_misses_particles():
    """The measured background: spaCy's rule-based tokenizer keeps particles on."""
    import spacy

    rb = spacy.blank("ko", config={"nlp": {"tokenizer": {"@tokenizers": "spacy.Tokenizer.v1"}}})
    assert [t.text for t in rb("메타는 좋다")][0] == "메타는"


def test_tokenizer_registered_and_serialises(tmp_path):
    import spacy

    words = ["메타슈퍼인텔리전스", "알렉산드르왕"]
    nlp_ko = nlp.make_nlp("ko", words)
    assert nlp_ko.config["nlp"]["tokenizer"]["@tokenizers"] == nlp.KOREAN_TOKENIZER
    assert spacy.registry.tokenizers.get(nlp.KOREAN_TOKENIZER) is not None
    nlp_ko.to_disk(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "tokenizer").read_text("utf8"))["user_words"] == sorted(words)
    loaded = spacy.load(tmp_path / "m")
    assert isinstance(loaded.tokenizer, nlp.KoreanTokenizer)
    assert sorted(loaded.tokenizer.user_words) == sorted(words)
    doc = loaded("메타슈퍼인텔리전스를 만들었다")
    assert doc[0].text == "메타슈퍼인텔리전스"
    tok = nlp.KoreanTokenizer(loaded.vocab)
    tok.from_bytes(loaded.tokenizer.to_bytes())
    assert tok.user_words == sorted(words)


def test_clause_suggester_proposes_every_fixture_claim():
    import spacy

    suggest = nlp.create_clause_suggester()
    nlp_ko = nlp.make_nlp("ko")
    n_claims = 0
    for path in FIXTURES:
        rec = json.loads(path.read_text("utf8"))
        doc = nlp_ko(rec["text"])
        ragged = suggest([doc])
        cands = {(doc[int(a)].idx, doc[int(b) - 1].idx + len(doc[int(b) - 1])) for a, b in ragged.dataXd}
        assert len(cands) < len(doc), "suggester stays cheap (fewer candidates than tokens)"
        for sp in rec["spans"]:
            if sp["label"] == "CLAIM":
                n_claims += 1
                assert (sp["start"], sp["end"]) in cands, rec["text"][sp["start"]:sp["end"]]
    assert n_claims >= 10
    assert spacy.registry.misc.get(nlp.CLAUSE_SUGGESTER) is not None


def test_importing_annotator_modules_loads_neither_spacy_nor_kiwi():
    code = ("import sys, annotator.core.nlp, annotator.core.exporters, annotator.core.formats; "
            "bad = [m for m in ('spacy', 'kiwipiepy', 'thinc', 'numpy') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
