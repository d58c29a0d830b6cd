"""The one handler that turns errors into responses, and the app class that retries a read.

API responses always have the shape
``{"ok": false, "error": "<one sentence>", "status": <code>, "details": [...]}``
(``annotator.core.errors.error_body``); HTML pages show the same message.
"""

from __future__ import annotations

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from annotator.core import faults
from annotator.core.errors import AnnotatorError, error_body


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def respond(message: str, status: int, details: list | None = None):
    if wants_json():
        return jsonify(error_body(message, status, details)), status
    return render_template("error.html", message=message, status=status, details=details or []), status


_HTTP_MESSAGES = {
    400: "The request is malformed.",
    401: "Log in first.",
    403: "You are not allowed to do that.",
    404: "Nothing is here.",
    405: "This method is not allowed here.",
    413: "The request body is larger than the configured limit.",
    429: "Too many requests; try again later.",
}


def init_app(app: Flask) -> None:
    @app.errorhandler(AnnotatorError)
    def _annotator_error(e: AnnotatorError):
        body, status = respond(e.message, e.status, e.details)
        return body, status, getattr(e, "headers", {})

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        message = _HTTP_MESSAGES.get(e.code, e.description or e.name)
        details = []
        if e.code == 413:
            limit, size = app.config.get("MAX_CONTENT_LENGTH"), request.content_length
            message = (f"The request body{f' ({size} bytes)' if size else ''} is larger than the "
                       f"limit of {limit} bytes (ANNOTATOR_MAX_UPLOAD_MB="
                       f"{app.config.get('MAX_UPLOAD_MB')}).")
            details = [{"field": "body", "size": size, "limit": limit, "reason": "too large"}]
        return respond(message, e.code or 500, details)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        answer = fault_answer(e)
        if answer is not None:
            return answer
        app.logger.exception("unhandled error")
        return respond("Something went wrong on the server; the error was logged.", 500)

    app.wsgi_app = LastResort(app, app.wsgi_app)


def fault_answer(e: BaseException):
    """The answer to a full disk (507) or a lost database (503 with Retry-After), or None."""
    kind = faults.kind(e)
    if kind is None:
        return None
    from flask import current_app

    from annotator.storage.db import note_disk_full

    first = (str(e).strip().splitlines() or [""])[0][:300]
    current_app.logger.error("%s %s: %s (%s: %s)", request.method, request.path, kind,
                             type(e).__name__, first)
    headers = {}
    if kind == faults.DISK_FULL:
        note_disk_full()
    else:
        headers["Retry-After"] = str(faults.RETRY_AFTER_S)
    body, status = respond(faults.message(kind), faults.STATUS[kind], [{"database": kind}])
    return body, status, headers


class App(Flask):
    """Flask, plus one retry of a request that only reads when its database connection was
    lost (a PostgreSQL backend terminated, a server restarted): the pool hands out a fresh
    connection, and the reader never sees the failure. A request that wrote, or began to
    (a write session was opened, as by the queue's reservation), is not retried: it gets 503."""

    def handle_user_exception(self, e):
        from annotator.web.db import SAFE_METHODS, discard_sessions

        if (isinstance(e, Exception) and not isinstance(e, HTTPException)
                and request.method in SAFE_METHODS and "db_write_session" not in g
                and not g.get("_db_retried") and faults.kind(e) == faults.UNAVAILABLE):
            g._db_retried = True
            discard_sessions(invalidate=True)
            self.logger.warning("%s %s: the database connection was lost; trying once more "
                                "(%s)", request.method, request.path, type(e).__name__)
            try:
                rv = self.preprocess_request()
                return self.dispatch_request() if rv is None else rv
            except Exception as again:
                e = again
        return super().handle_user_exception(e)


class LastResort:
    """Around the whole app: an exception that escapes Flask (raised in teardown, or by an
    error handler itself) becomes the error shape, never the WSGI server's own HTML page."""

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        import sys

        try:
            return self.wsgi_app(environ, start_response)
        except Exception as e:
            self.app.logger.exception("error outside the request's handlers")
            kind = faults.kind(e)
            status = faults.STATUS.get(kind, 500)
            message = (faults.message(kind) if kind else
                       "Something went wrong on the server; the error was logged.")
            details = [{"database": kind}] if kind else []
            try:
                with self.app.request_context(environ):
                    body, status = respond(message, status, details)
                    response = self.app.make_response((body, status))
            except Exception:
                import orjson

                response = self.app.response_class(orjson.dumps(error_body(message, status, details)),
                                                   status, mimetype="application/json")
            if kind == faults.UNAVAILABLE:
                response.headers["Retry-After"] = str(faults.RETRY_AFTER_S)
            status_line = f"{response.status}"
            start_response(status_line, list(response.headers.items()), sys.exc_info())
            return [response.get_data()]


