"""Security headers on every response, and Markdown rendered to sanitised HTML."""

from __future__ import annotations

from flask import Flask

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_ALLOWED_TAGS = {"a", "p", "ul", "ol", "li", "strong", "em", "code", "pre", "blockquote", "h1", "h2",
                 "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "br", "hr"}


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML disabled, then sanitised (nh3) as a second wall."""
    import nh3
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text or "")
    return nh3.clean(html, tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                     url_schemes={"http", "https", "mailto"})


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(resp):
        for key, value in HEADERS.items():
            resp.headers.setdefault(key, value)
        if resp.mimetype == "application/json":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
