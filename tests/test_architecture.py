"""The layering rules of DESIGN.md, checked on the code: who may import what, who may run SQL, and that every action
has a CLI verb (or a stated reason) and a test."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import click
import pytest

import studio.actions
from studio.actions.base import ACTIONS
from studio.cli import cli

STUDIO = Path(__file__).resolve().parent.parent / "studio"
TESTS = Path(__file__).resolve().parent
# What presentation code (ui/, cli/) may import from the studio: actions and presentation helpers.
PRESENTATION_MAY_IMPORT = ("studio.actions", "studio.ui", "studio.cli", "studio.i18n", "studio.errors", "studio.config")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                                                    if node.module == "studio"]
    return found


PRESENTATION_FILES = sorted([*(STUDIO / "ui").rglob("*.py"), *(STUDIO / "cli").rglob("*.py")])


@pytest.mark.parametrize("path", PRESENTATION_FILES, ids=lambda p: str(p.relative_to(STUDIO)))
def test_ui_and_cli_call_actions_not_the_domain(path):
    wrong = [f"line {line}: {module}" for line, module in imported_modules(path)
             if module.startswith("studio.") and not module.startswith(PRESENTATION_MAY_IMPORT)]
    assert not wrong, f"{path.name} imports the domain directly (go through studio.actions): {wrong}"


SQL = re.compile(r"\.(execute|executescript|executemany|query)\(|\bimport sqlite3\b|\bsqlite3\.")


@pytest.mark.parametrize("path", sorted(p for p in STUDIO.rglob("*.py") if "store" not in p.relative_to(STUDIO).parts),
                         ids=lambda p: str(p.relative_to(STUDIO)))
def test_nothing_outside_store_runs_sql(path):
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if SQL.search(line)]
    assert not lines, f"SQL outside studio/store in {path.name}: {lines}"


def all_actions() -> dict:
    for module in pkgutil.iter_modules(studio.actions.__path__):
        importlib.import_module(f"studio.actions.{module.name}")
    return dict(ACTIONS)


def cli_verbs(group: click.Group = cli, prefix: str = "") -> set[str]:
    verbs = set()
    for name, command in group.commands.items():
        verbs.add(prefix + name)
        if isinstance(command, click.Group):
            verbs |= cli_verbs(command, prefix + name + " ")
    return verbs


ACTION_TESTS = "\n".join(p.read_text(encoding="utf-8") for p in sorted(TESTS.glob("test_actions_*.py")))


@pytest.mark.parametrize("name", sorted(all_actions()))
def test_every_action_has_a_cli_verb_or_a_reason_and_a_test(name):
    spec = ACTIONS[name]
    if spec.cli is not None:
        assert spec.cli in cli_verbs(), f"{name} names the CLI verb `studio {spec.cli}`, which does not exist"
    else:
        assert spec.why_no_cli and len(spec.why_no_cli) > 10, f"{name} has no CLI verb and no reason"
    assert re.search(rf"\b{re.escape(name)}\b", ACTION_TESTS), f"no tests/test_actions_*.py calls {name}"


def test_the_registry_knows_the_actions_users_do():
    names = set(all_actions())
    assert {"annotate.rate", "annotate.skip", "annotate.undo", "agree.adjudicate", "team.add_account"} <= names
    assert {spec.role for spec in ACTIONS.values()} == {"annotator", "expert", "admin"}
