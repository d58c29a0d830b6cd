"""The demo project: the five articles stored byte for byte, guidelines shown, users able to log in."""

from pathlib import Path

from conftest import CORPUS
from sqlalchemy import select

from annotator.services.demo import DEMO_NAME, corpus_files
from annotator.storage.models import Document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def test_demo_texts_equal_the_corpus_files_byte_for_byte(h):
    project = h.demo()
    assert project.name == DEMO_NAME and project.language == "ko"
    with h.session() as s:
        query = select(Document).where(Document.project_id == project.id)
        docs = {d.external_id: d for d in s.execute(query).scalars()}
    files = corpus_files()
    assert len(files) == 5 and set(docs) == {p.stem for p in files}
    for path in files:
        assert docs[path.stem].text.encode("utf-8") == path.read_bytes()
    assert any(ord(ch) > 0xFFFF for d in docs.values() for ch in d.text)  # the emoji article


# sha256 of the corpus as delivered in ../shared/corpus: the copy the package ships must not
# drift from it (checked against the files themselves when they are beside this checkout)
SHIPPED = {
    "000_ce8445c86a82a8a0.txt": "861260dd2f5837674b625cdd6a5e6ae1d2143d394d6c1158de7b831d5a3780c8",
    "001_4ed2aa76a0e07e7d.txt": "2a5c0c974bfe9a32a6f643aa03783360204ec5c7361d87b14e2269d2f2fb9728",
    "002_5985a498d8755ad1.txt": "50bdaab8663c8e2519a68bf1780276d1219d34fca4ff2691727ba228fac6e0d6",
    "003_87085f279dda8821.txt": "3ac719129c75e8fad8a51a6f3aa56a8af498cc4df3ce15ddf0896d1ba6b7e725",
    "004_a9b071c667a72296.txt": "6dbe41f3e68ca1f7b303a98baedce2f6c8d6b9085d70ac5fcd60088cc5e0860f",
}


def test_the_shipped_corpus_is_the_delivered_one_byte_for_byte():
    import hashlib

    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in CORPUS.glob("*.txt")}
    assert got == SHIPPED
    for path in SHARED.glob("*.txt") if SHARED.is_dir() else ():
        assert (CORPUS / path.name).read_bytes() == path.read_bytes()


def test_demo_is_idempotent_and_new_users_can_log_in(h, client):
    from annotator.services.demo import load_demo
    from annotator.services.users import authenticate

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
        from annotator.services.users import get_user
        lead = get_user(s, "lead")
    api = h.api(lead)
    status, body = api.get(f"/api/v1/projects/{project.id}")
    assert status == 200
    assert "PERSON" in body["guidelines"] and "<strong>" in body["guidelines_html"]
    assert "<script" not in body["guidelines_html"]
