"""Held out by construction: what each model learned from, so no evaluation scores it there.

A studio-trained model's ``studio_model.json`` records its training and validation files and, since 2026-12, a
fingerprint of every query text in them (``"queries": {"train": [...], "valid": [...]}``): the record stays true when
an export is later rewritten under the same name or deleted. A model without fingerprints (trained before) falls back
to the files, while they exist. A model fine-tuned from another studio model learned what that one learned too (its
``base``, followed to the root).

An evaluation (⑧, ``studio eval``, calibration, the learning curve, recipes) leaves out, by default, every query that
any model of the evaluated systems — every stage, rerankers included — was trained or validated on
(:func:`hold_out`), and says how many it left out. Scoring them anyway is an explicit choice (``include_trained``),
and such a report recommends no system and exports no recipe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from studio.dataset.naming import validation_twin
from studio.errors import StudioError
from studio.evaluation.runner import EvalSet
from studio.i18n import t
from studio.models.registry import ORIGIN_FILE, resolve
from studio.retrieval.systems import parse
from studio.training.train_file import file_fingerprints, fingerprint

QUERIES_KEY = "queries"  # in studio_model.json: {"train": [fingerprint, ...], "valid": [...]}


@dataclass(frozen=True)
class Learned:
    """The query fingerprints a model was trained on (gradient steps) and validated on (a loss watched), with where
    they came from: ``fingerprints`` (recorded at training time), ``files`` (read from the files still on disk) or
    ``none`` (not a studio-trained model, or nothing left to read)."""

    model: str
    train: frozenset[str] = frozenset()
    valid: frozenset[str] = frozenset()
    source: str = "none"

    @property
    def all(self) -> frozenset[str]:
        return self.train | self.valid


def learned(model: str, models_dir: str | Path | None = None) -> Learned:
    """What `model` (a name in models/, ``default``, a folder or a hub id) learned from, its studio bases included."""
    train: set[str] = set()
    valid: set[str] = set()
    sources: list[str] = []
    seen: set[str] = set()
    path = resolve(model, models_dir)
    while path and path not in seen:
        seen.add(path)
        try:
            info = json.loads((Path(path) / ORIGIN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            break
        if not isinstance(info, dict):
            break
        recorded = info.get(QUERIES_KEY)
        if isinstance(recorded, Mapping):
            train |= set(recorded.get("train") or ())
            valid |= set(recorded.get("valid") or ())
            sources.append("fingerprints")
        else:  # trained before fingerprints were recorded: read the files still on disk
            files = [("train", info.get("train")), ("valid", info.get("valid"))]
            if isinstance(info.get("train"), str):  # the job validated on the twin beside its training file
                files.append(("valid", validation_twin(info["train"])))
            for key, file in files:
                if file and Path(file).is_file():
                    try:
                        (train if key == "train" else valid).update(file_fingerprints(file))
                    except (OSError, ValueError, KeyError, TypeError):
                        continue  # not FlagEmbedding JSONL any more: nothing to read
                    sources.append("files")
        base = info.get("base_path")  # the folder it was trained from ("base" may say "default", which moves)
        path = str(Path(base).resolve()) if isinstance(base, str) and base and Path(base).is_dir() else None
    source = "files" if "files" in sources else "fingerprints" if sources else "none"
    return Learned(str(model), frozenset(train), frozenset(valid - train), source)


@dataclass
class HeldOut:
    """What an evaluation left out: ``left_out`` of the labelled queries (``by_model``: how many of them each model
    learned from), ``queries`` evaluated; ``included`` when the user chose to score them anyway."""

    queries: int
    left_out: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    included: bool = False

    def as_dict(self) -> dict:
        return {"queries": self.queries, "left_out": self.left_out, "by_model": dict(self.by_model),
                "included": self.included, "trained_on_evaluated": self.left_out if self.included else 0}


def models_of(specs: Iterable[str]) -> list[str]:
    """The models the system specs run, every stage and reranker, each once (in order)."""
    return list(dict.fromkeys(m for spec in specs for m in parse(spec).models))


def hold_out(evalset, models: Iterable[str], *, include_trained: bool = False):
    """`evalset` without every query that one of `models` was trained or validated on, and the :class:`HeldOut`
    account; with `include_trained` the set is unchanged and the account says how many such queries it kept.

    Raises:
        StudioError: ``no_held_out_queries`` when every labelled query was learned from.
    """
    fingerprints = {q: fingerprint(evalset.queries[q]) for q in evalset.qrels}
    by_model = {}
    seen: set[str] = set()
    for model in dict.fromkeys(models):
        known = learned(model).all
        overlap = {q for q, fp in fingerprints.items() if fp in known}
        if overlap:
            by_model[model] = len(overlap)
            seen |= overlap
    if include_trained or not seen:
        return evalset, HeldOut(len(evalset.qrels), len(seen), by_model, include_trained and bool(seen))
    qrels = {q: labels for q, labels in evalset.qrels.items() if q not in seen}
    if not qrels:
        raise StudioError("no_held_out_queries", queries=len(evalset.qrels), models=", ".join(by_model))
    kept = EvalSet(evalset.name, {q: evalset.queries[q] for q in qrels}, evalset.corpus, qrels)
    return kept, HeldOut(len(qrels), len(seen), by_model)


def validated_only(queries: Mapping[str, str], models: Iterable[str]) -> set[str]:
    """The keys of `queries` that some of `models` was validated on and none trained on: an export's validation
    split, left out of evaluation, never a gradient step — what a fusion weight may be tuned on."""
    trained: set[str] = set()
    valid: set[str] = set()
    for model in dict.fromkeys(models):
        known = learned(model)
        trained |= known.train
        valid |= known.valid
    return {q for q, text in queries.items() if (fp := fingerprint(text)) in valid and fp not in trained}


def held_out_line(held: Mapping | None, lang: str) -> str | None:
    """What the evaluation left out, in `lang`: "Left out 20 labelled queries that demo-ft was trained or validated
    on; 10 held-out queries remain." — or, when they were scored anyway, why nothing is recommended. None when
    nothing was learned from."""
    if not held or not held.get("left_out"):
        return None
    models = ", ".join(f"{m} ({n})" for m, n in held.get("by_model", {}).items())
    key = "heldout.included" if held.get("included") else "heldout.left_out"
    return t(key, lang, left_out=held["left_out"], queries=held["queries"], models=models)
