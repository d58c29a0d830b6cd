"""Typed errors: every layer raises these; the web and the command line answer them
(annotator.web.errors: one JSON shape, ``error_body``; annotator.cli: one line, exit 1).
"""

from __future__ import annotations


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
