"""The model registry and model inspection: layout checks on broken copies of the embedded model, loading, default,
delete, resolve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.config import embedded_model_path
from studio.errors import StudioError
from studio.models import inspection, registry
from studio.models.inspection import Problem

DEFAULT = Path(embedded_model_path())


def copy_model(dst: Path) -> Path:
    shutil.copytree(DEFAULT, dst)
    return dst


def codes(info) -> dict[str, str]:
    return {p.code: p.severity for p in info.problems}


@pytest.fixture
def model(tmp_path) -> Path:
    return copy_model(tmp_path / "mini")


@pytest.fixture(scope="module")
def reranker(tmp_path_factory) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("reranker") / "rr"
    AutoModelForSequenceClassification.from_pretrained(str(DEFAULT), num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(str(DEFAULT)).save_pretrained(out)
    return out


def test_intact_copy_is_an_ok_embedder(model):
    info = inspection.describe(model)
    assert info.ok and info.problems == []
    assert info.kind == "embedder"
    assert info.loads_with == ["sentence-transformers"]
    assert info.name == "mini" and info.path == str(model)
    assert 80 < info.size_mb < 100
    assert info.origin == {} and not info.is_default


def test_check_encodes_the_intact_copy(model):
    (model / "studio_model.json").write_text(json.dumps({"task": "embedder", "base": "default"}))
    info = inspection.check(model)
    assert info.ok, info.problems
    assert info.origin == {"task": "embedder", "base": "default"}


def _set_vocab(folder: Path) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["vocab_size"] = 250002
    (folder / "config.json").write_text(json.dumps(cfg))


def _remove(*names):
    def breaker(folder: Path) -> None:
        for name in names:
            target = folder / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    return breaker


@pytest.mark.parametrize(("breakage", "code", "severity"), [
    (_remove("modules.json"), "missing_modules_json", "warning"),
    (_remove("sentence_bert_config.json"), "missing_sentence_bert_config", "warning"),
    (_remove("1_Pooling"), "missing_pooling", "error"),
    (_remove("tokenizer.json", "vocab.txt"), "missing_tokenizer", "error"),
    (lambda f: (f / "config.json").write_text('{"vocab_size": 30522,'), "bad_json", "error"),
    (lambda f: (f / "modules.json").write_text("[not json"), "bad_json", "error"),
    (_set_vocab, "weights_mismatch", "error"),
    (_remove("model.safetensors"), "missing_weights", "error"),
    (_remove("config.json"), "missing_config", "error"),
], ids=["no-modules-json", "no-sbert-config", "no-pooling", "no-tokenizer", "bad-config-json",
        "bad-modules-json", "vocab-mismatch", "no-weights", "no-config"])
def test_breakages_are_reported(model, breakage, code, severity):
    breakage(model)
    info = inspection.describe(model)
    assert codes(info).get(code) == severity, info.problems
    assert info.ok == (severity == "warning")
    if severity == "error":
        assert info.loads_with == []
        # check() does not try to load a folder that describe() already rejects
        assert inspection.check(model).problems == info.problems


def test_problem_params_name_the_file_and_both_shapes(model):
    (model / "config.json").write_text("{oops")
    assert Problem("bad_json", {"file": "config.json"}, "error") in inspection.describe(model).problems

    copy = copy_model(model.parent / "mini2")
    _set_vocab(copy)
    [mismatch] = [p for p in inspection.describe(copy).problems if p.code == "weights_mismatch"]
    assert mismatch.params["detail"] == "embeddings are 30522×384 but config.json says 250002×384"


def test_without_modules_json_sentence_transformers_is_not_listed(model):
    (model / "modules.json").unlink()
    info = inspection.describe(model)
    assert info.ok and info.kind == "embedder" and info.loads_with == []


def test_not_a_folder(tmp_path):
    info = inspection.describe(tmp_path / "nope")
    assert not info.ok and info.kind == "unknown" and codes(info) == {"not_a_folder": "error"}


def test_load_failure_becomes_a_problem(model):
    cfg = json.loads((model / "config.json").read_text())
    cfg["model_type"] = "no-such-architecture"  # the layout is fine, transformers cannot build it
    (model / "config.json").write_text(json.dumps(cfg))
    assert inspection.check(model, load=False).ok
    info = inspection.check(model)
    assert not info.ok and info.loads_with == []
    [problem] = info.problems
    assert problem.code == "load_failed" and problem.severity == "error"
    assert "no-such-architecture" in problem.params["detail"] and "\n" not in problem.params["detail"]


def test_weights_without_tensors_are_a_mismatch(model):
    # An empty checkpoint loads without an error in transformers: every weight is silently random.
    from safetensors.torch import save_file

    save_file({}, str(model / "model.safetensors"))
    info = inspection.describe(model)
    assert Problem("weights_mismatch", {"detail": "model.safetensors holds no tensors"}) in info.problems


def test_unreadable_safetensors_header(model):
    (model / "model.safetensors").write_bytes(b"\xff" * 64)
    info = inspection.describe(model)
    assert not info.ok and codes(info) == {"load_failed": "error"}
    assert info.problems[0].params["detail"].startswith("model.safetensors: ")


def test_m3_layout_needs_both_heads(model):
    import torch

    torch.save(torch.nn.Linear(384, 384).state_dict(), model / "colbert_linear.pt")
    info = inspection.describe(model)
    assert info.kind == "m3" and codes(info) == {"missing_sparse_linear": "error"}

    torch.save(torch.nn.Linear(384, 1).state_dict(), model / "sparse_linear.pt")
    info = inspection.check(model)
    assert info.ok, info.problems
    assert info.kind == "m3" and info.loads_with == ["sentence-transformers", "BGEM3FlagModel"]


def test_reranker_is_recognised_and_loads_with_flag_reranker(reranker):
    info = inspection.check(reranker)
    assert info.ok, info.problems
    assert info.kind == "reranker" and info.loads_with == ["FlagReranker"]


def _fake_model(folder: Path, marker: str = "config.json") -> Path:
    folder.mkdir(parents=True)
    (folder / marker).write_text("{}")
    return folder


def test_scan_lists_the_embedded_model_first_then_sorted_folders(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "README.md").write_text("# models")
    _fake_model(models / "zeta")
    _fake_model(models / "alpha", "modules.json")
    _fake_model(models / ".hidden")
    _fake_model(models / "default")  # reserved names never name a folder: 'default' means the ★ model
    (models / "junk").mkdir()
    (models / "junk" / "notes.txt").write_text("x")
    copy_model(models / "mini")

    infos = inspection.scan(models)
    assert [i.name for i in infos] == ["all-MiniLM-L6-v2", "alpha", "mini", "zeta"]
    assert infos[0].path == str(DEFAULT) and infos[0].ok
    assert [i.is_default for i in infos] == [True, False, False, False]
    assert infos[2].ok and not infos[3].ok

    registry.set_default("mini", models)
    assert [i.name for i in inspection.scan(models) if i.is_default] == ["mini"]
    assert [i.name for i in inspection.scan(tmp_path / "absent")] == ["all-MiniLM-L6-v2"]


def test_default_set_get_and_delete(tmp_path):
    models = tmp_path / "models"
    _fake_model(models / "a")
    _fake_model(models / "b")
    assert registry.get_default(models) == "all-MiniLM-L6-v2"

    registry.set_default("a", models)
    assert registry.get_default(models) == "a"
    assert (models / ".default").read_text().strip() == "a"
    with pytest.raises(StudioError) as err:
        registry.set_default("nope", models)
    assert err.value.code == "model_not_found" and err.value.params == {"name": "nope"}
    assert registry.get_default(models) == "a"
    registry.set_default("default", models)  # 'default' names the ★ model already: nothing changes
    assert registry.get_default(models) == "a"

    registry.delete("b", models)  # not the default: default unchanged
    assert not (models / "b").exists() and registry.get_default(models) == "a"
    registry.delete("a", models)  # the default: back to the embedded model
    assert not (models / "a").exists() and registry.get_default(models) == "all-MiniLM-L6-v2"

    _fake_model(models / "c")
    registry.set_default("c", models)
    registry.set_default("all-MiniLM-L6-v2", models)  # the embedded model by its name: the ★ again
    assert registry.get_default(models) == "all-MiniLM-L6-v2" and not (models / ".default").exists()
    registry.set_default("c", models)
    registry.set_default("embedded", models)
    assert registry.get_default(models) == "all-MiniLM-L6-v2"


def test_default_means_the_starred_model(tmp_path):
    """One meaning of "default": the ★ model's folder; the embedded model while no ★ is set."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "mini").symlink_to(DEFAULT, target_is_directory=True)  # a linked-in model
    assert registry.resolve("default", models) == str(DEFAULT), "no ★: the embedded model"
    registry.set_default("mini", models)
    assert registry.resolve("default", models) == str(models / "mini")
    assert registry.resolve("all-MiniLM-L6-v2", models) == str(DEFAULT), "the embedded model by its own name"
    assert registry.resolve("embedded", models) == str(DEFAULT)
    assert inspection.describe("default", models_dir=models).name == "mini"
    (models / ".default").write_text("gone\n")  # a stale ★ falls back to the embedded model
    assert registry.resolve("default", models) == str(DEFAULT)


@pytest.mark.parametrize("name", ["default", "all-MiniLM-L6-v2", "embedded", "../x", "..", "a/b", "/etc", ".default",
                                  ""])
def test_delete_refuses_anything_but_a_model_folder_name(tmp_path, name):
    models = tmp_path / "models"
    _fake_model(models / "a")
    _fake_model(tmp_path / "x")
    with pytest.raises(StudioError) as err:
        registry.delete(name, models)
    assert err.value.code == "model_protected"
    assert (tmp_path / "x").is_dir() and (models / "a").is_dir()


def test_delete_unknown_model(tmp_path):
    with pytest.raises(StudioError) as err:
        registry.delete("ghost", tmp_path)
    assert err.value.code == "model_not_found"


def test_stale_default_file_falls_back(tmp_path):
    (tmp_path / ".default").write_text("gone\n")
    assert registry.get_default(tmp_path) == "all-MiniLM-L6-v2"


def test_resolve(tmp_path, monkeypatch):
    models = tmp_path / "models"
    _fake_model(models / "mine")
    _fake_model(tmp_path / "elsewhere" / "m")
    monkeypatch.chdir(tmp_path)

    assert registry.resolve("default", models) == str(DEFAULT)
    assert registry.resolve("mine", models) == str(models / "mine")
    assert registry.resolve(str(tmp_path / "elsewhere" / "m"), models) == str(tmp_path / "elsewhere" / "m")
    assert registry.resolve("elsewhere/m", models) == str(tmp_path / "elsewhere" / "m")
    assert registry.resolve("BAAI/bge-m3", models) == "BAAI/bge-m3"
    assert registry.resolve("not-here", models) == "not-here"
