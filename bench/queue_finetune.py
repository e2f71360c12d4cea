"""Which queue strategy gives the better fine-tune: held-out nDCG@10 after the first N ratings of each order,
each strategy against imported and random order, with the man-page benchmark's qrels as the simulated annotator.

For each language (bench/manpages.py's zh / en sets):

1. A fresh project gets the whole corpus and the TRAIN split's queries only — no labels, as a team starts — and
   pools the top 20 per query (hybrid: BM25 + the embedded MiniLM), the pairs a team would rate. The test split's
   queries are never in this project: they are never pooled, rated or trained on.
   (bench/queue_strategies.py pools every query after importing the train qrels as labelled pairs, so its queue
   holds no train pair the qrels call relevant; it measures how fast relevant pairs are found, this measures what
   they are worth for training.)
2. Each strategy (imported, random, systems, disagree, uncertain) orders the pooled pairs
   (``studio queue strategy``); ``uncertain`` has no gold labels to calibrate on, so it uses the median score, as
   the studio does at the start of a project.
3. The first N pairs in serving order are "rated" from the qrels: relevant → 2, else 0 (both simulated annotators
   agree, so each is a gold label). They are handed to the studio as a user hands it reference labels: a BEIR
   folder with those N rows as ``qrels/train.tsv`` → ``studio import beir DIR --split train``.
4. Then exactly bench/quality.py's studio path, in the run's own STUDIO_DB/MODELS/JOBS/EXPORTS folders:
   ``studio export triplets`` (defaults) → ``studio train`` (the default recipe: one epoch from the embedded
   all-MiniLM-L6-v2) → ``studio eval --beir SET --split test --run-out …``. A query with no relevant pair among its
   rated pairs yields no training line: that is what a strategy changes.
5. Each run's test run file is compared with imported order's and random order's (seed 42) by the studio's paired
   randomisation test on nDCG@10 (``studio.evaluation.compare.compare_models``, nDCG@10 only, so no Holm step).

Prints one JSON line per (lang, strategy, seed, N), plus one ``base`` line per language (the model before any
fine-tune, and the starting point every run is also compared with).

    python bench/queue_finetune.py --n 500,2000 --random-seeds 42,7   # what RESULTS.md reports (45 min, 2 cores)
    python bench/queue_finetune.py --langs zh --n 500 --out results.jsonl
    python bench/queue_finetune.py --no-train --n 500,1000,2000   # counts only: what each order's first N hold
    python bench/queue_finetune.py --smoke                        # 40 en pages, N=40, 2 training steps a run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from queue_strategies import load_manpages  # noqa: E402

WORK = ROOT / ".cache" / "bench" / "queue-finetune"
CACHE = WORK / "cache"  # embeddings, shared by every run (keyed by model and corpus)
# Set before anything imports studio (studio.config and the embedding cache read them once): the in-process
# pooling and ordering use the embedded model as the default, never the repository's models/ folder.
os.environ["STUDIO_MODELS"] = str(WORK / "no-models")
os.environ["STUDIO_CACHE"] = str(CACHE)

from studio.actions import queue as queue_actions  # noqa: E402  (after the environment above)

STRATEGIES = queue_actions.names(ordering_only=True)  # the registry's strategies that order the pooled pairs
REFERENCES = ("imported", "random")


# --- the man-page set -----------------------------------------------------------------------------------------

def train_test(folder: Path) -> tuple[dict, dict]:
    read_qrels = load_manpages().read_qrels
    train, test = read_qrels(folder / "qrels" / "train.tsv"), read_qrels(folder / "qrels" / "test.tsv")
    overlap = set(train) & set(test)
    if overlap:
        raise SystemExit(f"{len(overlap)} queries are in both splits of {folder}: {sorted(overlap)[:3]}")
    return train, test


def write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- step 1-2: the pool and the orders (in this process, through the studio's actions) -------------------------

def pooled_orders(lang: str, folder: Path, work: Path, train: dict, runs: list[tuple[str, int]], k: int,
                  limit: int) -> tuple[dict, dict[tuple[str, int], list[tuple[str, str]]]]:
    """Pool the train queries' top k and order them by each (strategy, seed) of `runs`; returns the pool's counts
    and, per run, the first `limit` (query key, document key) pairs in serving order."""
    from studio.actions import Actor, Project, collect, queue
    from studio.ingest.beir import read_beir
    from studio.store import opened
    from studio.store.imports import import_batch
    from studio.store.queue import serving_order

    pool_dir = work / "pool"
    shutil.rmtree(pool_dir, ignore_errors=True)
    pool_dir.mkdir(parents=True)
    project = Project(pool_dir / "pool.db")
    admin = Actor.local("bench")
    # The corpus and the train queries, without their qrels: what a team has before anyone rates.
    beir = read_beir(folder, split="train")
    documents = {d.key: d for d in beir.extra_documents} | {p.document.key: p.document for p in beir.pairs}
    queries = {p.query.key: p.query for p in beir.pairs}
    beir.pairs, beir.extra_documents, beir.extra_queries = [], list(documents.values()), list(queries.values())
    with project.db() as db:
        import_batch(db, beir, queue=False, actor=admin.name)
    t0 = time.perf_counter()
    collect.pool(project, admin, k, "hybrid")
    pool_s = time.perf_counter() - t0
    with opened(project.db_path) as db:
        key_of = {r["id"]: (r["qkey"], r["dkey"]) for r in db.query(
            "SELECT p.id, q.key AS qkey, d.key AS dkey FROM pairs p JOIN queries q ON q.id = p.query_id "
            "JOIN documents d ON d.id = p.document_id WHERE p.in_queue = 1")}
    stray = {q for q, _ in key_of.values()} - set(train)
    if stray:
        raise SystemExit(f"pooled pairs of queries outside the train split: {sorted(stray)[:3]}")
    relevant = sum(train.get(q, {}).get(d, 0) > 0 for q, d in key_of.values())
    info = {"train_queries": len(train), "documents": len(documents), "pooled_pairs": len(key_of),
            "relevant_in_pool": relevant, "pool_s": round(pool_s, 1)}
    orders = {}
    for strategy, seed in runs:
        t0 = time.perf_counter()
        queue.set_strategy(project, admin, strategy, seed=seed)
        with opened(project.db_path) as db:
            orders[(strategy, seed)] = [key_of[p] for p in serving_order(db, limit)]
        print(f"# {lang} {strategy} seed {seed}: ordered in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return info, orders


# --- step 3-4: one fine-tune as a user runs it ---------------------------------------------------------------

def studio(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`studio {' '.join(args)}` failed ({done.returncode}):\n{done.stdout[-2000:]}"
                           f"\n{done.stderr[-2000:]}")
    return done


def studio_env(folder: Path, cache: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "STUDIO_DB": str(folder / "studio.db"),
            "STUDIO_MODELS": str(folder / "models"), "STUDIO_JOBS": str(folder / "jobs"),
            "STUDIO_EXPORTS": str(folder / "exports"), "STUDIO_CACHE": str(cache)}


def evaluate(env: dict, model: str, folder: Path, beir: Path) -> tuple[float, dict]:
    """`studio eval` of one model on the test split: its nDCG@10 and its run (TREC file, ranks as scores)."""
    runs = folder / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    found = json.loads(studio(env, "eval", "--model", model, "--beir", str(beir), "--split", "test",
                              "--k", "10,100", "--run-out", str(runs), "--json").stdout)
    (trec,) = runs.glob("*.trec")
    run: dict[str, dict[str, float]] = {}
    for line in trec.read_text(encoding="utf-8").splitlines():
        qid, _, doc, rank, *_ = line.split()
        run.setdefault(qid, {})[doc] = -float(rank)  # the written order exactly (scores are rounded there)
    return found["models"][0]["metrics"]["ndcg@10"], run


def fine_tune(beir: Path, work: Path, cache: Path, name: str, rated: list[tuple[str, str]], train: dict,
              queries_text: dict, train_args: list[str]) -> tuple[dict, dict]:
    """Import the rated pairs as reference labels, export, train; the JSON fields and where the model is ({} when
    no query has a positive, so nothing can be trained)."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    labelled = folder / "labelled"
    (labelled / "qrels").mkdir(parents=True)
    (labelled / "corpus.jsonl").symlink_to(beir / "corpus.jsonl")
    rated_queries = sorted({q for q, _ in rated})
    write_jsonl(labelled / "queries.jsonl", ({"_id": q, "text": queries_text[q]} for q in rated_queries))
    grades = [(q, d, 1 if train.get(q, {}).get(d, 0) > 0 else 0) for q, d in rated]
    with open(labelled / "qrels" / "train.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t{g}\n" for q, d, g in grades)
    positive_queries = len({q for q, _, g in grades if g})
    line = {"rated": len(rated), "relevant": sum(g for *_, g in grades), "queries_rated": len(rated_queries),
            "queries_with_positive": positive_queries}
    env = studio_env(folder, cache)
    train_file = folder / "exports" / "train.jsonl"
    studio(env, "import", "beir", str(labelled), "--split", "train")
    t0 = time.perf_counter()
    try:
        studio(env, "export", "triplets", str(train_file))
    except RuntimeError as error:  # no query with a positive: nothing to train on, the model stays the base
        if positive_queries:
            raise
        line.update(triplet_lines=0, valid_lines=0, export_s=round(time.perf_counter() - t0, 1), train_s=0.0,
                    trained=False, why=str(error).splitlines()[-1][:200])
        return line, {}
    export_s = time.perf_counter() - t0
    manifest = json.loads((folder / "exports" / "train.manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    t0 = time.perf_counter()
    studio(env, "train", "--task", "embedder", "--base", "default", "--train", str(train_file), "--name",
           "embedder", *train_args)
    train_s = time.perf_counter() - t0
    line.update(triplet_lines=counts["train_lines"], valid_lines=counts["valid_lines"],
                annotated_negatives=counts["annotated_negatives"], export_s=round(export_s, 1),
                train_s=round(train_s, 1), trained=True)
    return line, {"model": str(folder / "models" / "embedder"), "folder": folder}


# --- driver --------------------------------------------------------------------------------------------------

def run_language(lang: str, args, emit) -> None:
    from studio.config import embedded_model_path
    from studio.evaluation.compare import compare_models

    manpages = load_manpages()
    folder = ROOT / ".cache" / "bench" / f"queue-manpages-{lang}-{args.limit or 'all'}"
    manpages.build(lang, folder, limit=args.limit, seed=42)
    train, test = train_test(folder)
    work = WORK / f"{lang}-{args.limit or 'all'}"
    cache = CACHE
    runs = [("imported", 42), *(("random", seed) for seed in args.random_seeds),
            *((s, 42) for s in args.strategies if s not in REFERENCES)]
    info, orders = pooled_orders(lang, folder, work, train, runs, args.k, max(args.n))
    queries_text = {row["_id"]: row["text"] for row in read_jsonl(folder / "queries.jsonl")}
    common = {"bench": "queue_finetune", "lang": lang, "smoke": args.smoke, **info, "test_queries": len(test)}
    if args.no_train:  # what each order would hand the export, to choose N before spending the training time
        for n in args.n:
            for strategy, seed in runs:
                rated = orders[(strategy, seed)][:n]
                positive = {q for q, d in rated if train.get(q, {}).get(d, 0) > 0}
                emit({**common, "strategy": strategy, "seed": seed, "n": n, "rated": len(rated),
                      "relevant": sum(train.get(q, {}).get(d, 0) > 0 for q, d in rated),
                      "queries_rated": len({q for q, _ in rated}), "queries_with_positive": len(positive)})
        return
    env = studio_env(work / "base", cache)
    base_ndcg, base_run = evaluate(env, str(embedded_model_path()), work / "base", folder)
    emit({**common, "strategy": "base", "ndcg@10": round(base_ndcg, 4)})
    test_qrels = {q: {d: (2 if s > 0 else 0) for d, s in labels.items()} for q, labels in test.items()}

    def versus(run_a: dict, run_b: dict) -> tuple[float, float, list[int]]:
        cmp = compare_models(test_qrels, run_a, run_b, ks=(10,), metrics=("ndcg",))
        row = cmp.rows[0]
        return round(row.delta, 4), round(row.p_value, 4), [row.wins, row.ties, row.losses]

    for n in args.n:
        results: dict[tuple[str, int], tuple[dict, dict]] = {}
        for strategy, seed in runs:
            name = f"{strategy}-s{seed}-n{n}" if strategy == "random" else f"{strategy}-n{n}"
            line, trained = fine_tune(folder, work, cache, name, orders[(strategy, seed)][:n], train,
                                      queries_text, args.train_args)
            if trained:
                ndcg, run = evaluate(studio_env(trained["folder"], cache), trained["model"], trained["folder"], folder)
            else:
                ndcg, run = base_ndcg, base_run
            line = {**common, "strategy": strategy, "seed": seed, "n": n, **line, "ndcg@10": round(ndcg, 4)}
            delta, p, wtl = versus(base_run, run)
            line.update({"vs_base_ndcg@10": delta, "p_vs_base": p})
            for ref in REFERENCES:
                key = (ref, 42)
                if key in results and key != (strategy, seed):
                    delta, p, wtl = versus(results[key][1], run)
                    line.update({f"vs_{ref}_ndcg@10": delta, f"p_vs_{ref}": p, f"wins_ties_losses_vs_{ref}": wtl})
            results[(strategy, seed)] = (line, run)
            emit(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="zh,en")
    parser.add_argument("--n", default="500", help="ratings before the fine-tune, comma-separated (e.g. 500,2000)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--random-seeds", default="42", help="orders of `random`, comma-separated; 42 is the "
                        "reference the others are compared with")
    parser.add_argument("--limit", type=int, default=None, help="man pages per language (default: all)")
    parser.add_argument("--k", type=int, default=20, help="candidates pooled per query")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    parser.add_argument("--no-train", action="store_true", help="only pool, order and count what the first N "
                        "ratings hold (relevant pairs, queries with a positive): to choose N")
    parser.add_argument("--smoke", action="store_true", help="40 en pages, N=40, 2 training steps per run")
    args = parser.parse_args(argv)
    args.n = [int(x) for x in args.n.split(",")]
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    args.random_seeds = [int(x) for x in args.random_seeds.split(",")]
    unknown = set(args.strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies: {', '.join(sorted(unknown))}")
    if "imported" not in args.strategies or "random" not in args.strategies or 42 not in args.random_seeds:
        parser.error("imported and random (seed 42) are the references: keep them in --strategies/--random-seeds")
    args.train_args = []
    if args.smoke:
        args.langs, args.limit, args.n, args.train_args = "en", 40, [40], ["--max-steps", "2"]
    out = open(args.out, "a", encoding="utf-8") if args.out else None

    def emit(line: dict) -> None:
        text = json.dumps(line, ensure_ascii=False)
        print(text, flush=True)
        if out:
            out.write(text + "\n")
            out.flush()

    t0 = time.perf_counter()
    try:
        for lang in args.langs.split(","):
            run_language(lang, args, emit)
    finally:
        if out:
            out.close()
    print(f"# done in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
