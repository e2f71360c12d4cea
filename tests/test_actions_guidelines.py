"""Guidelines through the actions layer: everyone reads them, only an admin writes or clears them (audited as the
actor)."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio.actions import Project, guidelines
from studio.errors import InputError
from studio.store import opened
from studio.store.audit import history


@pytest.fixture
def p(db_path) -> Project:
    from conftest import make_batch
    from studio.store.imports import import_batch

    with opened(db_path) as db:
        import_batch(db, make_batch(2, ratings=[(0, "alice", 1), (0, "bob", 1)]))
    return Project(db_path)


def test_an_admin_writes_and_clears_and_everyone_reads(p):
    assert guidelines.set_text(p, ADMIN, "en", b"# Rules\n\n2 answers it.", file="rules.md") == "# Rules\n\n2 answers it."
    guidelines.set_text(p, ADMIN, "zh-CN", "# 规则")
    for who in (ANNOTATOR, EXPERT, ADMIN):
        found = guidelines.read(p, who)
        assert found.texts == {"en": "# Rules\n\n2 answers it.", "zh-CN": "# 规则"}
        assert [(e["label"], e["query"]) for e in found.examples] == [(1, "query 0 about diabetes")]
    assert guidelines.clear(p, ADMIN, "zh-CN") is True and guidelines.clear(p, ADMIN, "zh-CN") is False
    assert guidelines.read(p, ANNOTATOR).text_for("zh-CN") == ("# Rules\n\n2 answers it.", "en")
    with opened(p.db_path) as db:
        actions = [(e["actor"], e["action"]) for e in history(db, entity="settings")]
    assert actions == [("root", "guidelines.clear"), ("root", "guidelines.set"), ("root", "guidelines.set")]


def test_an_annotator_or_expert_may_not_write_or_clear(p):
    guidelines.set_text(p, ADMIN, "en", "# Rules")
    for who in (ANNOTATOR, EXPERT):
        for fn, args in ((guidelines.set_text, ("en", "# Mine")), (guidelines.clear, ("en",))):
            assert_refused(p, who, fn, *args)
    assert guidelines.read(p, ANNOTATOR).texts == {"en": "# Rules"}


def test_a_file_that_is_not_utf8_names_itself(p):
    with pytest.raises(InputError) as err:
        guidelines.set_text(p, ADMIN, "en", "相关".encode("gb18030"), file="rules.md")
    assert err.value.message().startswith("rules.md: ") and "UTF-8" in err.value.message()
