"""The demo project: the five articles stored byte for byte, guidelines shown, users able to log in."""

from pathlib import Path

import pytest
from sqlalchemy import select

from annotator.demo import DEMO_NAME, corpus_files
from annotator.models import Document
from conftest import CORPUS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def test_demo_texts_equal_the_corpus_files_byte_for_byte(h):
    project = h.demo()
    assert project.name == DEMO_NAME and project.language == "ko"
    with h.session() as s:
        docs = {d.external_id: d for d in s.execute(select(Document).where(Document.project_id == project.id)).scalars()}
    files = corpus_files()
    assert len(files) == 5 and set(docs) == {p.stem for p in files}
    for path in files:
        assert docs[path.stem].text.encode("utf-8") == path.read_bytes()
    assert any(ord(ch) > 0xFFFF for d in docs.values() for ch in d.text)  # the emoji article


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/corpus is not beside this checkout")
def test_repo_copy_of_the_corpus_equals_shared():
    for path in SHARED.glob("*.txt"):
        assert (CORPUS / path.name).read_bytes() == path.read_bytes()


def test_demo_is_idempotent_and_new_users_can_log_in(h, client):
    from annotator.demo import load_demo
    from annotator.users import authenticate

    with h.session() as s:
        project, passwords = load_demo(s)
        s.commit()
    assert all(pw for _role, pw in passwords.values())
    with h.session() as s:
        project, again = load_demo(s)  # a second time: the same users, passwords kept
        s.commit()
    assert all(pw is None for _role, pw in again.values())
    with h.session() as s:
        assert len(s.execute(select(Document).where(Document.project_id == project.id)).scalars().all()) == 5
        for name, (_role, pw) in passwords.items():
            assert authenticate(s, name, pw) is not None


def test_demo_guidelines_are_the_news_guidelines(h, client):
    project = h.demo()
    with h.session() as s:
        from annotator.users import get_user
        lead = get_user(s, "lead")
    api = h.api(lead)
    status, body = api.get(f"/api/v1/projects/{project.id}")
    assert status == 200
    assert "PERSON" in body["guidelines"] and "<strong>" in body["guidelines_html"]
    assert "<script" not in body["guidelines_html"]
