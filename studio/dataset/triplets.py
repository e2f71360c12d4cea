"""Export gold labels as FlagEmbedding fine-tuning data: one JSONL line per query with positives and negatives.

Files written next to ``<name>.jsonl``: ``<name>.valid.jsonl`` (held-out queries, when there are any),
``<name>.csv`` (flat query/positive/negative rows of the training lines) and ``<name>.manifest.json`` (options,
counts and the gold fingerprint, to know later what a model was trained on).

Each query gets up to ``negatives`` negatives, taken in this order until there are enough:

1. its annotated negatives (gold 0), the experts' own word;
2. with mining, documents sampled from the retriever's rank window, filtered by the false-negative guard;
3. random corpus documents, leaving out those mining ranked above the window or found too similar to a positive;
4. last resort, only with mining: documents ranked above the window that pass the guard, nearest the window first.

Mining skips the top ranks because unlabelled relevant documents hide there, so they come last; but on a corpus
no larger than the window's start they are all there is, and some negative beats none. No negative is ever a
document labelled relevant (or partially relevant) for the query. A query left without any negative is skipped
(``skipped_no_negatives`` in the counts, and a warning); an export that would write no training line at all
raises ``no_negatives`` and writes nothing.

"Check the negatives" (:mod:`studio.dataset.negatives`) queues the mined negatives most like a query's positives
for the team before an export. Their ratings need nothing special here: the export reads gold labels, so one rated
relevant (2) is a positive like any other, and one rated irrelevant (0) is an annotated negative, the first kind
above. The manifest's ``checked_negatives`` counts them (:func:`checked_counts`).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from studio import csv_safe
from studio import __version__
from studio.records import GoldSet
from studio.dataset.mining import MINING_METHODS, Mined, mine
from studio.dataset.naming import VALID_SUFFIX
from studio.dataset.split import split_queries
from studio.errors import StudioError
from studio.i18n import t

HARD_NEGATIVES = ("none", *MINING_METHODS)
PARTIAL_MODES = ("drop", "positive")
SCORE_MODES = ("none", "ratings")
MAX_NEGATIVES = 64
# Teacher scores for knowledge distillation: gold label → score; every negative (annotated 0, mined, random) is 0.
LABEL_SCORES = {2: 1.0, 1: 0.5, 0: 0.0}
# Where a negative came from, in order of preference; "above_window" negatives also count as mined.
NEGATIVE_SOURCES = ("annotated", "mined", "random", "above_window")


Progress = Callable[[float, str], None]


@dataclass
class ExportOptions:
    """How to turn gold labels into training lines (see the module docstring for the files)."""

    valid_fraction: float = 0.1
    test_fraction: float = 0.2  # kept back, no line written: what an evaluation on the project's gold can measure
    hard_negatives: str = "hybrid"
    negatives: int = 7
    partial: str = "drop"
    seed: int = 42
    model: str | None = None
    rank_window: tuple[int, int] = (10, 100)
    max_similarity: float = 0.9
    scores: str = "none"
    prompt: str = ""

    def validate(self) -> None:
        """Raise StudioError for the first option out of range."""
        if not _is_number(self.valid_fraction) or not 0 <= self.valid_fraction < 0.5:
            raise StudioError("bad_valid_fraction", value=self.valid_fraction)
        if not _is_number(self.test_fraction) or not 0 <= self.test_fraction < 0.5:
            raise StudioError("bad_test_fraction", value=self.test_fraction)
        if self.hard_negatives not in HARD_NEGATIVES:
            raise StudioError("bad_hard_negatives", value=self.hard_negatives)
        if not _is_int(self.negatives) or not 1 <= self.negatives <= MAX_NEGATIVES:
            raise StudioError("bad_negatives", value=self.negatives)
        if self.partial not in PARTIAL_MODES:
            raise StudioError("bad_partial", value=self.partial)
        window = self.rank_window
        if (not isinstance(window, (tuple, list)) or len(window) != 2 or not all(_is_int(v) for v in window)
                or not 0 <= window[0] < window[1]):
            shown = "-".join(map(str, window)) if isinstance(window, (tuple, list)) else window
            raise StudioError("bad_rank_window", value=shown)
        if self.scores not in SCORE_MODES:
            raise StudioError("bad_scores", value=self.scores)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class ExportResult:
    """Where the export went and what is in it."""

    train_path: Path
    valid_path: Path | None
    csv_path: Path
    manifest_path: Path
    counts: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    warnings: list[tuple[str, dict]] = field(default_factory=list)

    def warning_texts(self, lang: str = "en") -> list[str]:
        """The warnings (catalogue key, parameters) in `lang`, to show beside the summary."""
        return [t(key, lang, **params) for key, params in self.warnings]


@dataclass
class _Line:
    """One query's training example as document keys, before texts are filled in."""

    qid: str
    pos: list[str]
    neg: list[str]


def export_triplets(gold: GoldSet, out_path: str | Path, options: ExportOptions = ExportOptions(),
                    progress: Progress | None = None, *,
                    checked: Iterable[tuple[str, str]] = ()) -> ExportResult:
    """Write FlagEmbedding training data for the gold set.

    Args:
        gold: The gold labels and the whole corpus.
        out_path: The training file; must end with ``.jsonl``. Parent folders are created.
        options: Split, negatives, scores and prompt settings.
        progress: Called with (fraction, stage) at stages "split", "mining", "writing", "done".
        checked: (query key, document key) of the pairs "check the negatives" queued, counted in the manifest's
            ``checked_negatives`` (:func:`checked_counts`).

    Returns:
        The paths written, the counts and the manifest.

    Raises:
        StudioError: bad options or output name, no gold labels, no query with a positive (``no_positives``), or
            no training query with any negative (``no_negatives``); nothing is written then.
    """
    options.validate()
    out = Path(out_path)
    if out.suffix.lower() != ".jsonl":
        raise StudioError("bad_output", value=str(out_path))
    if not any(gold.labels.values()):
        raise StudioError("no_gold")
    partial_pos = options.partial == "positive"
    labelled = sorted(q for q, labels in gold.labels.items() if labels)
    with_pos = [q for q in labelled if gold.positives(q, partial_pos)]
    if not with_pos:
        raise StudioError("no_positives")
    report = progress or (lambda fraction, stage: None)

    report(0.0, "split")
    train_keys, valid_keys, test_keys = split_queries(gold, options.valid_fraction, options.test_fraction,
                                                      options.seed, partial_pos)

    mined = Mined()
    if options.hard_negatives != "none":
        report(0.05, "mining")
        mined = mine(gold, sorted(train_keys + valid_keys), method=options.hard_negatives, model=options.model,
                     rank_window=tuple(options.rank_window), max_similarity=options.max_similarity,
                     partial_as_positive=partial_pos, progress=lambda f, stage: report(0.05 + 0.75 * f, "mining"))

    counts = {"train_queries": 0, "valid_queries": 0, "test_queries": len(test_keys), "train_lines": 0, "valid_lines": 0, "positives": 0,
              "annotated_negatives": 0, "mined_negatives": 0, "random_negatives": 0, "above_window_negatives": 0,
              "skipped_queries": len(labelled) - len(with_pos), "skipped_no_negatives": 0}
    report(0.8, "writing")
    sampler = _RandomNegatives(gold)
    train = _lines(gold, train_keys, mined, options, sampler, counts)
    if not train:
        raise StudioError("no_negatives", queries=len(train_keys))
    valid = _lines(gold, valid_keys, mined, options, sampler, counts)
    warnings = _warnings(counts)
    counts.update(train_queries=len(train), valid_queries=len(valid), train_lines=len(train),
                  valid_lines=len(valid))

    paths = {"train": out, "valid": _sibling(out, VALID_SUFFIX) if valid else None,
             "csv": _sibling(out, ".csv"), "manifest": _sibling(out, ".manifest.json")}
    manifest = _manifest(gold, options, counts, paths)
    manifest["checked_negatives"] = checked_counts(gold, checked, options.partial)
    # The test share: never written as a line, so no fine-tune of this file learns from it (⑧ measures it)
    manifest["test"] = {"fraction": options.test_fraction, "queries": len(test_keys), "query_keys": test_keys}
    writers = {
        "train": lambda f: _write_jsonl(f, gold, train, options),
        "valid": lambda f: _write_jsonl(f, gold, valid, options),
        "csv": lambda f: _write_csv(f, gold, train),
        "manifest": lambda f: f.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"),
    }
    _write_all([(paths[k], writers[k]) for k in ("train", "valid", "csv", "manifest") if paths[k]])
    stale = _sibling(out, VALID_SUFFIX)
    if paths["valid"] is None and stale.exists():
        stale.unlink()  # an earlier export's validation file would pair with this training file otherwise
    report(1.0, "done")
    return ExportResult(paths["train"], paths["valid"], paths["csv"], paths["manifest"], counts, manifest, warnings)


def _warnings(counts: dict) -> list[tuple[str, dict]]:
    """Problems worth telling the user although the export went ahead (the CLI and the Data tab show them)."""
    out: list[tuple[str, dict]] = []
    skipped = counts["skipped_no_negatives"]
    if skipped:  # "1 query was", not "1 queries were"
        out.append(("data.warn_no_negatives_one" if skipped == 1 else "data.warn_no_negatives", {"count": skipped}))
    return out


def _manifest(gold: GoldSet, options: ExportOptions, counts: dict, paths: dict[str, Path | None]) -> dict:
    """What was exported from what, with which options: enough to tell later what a model was trained on."""
    return {
        "format": "flagembedding-jsonl",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "studio_version": __version__,
        "source_fingerprint": gold.fingerprint,
        "seed": options.seed,
        "options": asdict(options),
        "counts": counts,
        "files": {kind: path.name if path else None for kind, path in paths.items()},
    }


def checked_counts(gold: GoldSet, checked: Iterable[tuple[str, str]], partial: str = "drop") -> dict[str, int]:
    """What became of the mined negatives "check the negatives" queued, from their gold labels.

    ``queued``: the pairs; ``rated``: those with a gold label (agreed or adjudicated); of these,
    ``flipped_to_positive``: gold 2, and gold 1 when `partial` is ``positive`` (the export writes them as positives);
    ``confirmed_negative``: gold 0 (written as annotated negatives); ``partial``: gold 1 when `partial` is ``drop``
    (neither positive nor negative). So rated = flipped_to_positive + confirmed_negative + partial.
    """
    counts = {"queued": 0, "rated": 0, "flipped_to_positive": 0, "confirmed_negative": 0, "partial": 0}
    for qid, did in checked:
        counts["queued"] += 1
        label = gold.labels.get(qid, {}).get(did)
        if label is None:
            continue
        counts["rated"] += 1
        if label == 2 or (label == 1 and partial == "positive"):
            counts["flipped_to_positive"] += 1
        elif label == 0:
            counts["confirmed_negative"] += 1
        else:
            counts["partial"] += 1
    return counts


def _sibling(path: Path, suffix: str) -> Path:
    """``dir/train.jsonl`` → ``dir/train<suffix>``."""
    return path.with_name(path.name[: -len(path.suffix)] + suffix)


def _lines(gold: GoldSet, keys: list[str], mined: Mined, options: ExportOptions,
           sampler: _RandomNegatives, counts: dict) -> list[_Line]:
    """Training lines for `keys`, in key order; updates the positive/negative counts."""
    partial_pos = options.partial == "positive"
    lines = []
    for qid in sorted(keys):
        by_source = _negatives(gold, qid, mined, options, sampler)
        neg = [d for source in NEGATIVE_SOURCES for d in by_source[source]]
        if not neg:
            # FlagEmbedding needs at least one negative per line; only a corpus of nothing but positives (and
            # their copies) gets here.
            counts["skipped_no_negatives"] += 1
            continue
        pos = gold.positives(qid, partial_pos)
        counts["positives"] += len(pos)
        for source in NEGATIVE_SOURCES:
            counts[f"{source}_negatives"] += len(by_source[source])
        counts["mined_negatives"] += len(by_source["above_window"])
        lines.append(_Line(qid, pos, neg))
    return lines


def _negatives(gold: GoldSet, qid: str, mined: Mined, options: ExportOptions,
               sampler: _RandomNegatives) -> dict[str, list[str]]:
    """Up to ``options.negatives`` negatives for `qid` by source, filled in the order of the module docstring."""
    n = options.negatives
    # One generator per query, seeded by the export seed and the query key: a query's negatives do not
    # change when other queries are added or removed.
    rng = random.Random(f"{options.seed}:{qid}")
    annotated = gold.negatives(qid)
    rng.shuffle(annotated)
    annotated = annotated[:n]
    chosen = set(annotated)
    pool = [d for d in mined.candidates.get(qid, []) if d not in chosen]
    picked = set(rng.sample(pool, min(n - len(chosen), len(pool))))
    hard = [d for d in pool if d in picked]  # kept in rank order, best first
    chosen.update(hard)
    extra = sampler.sample(qid, n - len(chosen), chosen | mined.avoid.get(qid, set()), rng)
    chosen.update(extra)
    # Deterministic, no draw: the documents just above the window are the least likely unlabelled positives.
    above = [d for d in mined.above.get(qid, []) if d not in chosen][: n - len(chosen)]
    return {"annotated": annotated, "mined": hard, "random": extra, "above_window": above}


class _RandomNegatives:
    """Random corpus documents not labelled relevant for a query, without scanning the corpus per query."""

    def __init__(self, gold: GoldSet):
        self.gold = gold
        self.keys = sorted(gold.corpus)

    def sample(self, qid: str, n: int, exclude: set[str], rng: random.Random) -> list[str]:
        """Up to `n` documents not labelled 1/2 for `qid`, not in `exclude`, and not a verbatim copy of a positive."""
        if n <= 0:
            return []
        relevant = {d for d, label in self.gold.labels.get(qid, {}).items() if label >= 1}
        relevant_texts = {self.gold.corpus[d] for d in relevant if d in self.gold.corpus}
        taken = set(exclude)

        def allowed(d: str) -> bool:
            return d not in relevant and d not in taken and self.gold.corpus[d] not in relevant_texts

        out: list[str] = []
        # Rejection sampling is O(n) when most of the corpus is allowed; after a bounded number of draws fall back
        # to one scan (small corpora, or queries with many labelled documents).
        draws = 8 * n + 32
        while len(out) < n and draws:
            draws -= 1
            d = self.keys[rng.randrange(len(self.keys))]
            if allowed(d):
                out.append(d)
                taken.add(d)
        if len(out) == n:
            return out
        rest = [d for d in self.keys if allowed(d)]
        return out + rng.sample(rest, min(n - len(out), len(rest)))


def _record(gold: GoldSet, line: _Line, options: ExportOptions) -> dict:
    """One FlagEmbedding JSONL object."""
    record: dict = {"query": gold.queries[line.qid], "pos": [gold.corpus[d] for d in line.pos],
                    "neg": [gold.corpus[d] for d in line.neg]}
    if options.scores == "ratings":
        labels = gold.labels.get(line.qid, {})
        record["pos_scores"] = [LABEL_SCORES[labels[d]] for d in line.pos]
        record["neg_scores"] = [0.0 for _ in line.neg]
    if options.prompt:
        record["prompt"] = options.prompt
    return record


def _write_jsonl(f: TextIO, gold: GoldSet, lines: list[_Line], options: ExportOptions) -> None:
    for line in lines:
        f.write(json.dumps(_record(gold, line, options), ensure_ascii=False) + "\n")


def _write_csv(f: TextIO, gold: GoldSet, lines: list[_Line]) -> None:
    """Flat (query, positive, negative) rows: every positive with every negative of each training line. A text a
    spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+1``, ``-2``, ``@SUM(…)``) gets a leading ``'``
    (:mod:`studio.csv_safe`); the JSONL files keep the texts as they are."""
    writer = csv_safe.writer(f, lineterminator="\n")
    writer.writerow(["query", "positive", "negative"])
    for line in lines:
        query = gold.queries[line.qid]
        for p in line.pos:
            for n in line.neg:
                writer.writerow([query, gold.corpus[p], gold.corpus[n]])


def _write_all(files: list[tuple[Path, Callable[[TextIO], object]]]) -> None:
    """Write every file under a temporary name, then rename them all; on failure remove the temporaries."""
    temporaries: list[tuple[Path, Path]] = []
    try:
        for path, write in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temporaries.append((tmp, path))
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                write(f)
        for tmp, path in temporaries:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temporaries:
            tmp.unlink(missing_ok=True)
        raise
