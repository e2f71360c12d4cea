"""⑤ Data: the quality report of the gold labels and the triplet export for fine-tuning (admins)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio import config
from studio.actions.base import Actor, Project, action, audit
from studio.dataset import triplets
from studio.dataset.negatives import SOURCE as CHECKED
from studio.dataset.quality import THRESHOLDS, quality_report
from studio.dataset.triplets import ExportOptions
from studio.models.registry import get_default
from studio.store.adjudication import pooled_kappa
from studio.store.gold import gold_set
from studio.store.queue import source_pairs

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Quality:
    """A quality report, the thresholds its warnings use, and the JSON file it was saved to (if any)."""

    report: object            # studio.dataset.quality.QualityReport
    thresholds: dict
    path: Path | None = None


def default_model(model: str | None = None) -> str:
    """`model`, or the default model (★ in ⑦) when it is None or empty: what ⑤ prepares data for."""
    return (model or "").strip() or get_default()


def default_export_name() -> str:
    """The export's default file name inside exports/: ``<timestamp>/train.jsonl``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}/train.jsonl"


def default_quality_path() -> Path:
    """Where the app saves a quality report: ``exports/quality-<timestamp>.json``."""
    return Path(config.EXPORTS_DIR) / f"quality-{time.strftime('%Y%m%d-%H%M%S')}.json"


@action("admin", why_no_cli="the model box of ⑤ (the CLI shows ★ with `studio models`)")
def model_for_data(project: Project, actor: Actor) -> str:
    """The model ⑤ prepares for when its box is left empty: the default model (★)."""
    return default_model()


@action("admin", cli="quality")
def quality(project: Project, actor: Actor, model: str | None = None, progress: Progress | None = None, *,
            out_path: str | Path | None = None, existing: bool = False) -> Quality:
    """Quality report of the gold labels: counts, duplicates, positive/negative similarity, lengths, warnings.

    Args:
        model: whose tokenizer counts tokens; None or empty means the default model (★).
        out_path: also save the report there as JSON (folders are created).
    """
    with project.db(existing=existing) as db:
        gold, kappa = gold_set(db), pooled_kappa(db)
    report = quality_report(gold, kappa=kappa, model=default_model(model), progress=progress)
    path = None
    if out_path is not None:
        path = Path(out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return Quality(report, dict(THRESHOLDS), path)


@action("admin", cli="export triplets")
def export_triplets(project: Project, actor: Actor, out_path: str | Path | None = None, *,
                    valid_fraction: float = 0.1, test_fraction: float = 0.2, hard_negatives: str = "hybrid",
                    negatives: int = 7,
                    partial: str = "drop", seed: int = 42, model: str | None = None,
                    rank_window: tuple[int, int] = (10, 100), scores: str = "none", prompt: str = "",
                    progress: Progress | None = None, existing: bool = False):
    """Gold labels → FlagEmbedding JSONL (``{"query", "pos", "neg"}``), split by query, with hard negatives.

    Args:
        out_path: the training file; default ``exports/<timestamp>/train.jsonl``. Its ``.valid.jsonl``, ``.csv``
            and ``.manifest.json`` are written beside it.
        model: embedder for dense mining; None or empty means the default model (★).
        test_fraction: share of the labelled queries kept back (no line written; the manifest's ``test`` names
            them): what ⑧ measures a fine-tune of this file on.

    Returns:
        The :class:`~studio.dataset.triplets.ExportResult` (paths, counts, manifest, warnings). The manifest's
        ``checked_negatives`` counts what became of the pairs "check the negatives" queued (strategy
        ``negatives``). The export is audited (where it wrote, the counts).
    """
    out = Path(out_path) if out_path else Path(config.EXPORTS_DIR) / default_export_name()
    options = ExportOptions(valid_fraction=valid_fraction, test_fraction=test_fraction, hard_negatives=hard_negatives, negatives=negatives,
                            partial=partial, seed=seed, model=default_model(model), rank_window=rank_window,
                            scores=scores, prompt=prompt or "")
    with project.db(existing=existing) as db:
        gold, checked = gold_set(db), source_pairs(db, CHECKED)
    result = triplets.export_triplets(gold, out, options, progress=progress, checked=checked)
    files = [str(p) for p in (result.train_path, result.valid_path, result.csv_path, result.manifest_path) if p]
    audit(project, actor, "export", entity="export",
          after={"path": str(result.train_path), "files": files, "counts": result.counts,
                 "checked_negatives": result.manifest["checked_negatives"], "model": options.model,
                 "source_fingerprint": result.manifest.get("source_fingerprint")})
    return result
