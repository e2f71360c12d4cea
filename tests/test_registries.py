"""Each registry is the only list of its names: no module outside the registry spells a queue strategy's name.

A strategy's name may appear in docs (README, docstrings) and the locale catalogues (its label and help keys), but no
code outside studio/queue/ compares with it, lists it or passes it as a literal: the UI, the CLI and the actions read
:data:`studio.queue.STRATEGIES`, so adding a strategy is one module + one registry entry + one test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio import queue as strategies
from studio.cli import cli
from studio.i18n import t

ROOT = Path(__file__).resolve().parent.parent
STUDIO = ROOT / "studio"
NAMES = set(strategies.names())
OUTSIDE = sorted(p for p in STUDIO.rglob("*.py") if STUDIO / "queue" not in p.parents)


def strategy_literals(source: str) -> list[tuple[int, str]]:
    """(line, name) of each strategy name used as a value in code: compared with, listed beside another strategy
    name, passed to a queue/strategy/order/setting call or given as a default. Docstrings and dict keys of unrelated records do not count."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []

    def named(node: ast.AST) -> list[ast.Constant]:
        return [n for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in NAMES]

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            found += [(c.lineno, c.value) for c in named(node)]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            literals = [e for e in node.elts if isinstance(e, ast.Constant) and e.value in NAMES]
            if len(literals) >= 2:
                found += [(c.lineno, c.value) for c in literals]
        elif isinstance(node, ast.Call) and re.search(r"strateg|queue|order|setting", ast.unparse(node.func)):
            found += [(a.lineno, a.value) for a in [*node.args, *(k.value for k in node.keywords)]
                      if isinstance(a, ast.Constant) and a.value in NAMES]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            found += [(d.lineno, d.value) for d in defaults if isinstance(d, ast.Constant) and d.value in NAMES]
    return sorted(set(found))


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(STUDIO)))
def test_no_module_outside_the_registry_spells_a_strategy_name(path: Path):
    found = strategy_literals(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(ROOT)} spells queue strategy names {found}: read studio.queue.STRATEGIES "
                       "(via studio.actions.queue in ui/ and cli/) instead")


def test_the_check_finds_a_copied_list_and_a_comparison():
    assert strategy_literals('S = ("imported", "random")\nif name == "negatives": pass\n') == [
        (1, "imported"), (1, "random"), (2, "negatives")]
    assert strategy_literals('"""systems first."""\nx = {"systems": 1}\n') == []


def test_every_strategy_has_its_labels_in_both_languages_and_the_cli_offers_exactly_the_registry():
    for s in strategies.STRATEGIES.values():
        for lang in ("en", "zh-CN"):
            assert t(s.label_key, lang) != s.label_key and t(s.help_key, lang) != s.help_key, (s.name, lang)
    result = CliRunner().invoke(cli, ["queue", "strategy", "--help"])
    offered = re.search(r"\{([a-z|\s]+)\}", result.output).group(1)
    assert re.sub(r"\s", "", offered).split("|") == list(strategies.names())


def test_the_readme_names_the_registry_strategies():
    listed = re.findall(r"studio queue strategy ((?:[a-z]+\|)+[a-z]+)", (ROOT / "README.md").read_text())
    assert listed and all(set(line.split("|")) == NAMES for line in listed)


def test_unknown_strategy_names_the_choices():
    with pytest.raises(Exception) as err:
        strategies.get("smartest")
    assert "smartest" in str(err.value) and all(n in str(err.value) for n in NAMES)


def test_the_training_settings_table_is_the_one_list_of_settings():
    """TrainConfig's fields, `studio train`'s options and the ⑥ form's hyper-parameters all come from
    studio/training/settings.py: a setting added there (and on TrainConfig) reaches the CLI and the form."""
    from dataclasses import fields

    from studio.cli.train import train
    from studio.training.config import CLI_FLAGS, TrainConfig
    from studio.training.settings import SETTINGS
    from studio.ui.tabs import train as train_tab

    assert {f.name for f in fields(TrainConfig)} == {s.name for s in SETTINGS}, "a field without a row, or a row " \
        "without a field"
    config = TrainConfig(task="embedder", base="default", train="x", name="n", output_dir="")
    assert all(getattr(config, s.name) == s.fresh_default() for s in SETTINGS if not s.required and s.name != "base"
               and s.name != "output_dir")
    options = {o.opts[0]: o for o in train.params if o.opts[0].startswith("--") and o.name != "gpus"}
    assert set(options) == {s.flag for s in SETTINGS if s.flag} == set(CLI_FLAGS.values())
    for s in SETTINGS:
        if s.flag and s.choices:
            assert tuple(options[s.flag].type.choices) == s.choices, s.flag
        if s.flag and not s.required and s.default is not None and s.type is not list:
            assert options[s.flag].default == s.default, s.flag
    assert train_tab.FORM[5:] == tuple(s.name for s in SETTINGS if s.advanced)


def test_the_reranker_depth_is_one_value_in_the_cli_evaluate_and_compare():
    """It was 100 in `studio eval`, 20 in ⑧ and 30 in ⑨: now studio.retrieval.systems.RERANK_TOP everywhere."""
    import inspect

    from studio.actions import search
    from studio.cli.evaluate import eval_ as evaluate_command
    from studio.retrieval.systems import FIRST_STAGE_DEPTH, RERANK_TOP
    from studio.ui.tabs import evaluate as evaluate_tab

    option = next(p for p in evaluate_command.params if p.name == "rerank_top")
    assert option.default == RERANK_TOP == search.default_depth()
    assert inspect.signature(evaluate_tab.run).parameters["rerank_top"].default == RERANK_TOP
    assert FIRST_STAGE_DEPTH >= RERANK_TOP, "a reranker rescores candidates the first stage retrieved"


@pytest.mark.parametrize("path", sorted(STUDIO.rglob("*.py")), ids=lambda p: str(p.relative_to(STUDIO)))
def test_no_depth_default_is_a_bare_number(path: Path):
    """A first-stage or reranker depth's default is the named constant beside its concept, never a literal."""
    depth_params = {"rerank_top", "rerank_depth", "depth"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = [*a.posonlyargs, *a.args]
            pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults))
            pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            found += [(node.name, arg.arg, d.value) for arg, d in pairs
                      if arg.arg in depth_params and isinstance(d, ast.Constant) and d.value in (20, 30, 100)]
    assert not found, f"{path.relative_to(ROOT)}: {found}"
