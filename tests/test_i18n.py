"""Every string exists in both languages, and UI code takes its text only from the catalogue."""

import ast
import re
import string
from pathlib import Path

import pytest

from studio.i18n import LANGUAGES, catalogue, normalize_language, t

STUDIO = Path(__file__).resolve().parent.parent / "studio"
UI_FILES = sorted((STUDIO / "ui").rglob("*.py"))
# Dynamic key families: an f-string key such as f"rating.{v}" must have every member in the catalogue.
FAMILIES = {
    "rating.": ["0", "1", "2"],
    "band.": ["undefined", "poor", "slight", "fair", "moderate", "substantial", "almost_perfect"],
    "role.": ["annotator", "expert", "admin"],
    "annotate.btn_": ["0", "1", "2"],
    "import.kind_": ["pairs", "ratings", "beir", "logs"],
    "import.retriever_": ["bm25", "dense", "hybrid"],
    "import.count_": ["documents", "queries", "pairs", "annotators", "ratings", "adjudications"],
    "import.pool_stage_": ["bm25", "dense", "store"],
    "data.stage_": ["tfidf", "tokens", "split", "mining", "writing", "done"],
    "data.hn_": ["none", "bm25", "dense", "hybrid"],
    "data.partial_": ["drop", "positive"],
    "data.scores_": ["none", "ratings"],
    "quality.warn_": ["duplicates", "near_duplicates", "similarity", "few_triplets", "gate_failed", "gate_undefined",
                      "no_positive_queries", "no_negative_queries", "truncation"],
    "train.task_": ["embedder", "reranker"],
    "evaluate.bucket_": ["complete_failure", "partial_failure", "ranking_issue"],
    "train.status_": ["queued", "running", "succeeded", "failed", "cancelled"],
    # Settings an error names, as the Train form labels them (train.labelled).
    "train.": ["batch_size", "query_max_len", "passage_max_len", "lora_r", "group_size", "epochs", "max_steps", "lr",
               "temperature", "task", "method", "precision"],
    "models.kind_": ["embedder", "m3", "reranker", "unknown"],
    "models.problem_": ["missing_config", "missing_weights", "missing_tokenizer", "missing_modules_json",
                        "missing_sentence_bert_config", "missing_pooling", "bad_json", "weights_mismatch",
                        "missing_colbert_linear", "missing_sparse_linear", "load_failed", "not_a_folder"],
    "import.strategy_": ["imported", "random", "systems", "disagree", "uncertain", "negatives"],
    "evaluate.fusion_": ["tuned", "untuned", "pinned"],
    "tab.": ["import", "annotate", "agreement", "adjudicate", "data", "train", "models", "evaluate", "compare"],
    "audit.": ["job.create", "job.succeeded", "job.failed", "job.cancelled", "annotator.create", "annotator.role", "import", "export", "pool", "rating.update", "rating.undo", "skip.undo", "adjudicate",
               "model.default", "model.delete"],
}
# Components whose first positional argument is visible text.
TEXT_FIRST_ARG = {"Button", "Markdown", "Tab", "Accordion", "Label"}
TEXT_KEYWORDS = {"label", "info", "placeholder", "title"}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys():
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert sorted(set(en) - set(zh)) == [], "keys missing in zh-CN"
    assert sorted(set(zh) - set(en)) == [], "keys missing in en"


@pytest.mark.parametrize("key", sorted(catalogue("en")))
def test_translations_are_filled_and_use_the_same_placeholders(key):
    en, zh = catalogue("en")[key], catalogue("zh-CN")[key]
    assert en.strip() and zh.strip()
    assert placeholders(en) == placeholders(zh)


def keys_used_in_code() -> set[str]:
    used = set()
    for path in STUDIO.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name not in ("t", "i18n"):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                used.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                prefix = arg.values[0].value
                if prefix == "error.":
                    continue  # error codes are checked in test_error_codes_are_in_the_catalogue
                assert prefix in FAMILIES, f"{path.name}: dynamic key f'{prefix}...' has no family in this test"
                used.update(prefix + member for member in FAMILIES[prefix])
            elif isinstance(arg, ast.BinOp) and isinstance(arg.left, ast.Constant):
                prefix = arg.left.value
                assert prefix in FAMILIES, f"{path.name}: dynamic key '{prefix}' + ... has no family in this test"
                used.update(prefix + member for member in FAMILIES[prefix])
    return used


def test_every_key_the_code_uses_is_in_the_catalogue():
    missing = sorted(k for k in keys_used_in_code() if k not in catalogue("en"))
    assert missing == []


def test_error_codes_are_in_the_catalogue():
    codes = set()
    for path in STUDIO.rglob("*.py"):
        codes.update(re.findall(r'(?:Error|error)\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert codes, "the scan finds the error codes"
    assert sorted(c for c in codes if f"error.{c}" not in catalogue("en")) == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_ui_code_has_no_literal_text(path):
    """A visible string in a gr.* component call must come from i18n(...), not be written in the tab."""
    offenders = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "gr"):
            continue
        if node.func.attr == "Blocks":
            continue  # the page title is the product name, the same in every language (and takes no I18nData)
        texts = [kw.value for kw in node.keywords if kw.arg in TEXT_KEYWORDS]
        if node.func.attr in TEXT_FIRST_ARG and node.args:
            texts.append(node.args[0])
        for value in texts:
            if isinstance(value, (ast.Constant, ast.JoinedStr)) and not (
                    isinstance(value, ast.Constant) and (value.value in ("", None) or not isinstance(value.value, str))):
                offenders.append(f"line {node.lineno}: gr.{node.func.attr}")
    assert offenders == []


@pytest.mark.parametrize("value, expected", [
    (None, "en"), ("", "en"), ("en-US,en;q=0.9", "en"), ("zh", "zh-CN"), ("zh-CN", "zh-CN"),
    ("zh-Hans-CN", "zh-CN"), ("zh_TW", "zh-CN"), ("fr-FR", "en")])
def test_language_normalisation(value, expected):
    assert normalize_language(value) == expected


def test_translation_falls_back_to_english_then_to_the_key():
    assert t("rating.2", "zh-CN") == "相关" and t("rating.2", "en") == "Relevant"
    assert t("rating.2", "fr") == "Relevant"
    assert t("no.such.key", "zh-CN") == "no.such.key"


def test_languages_are_the_two_we_ship():
    assert LANGUAGES == ("en", "zh-CN")
