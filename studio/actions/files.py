"""Files a page names: BEIR folders in datasets/ (or the bundled ``demo``), training files in exports/ and TREC run
files in runs/.

The page lists names and hands names back; these turn them into paths inside the project's folders
(:func:`studio.actions.base.inside` refuses an absolute path, '~' or '..'). The CLI, a local admin, takes paths.
"""

from __future__ import annotations

from pathlib import Path

from studio import config
from studio.actions.base import inside
from studio.errors import NotFoundError
from studio.dataset.naming import is_validation_file

DEMO = "demo"  # the bundled demo BEIR folder (config.DEMO_DIR), as the page names it


def dataset_names() -> list[str]:
    """The BEIR folders a page may import or evaluate: ``demo``, then every folder in datasets/ with a
    corpus.jsonl, by name."""
    root = Path(config.DATASETS_DIR)
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name != DEMO and (p / "corpus.jsonl").is_file()) if root.is_dir() else []
    return [DEMO, *found]


def dataset_folder(name: str | None, *, field: str) -> Path:
    """The folder a page's dataset name stands for: ``demo`` → the bundled demo, else a folder inside datasets/."""
    if (name or "").strip() == DEMO:
        return config.DEMO_DIR
    return inside(config.DATASETS_DIR, name, field=field)


def training_file_names() -> list[str]:
    """Training files under exports/, newest first, as names inside exports/ (``run/train.jsonl``); their
    ``.valid.jsonl`` twins are left out (a job and an evaluation find those themselves)."""
    root = Path(config.EXPORTS_DIR)
    if not root.is_dir():
        return []
    files = [p for p in root.rglob("*.jsonl") if p.is_file() and not is_validation_file(p)]
    return [p.relative_to(root).as_posix() for p in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)]


def export_path(name: str | None, *, field: str) -> Path | None:
    """The file a page names inside exports/, or None when the field is empty."""
    return inside(config.EXPORTS_DIR, name, field=field) if (name or "").strip() else None


def run_file_names() -> list[str]:
    """The TREC run files a page may evaluate or search as ``run:NAME``: every file under runs/ (hidden ones
    left out), as names inside runs/ (``prod.trec``, ``2026/prod.trec``), by name."""
    root = Path(config.RUNS_DIR)
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def run_path(name: str | None, *, field: str) -> Path:
    """The run file a page names inside runs/ (an absolute path, '~' or '..' is refused: ``path_outside``).

    Raises:
        StudioError: ``empty_field``, ``path_outside``; NotFoundError ``run_file_missing``.
    """
    path = inside(config.RUNS_DIR, name, field=field)
    if not path.is_file():
        raise NotFoundError("run_file_missing", name=(name or "").strip(), folder=f"{Path(config.RUNS_DIR).name}/")
    return path
