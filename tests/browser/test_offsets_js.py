"""static/js/offsets.js in the real browser: UTF-16 <-> code points, snapping and trimming.

Python's str indices are the truth: every offset the page sends must equal them.
"""

from __future__ import annotations

import pytest
from conftest import corpus_text

from browser.conftest import STATIC

MIXED = "📰 Sync Letter\r\n메타는 e\u0301te café 👩\u200d💻 dev\r\n\u00a0 x 😀😀y\u3000끝"


def u16(text: str, cp: int) -> int:
    return len(text[:cp].encode("utf-16-le")) // 2


@pytest.fixture
def js(page):
    page.set_content("<!doctype html><meta charset=utf-8><title>offsets</title>")
    page.add_script_tag(path=str(STATIC / "js" / "offsets.js"))
    return page


def call(page, expr: str, *args):
    return page.evaluate(f"([a, b, c, d]) => {expr}", list(args) + [None] * (4 - len(args)))


@pytest.mark.parametrize("text", [MIXED, corpus_text("001"), "", "a", "😀", "e\u0301"])
def test_round_trip_every_position(js, text):
    """cp -> UTF-16 -> cp is the identity, and agrees with Python at every code point."""
    expected = [u16(text, i) for i in range(len(text) + 1)]
    got = js.evaluate("""(t) => { const m = new Offsets.OffsetMap(t); const out = [];
        for (let i = 0; i <= m.lengthCp; i++) out.push(m.toU16(i));
        const back = out.every((u, i) => m.toCp(u) === i);
        return {out, back, lengthCp: m.lengthCp}; }""", text)
    assert got["lengthCp"] == len(text)
    assert got["out"] == expected
    assert got["back"]


def test_utf16_inside_a_pair_counts_as_the_pair(js):
    # "😀" is UTF-16 units 0-1; unit 1 is inside the pair and maps to the emoji's start.
    assert call(js, "Offsets.utf16ToCp(a, 1)", "😀x") == 0
    assert call(js, "Offsets.utf16ToCp(a, 2)", "😀x") == 1
    assert call(js, "Offsets.cpToUtf16(a, 1)", "😀x") == 2


def norm(page, text, a, b, **opts):
    """normalizeSelection on UTF-16 offsets; returns the selected text (Python-indexed)."""
    r = page.evaluate("([t, a, b, o]) => Offsets.normalizeSelection(new Offsets.OffsetMap(t), a, b, o)",
                      [text, a, b, opts])
    return text.encode("utf-16-le")[r[0] * 2:r[1] * 2].decode("utf-16-le")


def test_snaps_outward_to_words(js):
    t = "📰 Sync Letter"
    assert norm(js, t, 4, 6) == "Sync"        # "yn" grows to the word
    assert norm(js, t, 2, 9) == "Sync Letter"  # a space inside is kept
    assert norm(js, t, 0, 3) == "📰"          # the emoji is whole, the space trimmed
    assert norm(js, "메타는 왜", 0, 2) == "메타는"


def test_exact_mode_keeps_characters(js):
    assert norm(js, "메타는 왜", 0, 2, exact=True) == "메타"
    assert norm(js, "x메타는", 1, 3, exact=True) == "메타"


def test_spaces_are_never_part_of_a_span(js):
    for space in (" ", "\u00a0", "\u3000", "\t", "\r\n", "\u2009"):
        t = f"a{space}word{space}b"
        s = 1
        e = s + len(space.encode("utf-16-le")) // 2 * 2 + 4
        assert norm(js, t, s, e, exact=True) == "word", repr(space)
        assert norm(js, t, s, e) == "word", repr(space)
    assert norm(js, "a \u00a0 b", 1, 4, exact=True) == ""


def test_never_splits_a_character(js):
    t = "x😀y e\u0301z"
    # a selection ending inside the surrogate pair takes the whole emoji
    assert norm(js, t, 0, 2, exact=True) == "x😀"
    # starting inside the pair starts at the emoji
    assert norm(js, t, 2, 4, exact=True) == "😀y"
    # a base letter keeps its combining accent; a selection starting at the accent steps back
    i = u16(t, t.index("e\u0301"))
    assert norm(js, t, i, i + 1, exact=True) == "e\u0301"
    assert norm(js, t, i + 1, i + 3, exact=True) == "e\u0301z"


def test_snaps_to_tokens_when_the_server_sends_them(js):
    t = "메타는 스케일AI에"
    tokens = [[0, 2], [2, 3], [4, 7], [7, 9], [9, 10]]
    assert norm(js, t, 0, 1, tokens=tokens) == "메타"
    assert norm(js, t, 5, 8, tokens=tokens) == "스케일AI"


def test_corpus_001_words_after_emoji(js):
    """Every word right after an emoji in article 001: code points from the page == Python's."""
    text = corpus_text("001")
    cases = []
    for i, ch in enumerate(text):
        if ord(ch) > 0xFFFF:
            j = i + 1
            while j < len(text) and text[j].isspace():
                j += 1
            k = j
            while k < len(text) and (text[k].isalnum()):
                k += 1
            if k > j:
                cases.append((j, k))
    assert len(cases) >= 5
    got = js.evaluate("""([t, cases]) => { const m = new Offsets.OffsetMap(t);
        return cases.map(([s, e]) => { const a = m.toU16(s), b = m.toU16(e);
          const r = Offsets.normalizeSelection(m, a, Math.max(a + 1, b - 1), {});
          return [m.toCp(r[0]), m.toCp(r[1])]; }); }""", [text, cases])
    assert [tuple(x) for x in got] == cases


@pytest.mark.parametrize("text,start,end,expected", [
    ("ok 👍🏽 yes", 3, 5, "👍🏽"),               # the skin-tone modifier comes along
    ("go 🇰🇷 team", 3, 5, "🇰🇷"),                # both regional indicators of the flag
    ("x 👩\u200d💻 y", 2, 4, "👩\u200d💻"),       # the whole ZWJ sequence
    ("x 👩\u200d💻 y", 5, 7, "👩\u200d💻"),       # starting at its last emoji steps back
    ("press 1\ufe0f\u20e3 now", 6, 7, "1\ufe0f\u20e3"),
    ("\u1112\u1161\u11ab\uad6d", 0, 2, "\u1112\u1161\u11ab"),  # jamo stay one syllable
])
def test_exact_selections_take_whole_clusters_as_the_server_requires(js, text, start, end,
                                                                     expected):
    """What the page sends passes spans.is_cluster_boundary (the server's rule)."""
    from annotator.core.spans import is_cluster_boundary

    got = norm(js, text, start, end, exact=True)
    assert got == expected
    s = text.index(got)
    assert is_cluster_boundary(text, s) and is_cluster_boundary(text, s + len(got))


def test_token_snapping_never_ends_inside_a_character(js):
    t = "좋아요 👍🏽 정말"
    tokens = [[0, 3], [4, 5], [5, 6], [7, 9]]  # a tokenizer that split the modifier off
    assert norm(js, t, 4, 6, tokens=tokens) == "👍🏽"


def test_token_snapping_keeps_a_combining_mark_with_its_letter(js):
    """A tokenizer boundary before U+0301: selecting "Caf" takes the whole "Café"."""
    t = "Cafe\u0301 au lait"
    assert norm(js, t, 0, 3, tokens=[[0, 4], [4, 5], [6, 8], [9, 13]]) == "Cafe\u0301"


def particles(js, text, start, end, tokens, exact=False):
    got = js.evaluate("""([t, a, b, toks, exact]) => {
        const m = new Offsets.OffsetMap(t);
        const r = Offsets.normalizeSelection(m, m.toU16(a), m.toU16(b),
            {tokens: toks, exact, particles: Offsets.KO_PARTICLES});
        return t.slice(r[0], r[1]); }""", [text, start, end, tokens, exact])
    return got


@pytest.mark.parametrize("selected, expected", [
    ("왕은", "왕"),                      # noun + topic particle
    ("알렉산드르 왕은", "알렉산드르 왕"),
    ("스케일에서는", "스케일"),           # two particles in a row
    ("메타", "메타"),                    # nothing to drop
    ("은", "은"),                        # a lone particle stays what was selected
])
def test_a_selection_drops_the_particles_it_ends_in(js, selected, expected):
    text = "알렉산드르 왕은 스케일에서는 메타 은"
    tokens = [[0, 5], [6, 7], [7, 8], [9, 12], [12, 14], [14, 15], [16, 18], [19, 20]]
    i = text.index(selected)
    assert particles(js, text, i, i + len(selected), tokens) == expected
    assert particles(js, text, i, i + len(selected), tokens, exact=True) == selected
