"""Documents' token boundaries and the project word list: what the page snaps to is what the
exporters train on.

Tokens are ``annotator.core.nlp.get_tokenizer_boundaries(text, project.language, word_list)``,
stored on the document as ``[[start, end], ...]`` (code points). Tokenizing loads spaCy or
Kiwi (seconds, and Kiwi ~0.5 GB), so it never runs inside an import request: a document's
tokens are computed by a background job after each import under ``annotator serve``
(annotator.services.tokenize_job), or by ``annotator tokenize``, or else on the document's first open
(``ensure_tokens``); a change of the word list clears them for the whole project so that each
is recomputed with the new list the same way.

The word list (``project.settings["user_words"]``) names words the analyser does not know
(``메타슈퍼인텔리전스``); it feeds Kiwi's user dictionary here and in the exported config.
"""

from __future__ import annotations

from sqlalchemy import null, update
from sqlmodel import Session

from annotator.core.errors import Invalid
from annotator.storage.models import Document, Project

MAX_WORDS = 10_000
MAX_WORD_CHARS = 100


def words_in(settings: dict | None) -> list[str]:
    """The user words of a project's settings, sorted (the one place that reads them)."""
    words = (settings or {}).get("user_words") or []
    return sorted({w for w in words if isinstance(w, str) and w.strip()})


def word_list(project: Project) -> list[str]:
    return words_in(project.settings)


def check_words(words) -> list[str]:
    """A list of words without spaces; every problem refused at once, naming its index."""
    if not isinstance(words, list):
        raise Invalid("'words' must be a list of strings.", [{"field": "words"}])
    errors = []
    for i, w in enumerate(words):
        if not isinstance(w, str):
            reason = "a word must be a string"
        elif not w or any(ch.isspace() for ch in w):
            reason = "a word must be non-empty and hold no spaces"
        elif len(w) > MAX_WORD_CHARS:
            reason = f"a word may have at most {MAX_WORD_CHARS} characters"
        elif "\x00" in w or any(0xD800 <= ord(ch) <= 0xDFFF for ch in w):
            reason = "a word may not contain NUL or lone surrogates"
        else:
            continue
        errors.append({"field": f"words[{i}]", "index": i, "reason": reason})
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Invalid(f"Invalid word {first['index']}: {first['reason']}{more}.", errors)
    return words


def set_words(s: Session, project: Project, words: list[str]) -> list[str]:
    """Replace the word list; documents' tokens are cleared when it changed."""
    new = sorted(set(check_words(words)))
    if len(new) > MAX_WORDS:
        raise Invalid(f"A word list may hold at most {MAX_WORDS} words.", [{"field": "words"}])
    if new != word_list(project):
        project.settings = {**(project.settings or {}), "user_words": new}  # a new dict: written
        s.add(project)
        # null(): SQL NULL (a plain None would be stored as JSON null by the JSON type)
        s.execute(update(Document).where(Document.project_id == project.id).values(tokens=null()))
        s.flush()
    return new


def add_words(s: Session, project: Project, words: list[str]) -> tuple[list[str], list[str]]:
    """Add words to the list; returns (the whole list, the words that were new)."""
    current = word_list(project)
    added = sorted(set(check_words(words)) - set(current))
    return set_words(s, project, current + added), added


def compute_tokens(text: str, language: str, words: list[str]) -> list[list[int]]:
    from annotator.core.nlp import get_tokenizer_boundaries

    return [[a, b] for a, b in get_tokenizer_boundaries(text, language, words)]


def ensure_tokens(database, doc: Document, project: Project) -> list[list[int]]:
    """The document's tokens, computed and stored on first use (in a short write of its own,
    so that a read request stays a read)."""
    if doc.tokens is not None:
        return doc.tokens
    tokens = compute_tokens(doc.text, project.language, word_list(project))
    with database.session(write=True) as w:
        w.execute(update(Document).where(Document.id == doc.id, Document.tokens.is_(None))
                  .values(tokens=tokens))
        w.commit()
    return tokens
