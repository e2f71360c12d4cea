"""A saved index written as a whole new generation folder and made live by replacing ``current.json`` (temp file +
rename): a crash at any point leaves the previous generation live and whole. Older generations are removed after
the switch; a process that still memory-maps one keeps reading it (Linux frees unlinked files with their last
mapping)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def new_generation(folder: Path) -> Iterator[tuple[Path, dict]]:
    """Yield (an empty generation folder inside `folder`, the meta dict to fill); when the block ends, the meta —
    with ``"generation"`` set to the folder's name — becomes ``current.json`` and the other generations go. An
    exception inside the block removes the new folder and leaves ``current.json`` as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    generation = f"g{os.getpid()}-{os.urandom(4).hex()}"
    target = folder / generation
    target.mkdir()
    meta: dict = {}
    try:
        yield target, meta
        tmp = folder / f"current.{generation}.tmp"
        tmp.write_text(json.dumps({**meta, "generation": generation}), encoding="utf-8")
        os.replace(tmp, folder / "current.json")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    for other in folder.iterdir():
        if other.is_dir() and other.name != generation:
            shutil.rmtree(other, ignore_errors=True)
