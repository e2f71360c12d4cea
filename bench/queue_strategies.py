"""Which queue strategy finds what matters: relevant pairs found per 100 ratings, each strategy against imported and
random order, with the man-page benchmark's qrels as the simulated annotator.

For each language: a fresh project gets the man-page corpus and queries (bench/manpages.py; the train split's
qrels come in as reference labels, the gold the ``uncertain`` strategy calibrates on), then pools the top 20
(hybrid) for every query — the pairs a team would rate. Each strategy orders those pairs; the first N in serving
order are "rated" by looking them up in the qrels (train and test). Prints one JSON line per language and
strategy, then the ratios.

    python bench/queue_strategies.py [--langs zh,en] [--limit PAGES] [--k 20]
    python bench/queue_strategies.py --smoke       # CI: 40 pages, every strategy once
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
BUDGETS = (100, 200, 500)


def load_manpages():
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def qrels(folder: Path) -> set[tuple[str, str]]:
    """(query id, document id) pairs the man-page set calls relevant, over every split."""
    relevant = set()
    for path in (folder / "qrels").glob("*.tsv"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            parts = line.split("\t")
            if n == 0 and not parts[-1].strip().lstrip("-").isdigit():
                continue
            if len(parts) >= 3 and int(parts[-1]) > 0:
                relevant.add((parts[0], parts[1]))
    return relevant


def run(lang: str, folder: Path, k: int, seed: int) -> list[dict]:
    from studio.actions import Actor, Project, collect, queue
    from studio.store import opened
    from studio.store.queue import serving_order

    relevant = qrels(folder)
    admin = Actor.local("bench")
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Project(Path(tmp) / "queue.db")
        collect.import_file(project, admin, "beir", folder, split="train", queue=False)
        pooled = collect.pool(project, admin, k, "hybrid")
        with opened(project.db_path) as db:
            key_of = {r["id"]: (r["qkey"], r["dkey"]) for r in db.query(
                "SELECT p.id, q.key AS qkey, d.key AS dkey FROM pairs p JOIN queries q ON q.id = p.query_id "
                "JOIN documents d ON d.id = p.document_id WHERE p.in_queue = 1")}
        total_relevant = sum(key in relevant for key in key_of.values())
        for strategy in queue.names(ordering_only=True):  # the registry: studio/queue/
            t0 = time.perf_counter()
            queue.set_strategy(project, admin, strategy, seed=seed)
            seconds = time.perf_counter() - t0
            with opened(project.db_path) as db:
                order = serving_order(db, max(BUDGETS))
            found = {n: sum(key_of[p] in relevant for p in order[:n]) for n in BUDGETS}
            lines.append({"bench": "queue_strategies", "lang": lang, "strategy": strategy,
                          "pooled_pairs": pooled["added"], "relevant_in_pool": total_relevant,
                          **{f"relevant_in_first_{n}": found[n] for n in BUDGETS},
                          "relevant_per_100_ratings": round(100 * found[BUDGETS[0]] / BUDGETS[0], 1),
                          "order_s": round(seconds, 2)})
    base = {line["strategy"]: line for line in lines}
    for line in lines:
        for ref in ("imported", "random"):
            b = base[ref]["relevant_in_first_200"]
            line[f"ratio_first_200_over_{ref}"] = round(line["relevant_in_first_200"] / b, 2) if b else None
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="zh,en")
    parser.add_argument("--limit", type=int, default=None, help="man pages per language (default: all)")
    parser.add_argument("--k", type=int, default=20, help="candidates pooled per query")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.langs, args.limit = "en", 40
    manpages = load_manpages()
    for lang in args.langs.split(","):
        folder = ROOT / ".cache" / "bench" / f"queue-manpages-{lang}-{args.limit or 'all'}"
        manpages.build(lang, folder, limit=args.limit, seed=args.seed)
        for line in run(lang, folder, args.k, args.seed):
            print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
