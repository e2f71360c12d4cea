"""TREC run files: a system's rankings computed elsewhere (a production search, another toolkit), evaluated and
searched as the system stage ``run:FILE`` (:mod:`studio.retrieval.systems`).

One line per (query, document), whitespace separated, as :func:`studio.evaluation.runner.write_trec`, trec_eval and
ranx write it::

    qid Q0 docid rank score tag

Query and document ids are the project's external keys (the keys of its imports, of BEIR and of
:func:`studio.store.gold.gold_set`). A query's documents rank by score, highest first (ties: document id), as
trec_eval and ranx rank them; the rank column must be an integer but does not decide the order.

Parsing is strict: a line that is not six fields, a second field other than ``Q0`` (or ``0``), a rank that is not
an integer, a score that is not a finite number or a document listed twice for one query is an
:class:`~studio.errors.InputError` naming the file, the line and the field. Blank lines are skipped.

FILE names a file inside the project's runs/ folder (:data:`studio.config.RUNS_DIR`); the CLI may also give a path
to an existing file (:func:`run_path`). The page only names files inside runs/ (studio.actions.files.run_path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from studio import config
from studio.errors import InputError, NotFoundError, StudioError
from studio.recent import Recent

FIELDS = ("qid", "Q0", "docid", "rank", "score", "tag")
Q0 = ("Q0", "0")
MAX_KEPT = 4  # parsed run files kept in memory (⑨ searches one query at a time)


@dataclass(frozen=True)
class TrecRun:
    """A parsed run file: query id → {document id: score}, the data lines read and the tags seen."""

    path: Path
    run: dict[str, dict[str, float]]
    lines: int
    tags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    def ranking(self, query: str, depth: int | None = None) -> list[tuple[str, float]]:
        """`query`'s documents best first (ties: document id), the first `depth` of them; empty when the run
        has no ranking for it."""
        ranked = sorted(self.run.get(query, {}).items(), key=lambda item: (-item[1], item[0]))
        return ranked if depth is None else ranked[:depth]


_kept: Recent[TrecRun] = Recent(MAX_KEPT)


def run_path(name: str) -> Path:
    """The file ``run:NAME`` stands for: `name` inside runs/, else `name` as a path to an existing file.

    Raises:
        StudioError: ``system_empty`` for an empty name; NotFoundError ``run_file_missing``.
    """
    text = (name or "").strip()
    if not text:
        raise StudioError("system_empty")
    inside = Path(config.RUNS_DIR) / text
    if inside.is_file():
        return inside
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise NotFoundError("run_file_missing", name=text, folder=f"{Path(config.RUNS_DIR).name}/")


def load_run(name: str | Path) -> TrecRun:
    """:func:`read_trec` of :func:`run_path`'s file (or of the path `name`), kept in memory until the file changes.
    Errors name a file inside runs/ as ``runs/NAME`` (a page never sees the server's paths)."""
    path = name if isinstance(name, Path) else run_path(name)
    root = Path(config.RUNS_DIR).resolve()
    full = path.resolve()
    shown = f"{root.name}/{full.relative_to(root).as_posix()}" if root in full.parents else str(path)
    stat = path.stat()
    return _kept.get((str(full), stat.st_mtime_ns, stat.st_size), lambda: read_trec(path, shown=shown))


def read_trec(path: str | Path, *, shown: str | None = None) -> TrecRun:
    """Parse a TREC run file strictly (see the module docstring); errors name it `shown` (default: `path`).

    Raises:
        InputError: ``file_not_found``, ``invalid_utf8``, ``trec_fields``, ``trec_q0``, ``trec_rank``,
            ``trec_score``, ``trec_duplicate`` (each with the line and field), ``no_rows``.
    """
    path = Path(path)
    shown = shown or str(path)
    if not path.is_file():
        raise InputError("file_not_found", file=shown)
    run: dict[str, dict[str, float]] = {}
    first_line: dict[tuple[str, str], int] = {}
    tags: dict[str, None] = {}
    lines = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("invalid_utf8", file=shown, line=number) from None
            fields = line.split()
            if not fields:
                continue
            if len(fields) != len(FIELDS):
                missing = FIELDS[len(fields)] if len(fields) < len(FIELDS) else FIELDS[-1]
                raise InputError("trec_fields", file=shown, line=number, field=missing, count=len(fields))
            qid, q0, doc, rank, score, tag = fields
            if q0 not in Q0:
                raise InputError("trec_q0", file=shown, line=number, field="Q0", value=q0)
            try:
                int(rank)
            except ValueError:
                raise InputError("trec_rank", file=shown, line=number, field="rank", value=rank) from None
            try:
                value = float(score)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise InputError("trec_score", file=shown, line=number, field="score", value=score)
            if (qid, doc) in first_line:
                raise InputError("trec_duplicate", file=shown, line=number, field="docid", doc=doc, query=qid,
                                 first=first_line[(qid, doc)])
            first_line[(qid, doc)] = number
            run.setdefault(qid, {})[doc] = value
            tags.setdefault(tag)
            lines += 1
    if not lines:
        raise InputError("no_rows", file=shown)
    return TrecRun(path, run, lines, tuple(tags))
