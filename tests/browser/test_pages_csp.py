"""Pages load nothing from another host, carry the strict CSP, and have no inline script/style.

The first tests read templates and served HTML (no browser); the last one checks in Chromium
that the CSP is honoured with zero violations while the pages run (Alpine CSP build, no eval).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser.helpers import login, open_next

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
URL_ATTRS = {"src", "href", "action", "data", "poster", "srcset", "formaction"}


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False
        self._script_attrs: dict = {}

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        self.tags.append((tag, d))
        if tag == "script":
            self._in_script, self._script_attrs = True, d

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip()[:80])


def foreign(url: str) -> bool:
    url = url.strip()
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)) and not url.startswith("mailto:")


def check_html(html: str, where: str) -> None:
    p = Tags()
    p.feed(html)
    for tag, attrs in p.tags:
        for name, value in attrs.items():
            if name in URL_ATTRS and value and foreign(value):
                raise AssertionError(f"{where}: <{tag} {name}={value!r}> loads from another host")
            assert not name.startswith("on"), f"{where}: inline handler {name} on <{tag}>"
            assert name != "style", f"{where}: inline style attribute on <{tag}>"
    assert not p.inline_scripts, f"{where}: inline script {p.inline_scripts}"
    assert "<style" not in html.lower(), f"{where}: inline <style> element"


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_templates_name_no_other_host(path):
    source = path.read_text(encoding="utf-8")
    # any absolute URL in a loading attribute of a template (Jinja left in place)
    for m in re.finditer(r'\b(src|href|action)\s*=\s*"([^"]*)"', source):
        assert not foreign(m.group(2)), f"{path.name}: {m.group(0)}"
    assert "<style" not in source.lower()
    assert not re.search(r"\sstyle\s*=", source), f"{path.name}: inline style attribute"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), f"{path.name}: inline <script>"


def test_served_pages_have_strict_csp_and_no_foreign_or_inline_code(client, h):
    project = h.demo()
    lead = h.user("boss", "lead")
    h.login(client, lead)
    for path in ("/", f"/projects/{project.id}", f"/projects/{project.id}/annotate",
                 f"/projects/{project.id}/documents/1/annotate"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "unsafe-inline" not in csp
        assert "style-src 'self'" in csp and "default-src 'self'" in csp
        check_html(resp.get_data(as_text=True), path)
    resp = h.app.test_client().get("/login")
    check_html(resp.get_data(as_text=True), "/login")


def test_vendored_alpine_matches_its_readme():
    import hashlib

    readme = (ROOT / "static" / "vendor" / "README.md").read_text(encoding="utf-8")
    files = list((ROOT / "static" / "vendor").glob("alpine-csp-*.min.js"))
    assert len(files) == 1
    digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert digest in readme and files[0].name in readme
    for tpl in TEMPLATES.glob("*.html"):
        for name in re.findall(r"vendor/(alpine-csp-[^'\"]+)", tpl.read_text(encoding="utf-8")):
            assert name == files[0].name, f"{tpl.name} loads {name}"


def test_no_csp_violations_in_the_browser(page, live, h):
    project = h.demo()
    h.user("ann")
    h.user("boss", "lead")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text or "unsafe-eval" in m.text else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script("document.addEventListener('securitypolicyviolation', "
                         "e => console.error('Content Security Policy violation: ' + e.violatedDirective))")
    login(page, live.url, "ann")
    open_next(page, live.url, project.id)
    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Log out").click()
    login(page, live.url, "boss")
    page.goto(f"{live.url}/projects/{project.id}")
    expect(page.get_by_test_id("doc-table").locator("tbody tr")).to_have_count(5)
    assert not violations, violations
    assert all(u.startswith(live.url) for u in requests), [u for u in requests if not u.startswith(live.url)]
