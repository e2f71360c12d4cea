"""The layering rules of docs/ARCHITECTURE.md, checked on the code: who may import what (presentation → actions →
domain, never back up to the UI, no circle between folders), who may run SQL, and that every action has a CLI verb
(or a stated reason) and a test that calls it; and that imports sit at the top of modules unless they would pull a heavy
library into a light path (the CLI's start-up)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
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


def called_actions(path: Path) -> set[str]:
    """The actions ("module.name") a test file really calls: ``module.name(…)`` or ``name(…)`` after importing it
    from studio.actions, or hands to ``assert_refused`` (as the function or as its "module.name"). A mention in a
    comment or any other string does not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: dict[str, str] = {}  # local name → actions module
    functions: dict[str, str] = {}  # local name → "module.name"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if node.module == "studio.actions":
                    modules[alias.asname or alias.name] = alias.name
                elif node.module.startswith("studio.actions."):
                    functions[alias.asname or alias.name] = f"{node.module.rsplit('.', 1)[-1]}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("studio.actions.") and alias.asname:
                    modules[alias.asname] = alias.name.rsplit(".", 1)[-1]

    def named(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in modules:
            return f"{modules[expr.value.id]}.{expr.attr}"
        if isinstance(expr, ast.Name) and expr.id in functions:
            return functions[expr.id]
        return None

    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        found.add(named(node.func))
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if callee == "assert_refused":
            for arg in node.args:
                found.add(named(arg))
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    for loop in ast.walk(tree):  # for fn, args in ((team.add_person, …), …): assert_refused(project, actor, fn, …)
        if isinstance(loop, ast.For) and any(
                isinstance(call, ast.Call) and getattr(call.func, "id", "") == "assert_refused"
                for statement in loop.body for call in ast.walk(statement)):
            found |= {named(expr) for expr in ast.walk(loop.iter) if isinstance(expr, ast.expr)}
    return found - {None}


ACTION_CALLS = set().union(*(called_actions(p) for p in sorted(TESTS.glob("test_actions_*.py"))))


@pytest.mark.parametrize("name", sorted(all_actions()))
def test_every_action_has_a_cli_verb_or_a_reason_and_a_test(name):
    spec = ACTIONS[name]
    if spec.cli is not None:
        assert spec.cli in cli_verbs(), f"{name} names the CLI verb `studio {spec.cli}`, which does not exist"
    else:
        assert spec.why_no_cli and len(spec.why_no_cli) > 10, f"{name} has no CLI verb and no reason"
    assert name in ACTION_CALLS, f"no tests/test_actions_*.py calls {name} (or hands it to assert_refused)"


def test_a_mention_of_an_action_is_not_a_call(tmp_path):
    test = tmp_path / "test_actions_x.py"
    test.write_text("from studio.actions import team\nfrom studio.actions.data import summary as s\n"
                    "# team.add_account(project, admin) in a comment\nNOTE = 'team.remove_account'\n"
                    "def test():\n    team.list_accounts(p, a)\n    s(p, a)\n"
                    "    assert_refused(p, a, team.set_role)\n    assert_refused(db, a, 'collect.pool')\n"
                    "    for fn, args in ((team.team, ()),):\n        assert_refused(p, a, fn, *args)\n")
    assert called_actions(test) == {"team.list_accounts", "data.summary", "team.set_role", "collect.pool", "team.team"}


def studio_unit(module: str) -> str | None:
    """The top-level folder or module of studio that `module` lies in ("studio.store.gold" → "store")."""
    parts = module.split(".")
    return parts[1] if parts[0] == "studio" and len(parts) > 1 else None


def studio_files() -> list[Path]:
    return sorted(STUDIO.rglob("*.py"))


def unit_of(path: Path) -> str:
    return path.relative_to(STUDIO).parts[0].removesuffix(".py")


# Everything below the presentation layer (ui/, cli/ and the `python -m studio` entry point).
DOMAIN_FILES = [p for p in studio_files() if unit_of(p) not in ("ui", "cli", "__main__")]


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(STUDIO)))
def test_no_domain_module_imports_the_ui(path):
    wrong = [f"line {line}: {module}" for line, module in imported_modules(path)
             if module == "studio.ui" or module.startswith(("studio.ui.", "studio.cli"))]
    assert not wrong, f"{path.relative_to(STUDIO)} imports the presentation layer (the arrow runs back up): {wrong}"


def folder_graph() -> dict[str, dict[str, list[str]]]:
    """unit → {imported unit → ["file:line", …]}: the folders (and top-level modules) of studio/ and their imports,
    those inside functions included."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in studio_files():
        source = unit_of(path)
        for line, module in imported_modules(path):
            target = studio_unit(module)
            if target and target != source and ((STUDIO / target).is_dir() or (STUDIO / f"{target}.py").exists()):
                graph.setdefault(source, {}).setdefault(target, []).append(f"{path.relative_to(STUDIO)}:{line}")
    return graph


def find_circle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One circle of `graph` as [a, b, …, a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_find_circle_finds_one():
    assert find_circle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b": []}, "b": {"c": []}, "a2": {"c": []}}) is None


def test_no_circle_between_folders():
    graph = folder_graph()
    circle = find_circle(graph)
    where = [f"{a} → {b}: {graph[a][b][:3]}" for a, b in zip(circle, circle[1:])] if circle else []
    assert circle is None, "the folders of studio/ import each other in a circle: " + "; ".join(where)


def test_the_registry_knows_the_actions_users_do():
    names = set(all_actions())
    assert {"annotate.rate", "annotate.skip", "annotate.undo", "agree.adjudicate", "team.add_account"} <= names
    assert {spec.role for spec in ACTIONS.values()} == {"annotator", "expert", "admin"}


# Third-party libraries that take a noticeable time to import: code may import these inside the function that needs
# them, so that `studio --help`, the app's start-up and store/ tests do not pay for them.
HEAVY_LIBRARIES = frozenset({
    "torch", "transformers", "sentence_transformers", "FlagEmbedding", "peft", "faiss", "bm25s", "sklearn", "scipy",
    "gradio", "uvicorn", "huggingface_hub", "datasets", "numpy", "playwright", "fastapi", "httpx", "pandas", "plotly",
    "ranx", "safetensors", "tokenizers", "statsmodels", "llama_cpp"})
# The function-level imports of studio modules that stay there, and why: each module imports a heavy library at its
# top, and the light path that would import it at load is named with the measured cost. (file, module) → reason.
LOCAL_IMPORTS = {
    ("actions/serve.py", "studio.serving.app"): "imports fastapi: +0.3 s for every `studio` verb",
    ("actions/serve.py", "studio.serving.service"): "imports fastapi (through studio.serving.app)",
    ("cli/team.py", "studio.ui.app"): "imports gradio: +2.5 s for every `studio` verb",
    ("cli/team.py", "studio.ui.web"): "imports starlette: +36 ms for every `studio` verb",
    ("retrieval/flag.py", "studio.retrieval.fast_encode"): "imports torch: +5 s for every `studio` verb and the app",
    # The worker checks a job (planning) before it loads the libraries (~4 s), and tests of the plan stay light.
    ("training/planning.py", "studio.training.embedder"): "imports FlagEmbedding",
    ("training/planning.py", "studio.training.reranker"): "imports FlagEmbedding",
    ("training/surgery.py", "studio.training.reranker"): "imports FlagEmbedding",
    ("training/worker.py", "studio.training.embedder"): "imports FlagEmbedding",
    ("training/worker.py", "studio.training.reranker"): "imports FlagEmbedding",
    ("training/worker.py", "studio.training.callbacks"): "imports torch, transformers",
    ("training/worker.py", "studio.training.model_export"): "imports torch",
}
# Files being written right now by other work: their function-level imports are cleaned when that work lands.
BEING_WRITTEN: set[str] = set()  # files another engineer is writing right now (none)


def studio_module(module: str, name: str) -> str:
    """What ``from module import name`` imports: the submodule ``module.name`` when there is one, else `module`."""
    candidate = STUDIO.parent / Path(*f"{module}.{name}".split("."))
    return f"{module}.{name}" if candidate.with_suffix(".py").is_file() or candidate.is_dir() else module


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import inside a function of `path` (studio submodules resolved: ``from
    studio.training import embedder`` → ``studio.training.embedder``), heavy libraries left out."""
    found = set()
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                found |= {(node.lineno, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                found |= {(node.lineno, studio_module(module, alias.name) if module.startswith("studio") else module)
                          for alias in node.names}
    return sorted((line, module) for line, module in found if module.split(".")[0] not in HEAVY_LIBRARIES)


def test_imports_sit_at_the_top_of_modules():
    """A function-level import is for a heavy library (or a studio module that imports one, in LOCAL_IMPORTS with
    its reason); anything else goes at the top of the module, where a reader sees what it depends on."""
    wrong = [f"{path.relative_to(STUDIO)}:{line}: {module}" for path in studio_files()
             if str(path.relative_to(STUDIO)) not in BEING_WRITTEN
             for line, module in function_level_imports(path)
             if (str(path.relative_to(STUDIO)), module) not in LOCAL_IMPORTS]
    assert not wrong, ("import these at the top of their modules (or, when the module drags a heavy library into a "
                       "light path, name it and the measured cost in LOCAL_IMPORTS): " + "; ".join(wrong))


def test_the_local_imports_allowed_are_still_there():
    kept = {(str(path.relative_to(STUDIO)), module) for path in studio_files() for _, module in
            function_level_imports(path)}
    assert not set(LOCAL_IMPORTS) - kept, f"no longer imported inside a function: {sorted(set(LOCAL_IMPORTS) - kept)}"


def test_function_level_imports_are_found(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    import json\n    import torch\n    from studio import config\n"
                      "    from studio.training import embedder\n\n    def g():\n        from studio.errors import X\n")
    assert function_level_imports(module) == [(4, "json"), (6, "studio.config"), (7, "studio.training.embedder"),
                                              (10, "studio.errors")]


def test_the_cli_starts_without_the_heavy_libraries():
    """Every `studio VERB` imports all verbs, so a top-level import of a module that pulls one of these in slows the
    whole CLI by seconds (what LOCAL_IMPORTS guards against, measured)."""
    heavy = ("torch", "transformers", "sentence_transformers", "FlagEmbedding", "peft", "sklearn", "scipy", "bm25s",
             "faiss", "datasets", "gradio", "fastapi", "uvicorn")
    code = f"import sys, studio.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=STUDIO.parent).stdout.strip()
    assert loaded == "[]", f"`import studio.cli` loads {loaded}"
