"""How fast the annotate page is on a long document, in headless Chromium.

Generates a 100,000-character document (Korean and English words, emoji, CRLF lines) with
2,000 saved spans (1,600 entities, 400 CLAIMs overlapping them), serves the real app on a
loopback port with a temporary SQLite database, opens the document and prints:

  - time from navigation start until the text is shown and the page takes keys
    (the page sets data-ready after its first render, once Alpine has shown the text),
  - time from a label key press (a real key event) to the new highlight in the DOM, and to
    the next painted frame, over several presses spread through the document,
  - the same for Ctrl-Z (undo) and for Tab (select the next span).

Usage: python bench/bench_page.py [--chars 100000] [--spans 2000] [--presses 20] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
WORDS = ("메타는 스케일 AI의 지분을 인수했습니다 알렉산더 왕은 데이터 라벨링 기업을 세웠고 "
         "투자자들은 148억 달러를 평가했다 Meta Scale AI invested billion dollars in data labeling "
         "오픈AI 샘 올트먼 구글 마이크로소프트 경쟁 구도 인공지능 시장 Zuckerberg Wang").split()
PASSWORD = "bench-password-42"


def make_document(n_chars: int, n_spans: int, seed: int = 7) -> tuple[str, list[dict]]:
    """Text of exactly n_chars code points and n_spans valid spans (80% entities, 20% CLAIMs)."""
    rnd = random.Random(seed)
    words: list[tuple[int, int]] = []  # code-point [start, end) of each word
    parts: list[str] = []
    pos = 0
    line_len = 0
    while pos < n_chars:
        w = rnd.choice(WORDS)
        if rnd.random() < 0.01:
            w = w + "😀"
        sep = " "
        line_len += len(w) + 1
        if line_len > rnd.randint(60, 160):
            sep, line_len = "\r\n", 0
        if pos + len(w) + len(sep) > n_chars:
            break
        words.append((pos, pos + len(w)))
        parts.append(w + sep)
        pos += len(w) + len(sep)
    text = "".join(parts)
    text += "x" * (n_chars - len(text))
    n_claims = n_spans // 5
    n_ents = n_spans - n_claims
    # Entities on every k-th word (leaving untagged words between them for the key presses).
    step = max(2, len(words) // n_ents)
    labels = ["PERSON", "ORG", "MONEY"]
    spans = []
    ent_words = list(range(0, len(words), step))[:n_ents]
    for i in ent_words:
        s, e = words[i]
        spans.append({"start": s, "end": e, "label": labels[i % 3], "attributes": {}})
    # CLAIMs over 3-8 words each, spread through the document, overlapping entities.
    cstep = max(10, len(words) // n_claims)
    for k in range(n_claims):
        i = k * cstep + 1
        j = min(len(words) - 1, i + rnd.randint(2, 7))
        spans.append({"start": words[i][0], "end": words[j][1], "label": "CLAIM",
                      "attributes": {"stance": rnd.choice(["favor", "against", "neutral"])}})
    assert len(spans) == n_spans, (len(spans), n_spans)
    assert len(text) == n_chars
    return text, spans


def setup_app(tmp: str, text: str, spans: list[dict]):
    from sqlalchemy import select

    from annotator import create_app
    from annotator.services.annotations import save_annotation
    from annotator.services.importing import import_records
    from annotator.services.members import add_member
    from annotator.services.projects import create_project
    from annotator.services.users import create_user
    from annotator.storage.db import migrate
    from annotator.storage.models import Document

    url = f"sqlite:///{tmp}/bench.db"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": tmp, "SECRET_KEY": "bench-only"})
    db = app.extensions["annotator.db"]
    with db.session() as s:
        project = create_project(s, "Bench", language="ko", guidelines="# Bench\n\nA long document.")
        user = create_user(s, "bench", "annotator", PASSWORD)
        add_member(s, project, user)
        import_records(s, project, [(1, {"id": "long-100k", "text": text})], 2_000_000)
        doc = s.execute(select(Document).where(Document.project_id == project.id)).scalar_one()
        save_annotation(s, doc, user, {"spans": spans, "version": 0})
        s.commit()
    # Tokens are computed once per document, on its first open (or by `annotator tokenize`);
    # do it here so the page timings below are of the page, and say what it cost.
    from annotator.services.tokenize_job import run_job

    t0 = time.perf_counter()
    run_job(url, tmp, project.id)
    print(f"tokenizing the document once (Kiwi, incl. loading it): {time.perf_counter() - t0:.2f} s")
    return app, project.id, doc.id


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"median {statistics.median(xs):7.1f} ms   p90 {xs[int(0.9 * (len(xs) - 1))]:7.1f} ms   "
            f"max {xs[-1]:7.1f} ms   (n={len(xs)})")


INSTRUMENT = """() => {
  const root = document.querySelector('[x-ref=text]');
  window.__bench = {t0: null, mut: null, frame: null};
  window.addEventListener('keydown', e => {
    if (window.__bench.armed) { window.__bench.t0 = e.timeStamp; window.__bench.armed = false; }
  }, true);
  new MutationObserver(() => {
    const b = window.__bench;
    if (b.t0 !== null && b.mut === null) {
      b.mut = performance.now();
      requestAnimationFrame(() => setTimeout(() => { b.frame = performance.now(); }, 0));
    }
  }).observe(root, {subtree: true, attributes: true, childList: true, characterData: true});
}"""

ARM = "() => { Object.assign(window.__bench, {t0: null, mut: null, frame: null, armed: true}); }"
READ = "() => window.__bench.frame !== null ? window.__bench : null"

# Select (with a DOM Range, as a mouse drag would) the k-th untagged word between entities.
SELECT_GAP = """(k) => {
  const ed = window.__annotate.editor();
  const ents = ed.ents;
  const idx = Math.floor((k + 0.5) * ents.length / NPRESS);
  const a = ents[idx].e16, b = ents[idx + 1].s16;
  const gap = ed.text.slice(a, b);
  const m = /[^\\s\\p{P}]+/u.exec(gap.slice(1));
  if (!m) return false;
  const s = a + 1 + m.index, e = s + m[0].length;
  const seg = ed.segs[ed.segIndex(s)];
  seg.scrollIntoView({block: 'center'});
  const r = document.createRange();
  const segE = ed.segs[ed.segIndex(e - 1)];
  r.setStart(seg.firstChild, s - seg._s);
  r.setEnd(segE.firstChild, e - segE._s);
  const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
  return true;
}"""


def measure_key(page, key: str) -> tuple[float, float]:
    page.evaluate(ARM)
    page.keyboard.press(key)
    handle = page.wait_for_function(READ, timeout=10_000)
    b = handle.json_value()
    return b["mut"] - b["t0"], b["frame"] - b["t0"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=100_000)
    ap.add_argument("--spans", type=int, default=2_000)
    ap.add_argument("--presses", type=int, default=20)
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    run(args)
    return 0


def run(args) -> dict:
    """Print the figures and return them (medians in ms) for bench/run_all.py."""
    import logging

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    text, spans = make_document(args.chars, args.spans)
    tmp = tempfile.mkdtemp(prefix="annotator-bench-")
    app, pid, did = setup_app(tmp, text, spans)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    print(f"document: {len(text):,} characters ({len(text.encode('utf-16-le')) // 2:,} UTF-16 units), "
          f"{text.count(chr(10)):,} lines, {len(spans):,} spans "
          f"({sum(s['label'] == 'CLAIM' for s in spans)} CLAIMs)")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 860})
            page.goto(base + "/login")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", PASSWORD)
            page.click("form button[type=submit]")
            page.wait_for_url(base + "/")

            loads, renders = [], []
            for _ in range(args.loads):
                page.goto(f"{base}/projects/{pid}/documents/{did}/annotate")
                page.wait_for_selector(".annotate[data-ready]", timeout=60_000)
                t = page.evaluate("""() => new Promise(res => requestAnimationFrame(() => setTimeout(() =>
                    res({painted: performance.now(), ready: window.__annotateReadyMs,
                         segs: window.__annotate.editor().segs.length}), 0)))""")
                loads.append(t["painted"])
                renders.append(t["ready"])
            print(f"segments rendered: {t['segs']:,}")
            print(f"open -> text shown and interactive (navigation start to first frame after render):\n"
                  f"    {summary(loads)}")
            print(f"    of which fetch + render after the scripts ran: {summary(renders)}")

            page.evaluate(INSTRUMENT)
            tag, tag_frame = [], []
            for k in range(args.presses):
                ok = page.evaluate(SELECT_GAP.replace("NPRESS", str(args.presses)), k)
                if not ok:
                    continue
                page.wait_for_timeout(50)
                m, f = measure_key(page, "1")
                tag.append(m)
                tag_frame.append(f)
            n_after = page.evaluate("() => window.__annotate.editor().spans.length")
            assert n_after == len(spans) + len(tag), (n_after, len(spans), len(tag))
            print(f"label key '1' -> highlight in the DOM:   {summary(tag)}")
            print(f"label key '1' -> next frame painted:     {summary(tag_frame)}")

            undo, undo_frame = [], []
            for _ in range(min(10, len(tag))):
                page.wait_for_timeout(50)
                m, f = measure_key(page, "Control+z")
                undo.append(m)
                undo_frame.append(f)
            print(f"Ctrl-Z -> highlight removed, painted:    {summary(undo_frame)}")
            tab_frame = []
            page.keyboard.press("Escape")
            for _ in range(10):
                page.wait_for_timeout(30)
                _m, f = measure_key(page, "Tab")
                tab_frame.append(f)
            print(f"Tab -> next span selected, painted:      {summary(tab_frame)}")
            # let the autosave of 2,000 spans go through, and time it
            t0 = time.perf_counter()
            page.wait_for_function("() => document.querySelector('[data-testid=save-state]')"
                                   ".textContent.trim() === 'Saved'", timeout=30_000)
            autosave = 1000 * (time.perf_counter() - t0)
            print(f"autosave of {n_after - len(undo):,} spans settled {autosave:.0f} ms "
                  f"after the last key")
            browser.close()
    finally:
        server.shutdown()
        app.extensions["annotator.db"].dispose()
    med = statistics.median
    return {"chars": len(text), "spans": len(spans), "open_ms": med(loads), "runs_open_ms": loads,
            "render_after_scripts_ms": med(renders), "label_key_to_dom_ms": med(tag),
            "label_key_to_paint_ms": med(tag_frame), "undo_to_paint_ms": med(undo_frame),
            "tab_to_paint_ms": med(tab_frame), "autosave_settled_ms": autosave}


if __name__ == "__main__":
    sys.exit(main())
