"""Screenshot of the annotate page for the README and docs/annotating.md: demo article 001 with entities and a CLAIM.

Builds the demo project in a temporary database, saves alice's annotation through the API,
opens the page in headless Chromium and writes docs/annotate.png.

Usage: python bench/screenshot_page.py [--out docs/annotate.png] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]

# (text to find, occurrence after the previous find, label, stance)
SPANS = [
    ("메타", "ORG"), ("20조원", "MONEY"), ("스케일 AI", "ORG"), ("알렉산더 왕", "PERSON"),
    ("스케일 AI", "ORG"), ("메타", "ORG"), ("스케일 AI", "ORG"), ("148억 달러", "MONEY"),
    ("20조 원", "MONEY"), ("280억 달러", "MONEY"), ("38조 원", "MONEY"), ("알렉산더 왕", "PERSON"),
    ("메타", "ORG"), ("오픈AI", "ORG"), ("샘 올트먼", "PERSON"), ("스케일 AI", "ORG"),
]
CLAIM = ("스케일 AI는 '데이터 라벨링'이라는 지루하지만 결정적인 분야를 장악하며 "
         "초지능 전쟁의 키플레이어로 자리매김했습니다.")


def build_spans(text: str) -> list[dict]:
    spans, pos = [], 0
    for needle, label in SPANS:
        i = text.index(needle, pos)
        spans.append({"start": i, "end": i + len(needle), "label": label, "attributes": {}})
        pos = i + len(needle)
    c = text.index(CLAIM)
    spans.append({"start": c, "end": c + len(CLAIM), "label": "CLAIM", "attributes": {"stance": "favor"}})
    t = text.index("메타가 20조원을 투자한 스케일 AI")
    spans.append({"start": t, "end": t + len("메타가 20조원을 투자한 스케일 AI"), "label": "CLAIM",
                  "attributes": {"stance": "neutral"}})
    return spans


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "annotate.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright
    from sqlalchemy import select
    from werkzeug.serving import make_server

    from annotator import create_app
    from annotator.services.annotations import save_annotation
    from annotator.services.demo import load_demo
    from annotator.storage.db import migrate
    from annotator.storage.models import Document, User

    tmp = tempfile.mkdtemp(prefix="annotator-shot-")
    url = f"sqlite:///{tmp}/shot.db"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": tmp, "SECRET_KEY": "screenshot-only"})
    db = app.extensions["annotator.db"]
    with db.session() as s:
        project, passwords = load_demo(s)
        doc = s.execute(select(Document).where(Document.project_id == project.id,
                                               Document.external_id.like("001_%"))).scalar_one()
        alice = s.execute(select(User).where(User.username == "alice")).scalar_one()
        save_annotation(s, doc, alice, {"spans": build_spans(doc.text), "version": 0})
        s.commit()
        pid, did = project.id, doc.id
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1500}, device_scale_factor=1)
            page.goto(base + "/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", passwords["alice"][1])
            page.click("form button[type=submit]")
            page.wait_for_url(base + "/")
            page.goto(f"{base}/projects/{pid}/documents/{did}/annotate")
            page.wait_for_selector(".annotate[data-ready]")
            # Select the first CLAIM (as Tab would) so the selection bar shows its stance.
            page.evaluate("""() => { const ed = window.__annotate.editor();
                const c = ed.spans.find(s => s.label === 'CLAIM' && s.attributes.stance === 'favor');
                ed.select(c.id); }""")
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out)
            browser.close()
    finally:
        server.shutdown()
        db.dispose()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
