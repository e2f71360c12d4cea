"""Models (⑦) through the actions layer: listing, checking, the ★ default and deleting are an admin's; the pickers'
names an expert's. Refusals change nothing and are audited."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio import config
from studio.actions import Project, models
from studio.config import embedded_model_path
from studio.errors import StudioError
from studio.store import opened


@pytest.fixture
def p(db_path) -> Project:
    return Project(db_path)


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """models/ with two linked-in copies of the embedded model ("mini", "other") and a tiny reranker."""
    from tiny_models import build_tiny_reranker

    root = tmp_path / "models"
    root.mkdir()
    for name in ("mini", "other"):
        (root / name).symlink_to(embedded_model_path(), target_is_directory=True)
    build_tiny_reranker(root / "rr")
    monkeypatch.setattr(config, "MODELS_DIR", root)
    return root


def audit_rows(p: Project, action: str) -> list[dict]:
    from studio.store.audit import history

    with opened(p.db_path) as db:
        return [r for r in history(db, entity="model") if r["action"] == action]


def test_an_admin_lists_the_models_with_the_embedded_one_first_and_the_default_starred(p, models_dir):
    infos = models.list_models(p, ADMIN)
    assert [i.name for i in infos] == ["all-MiniLM-L6-v2", "mini", "other", "rr"]
    assert [i.is_default for i in infos] == [True, False, False, False]
    assert infos[3].kind == "reranker"


def test_an_admin_checks_a_model_by_name_and_by_default(p, models_dir):
    info = models.check(p, ADMIN, "mini")
    assert info.ok and info.name == "mini" and info.loads_with == ["sentence-transformers"]
    assert models.check(p, ADMIN, "default").name == "all-MiniLM-L6-v2", "no ★ set: the embedded model"
    missing = models.check(p, ADMIN, "ghost")
    assert not missing.ok and missing.problems[0].code == "not_a_folder"


def test_an_admin_sets_the_default_and_the_audit_names_them(p, models_dir):
    assert models.set_default(p, ADMIN, "mini") == "mini"
    assert (models_dir / ".default").read_text().strip() == "mini"
    [entry] = audit_rows(p, "model.default")
    assert entry["actor"] == ADMIN.name
    assert entry["before"] == {"default": "all-MiniLM-L6-v2"} and entry["after"] == {"default": "mini"}
    assert models.set_default(p, ADMIN, "default") == "mini", "'default' names the ★ already: no change"
    assert len(audit_rows(p, "model.default")) == 1
    assert models.set_default(p, ADMIN, "all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    with pytest.raises(StudioError) as err:
        models.set_default(p, ADMIN, "rr")
    assert err.value.code == "model_is_reranker"


def test_an_admin_deletes_a_model_and_the_star_falls_back(p, models_dir):
    models.set_default(p, ADMIN, "other")
    models.delete(p, ADMIN, "other")
    assert not (models_dir / "other").exists() and embedded_model_path().is_dir(), "a link: the target stays"
    assert models.choices(p, ADMIN).starred == "all-MiniLM-L6-v2"
    [entry] = audit_rows(p, "model.delete")
    assert entry["actor"] == ADMIN.name and entry["before"]["name"] == "other" and entry["before"]["default"]
    with pytest.raises(StudioError) as err:
        models.delete(p, ADMIN, "default")
    assert err.value.code == "model_protected"


def test_an_expert_gets_the_pickers_names(p, models_dir):
    models.set_default(p, ADMIN, "mini")
    found = models.choices(p, EXPERT)
    assert found.embedders == ["all-MiniLM-L6-v2", "mini", "other"] and found.rerankers == ["rr"]
    assert found.starred == "mini"


def test_an_expert_may_not_manage_models_and_nothing_changes(p, models_dir):
    models.set_default(p, ADMIN, "mini")
    for fn, args in ((models.list_models, ()), (models.check, ("mini",)), (models.set_default, ("other",)),
                     (models.delete, ("other",))):
        assert_refused(p, EXPERT, fn, *args)
    assert (models_dir / ".default").read_text().strip() == "mini", "the ★ unchanged"
    assert (models_dir / "other").is_dir(), "the model folder is still there"
    assert len(audit_rows(p, "model.default")) == 1 and audit_rows(p, "model.delete") == []


def test_an_annotator_may_not_delete_a_model_nor_see_the_pickers(p, models_dir):
    assert_refused(p, ANNOTATOR, models.delete, "mini")
    assert_refused(p, ANNOTATOR, models.choices)
    assert (models_dir / "mini").is_dir()


@pytest.mark.parametrize("name", ["/etc", "~/models/x", "../x", "a/../../x", "models/a/b", "..\\x", "C:/x", ".x"])
def test_a_page_may_not_name_a_server_path_for_a_model(name):
    with pytest.raises(StudioError) as err:
        models.model_field(name, field="Model")
    assert err.value.code == "path_outside"


def test_a_page_names_models_by_name_or_hub_id():
    assert [models.model_field(n, field="Model") for n in (" mini ", "default", "BAAI/bge-m3", "all-MiniLM-L6-v2")] \
        == ["mini", "default", "BAAI/bge-m3", "all-MiniLM-L6-v2"]
    with pytest.raises(StudioError) as err:
        models.model_field("  ", field="Model")
    assert err.value.code == "empty_field"
    assert models.optional_model_field("", field="Reranker") is None
