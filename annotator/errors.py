"""Typed errors and the one handler that turns them into responses.

API responses always have the shape
``{"ok": false, "error": "<one sentence>", "status": <code>, "details": [...]}``;
HTML pages show the same message.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


class AnnotatorError(Exception):
    status = 400

    def __init__(self, message: str, details: list | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        if status is not None:
            self.status = status


class BadRequest(AnnotatorError):
    status = 400


class Unauthorized(AnnotatorError):
    status = 401


class Forbidden(AnnotatorError):
    status = 403


class NotFound(AnnotatorError):
    status = 404


class Conflict(AnnotatorError):
    status = 409


class PayloadTooLarge(AnnotatorError):
    status = 413


class Invalid(AnnotatorError):
    """Well-formed request whose content breaks a rule (422)."""

    status = 422


class TooManyRequests(AnnotatorError):
    """Rate-limited (429); the response carries Retry-After."""

    status = 429

    def __init__(self, message: str, retry_after: int, details: list | None = None):
        super().__init__(message, details or [{"retry_after": retry_after}])
        self.headers = {"Retry-After": str(retry_after)}


def error_body(message: str, status: int, details: list | None = None) -> dict:
    return {"ok": False, "error": message, "status": status, "details": details or []}


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
        app.logger.exception("unhandled error")
        return respond("Something went wrong on the server; the error was logged.", 500)
