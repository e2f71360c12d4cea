"""Issue #25's bar, end to end through the CLI: held-out evaluation by default, judged@10, judging the holes.

The bar: "On a held-out set the team has not seen: export with the defaults, train, ``studio eval --db --system bm25
--system NAME --system "NAME+bm25" --run-out DIR --json`` (no ``--exclude-train``) must evaluate ≥ 50 queries and
none that NAME was trained or validated on; with gold pooled from BM25 only, each system's reported ``judged@10``
equals the share of its written top 10 that is labelled; ``studio pool --system default --depth 10 --unjudged
--json`` adds exactly the unjudged pairs of that top 10; after they are rated, judged@10 ≥ 0.99 and nDCG@10 equals
ranx on the written run."

For each language (bench/manpages.py's man-page BEIR sets; both qrels splits together are the "truth" the simulated
raters know), in a fresh folder with its own database, models/, exports/, runs/ and jobs/ (STUDIO_* variables):

1. The corpus and every query go into a new project (the in-process import ``studio import beir`` runs, without
   the qrels: the CLI has no corpus-only import). Gold labels are pooled from BM25 only: each query's top 10 by the
   studio's own BM25 (:class:`studio.retrieval.bm25.BM25Index` over the project's documents) is judged by the qrels
   (in qrels → 2, else 0) and handed over as two agreeing raters' ratings (``studio import ratings``), so each
   pooled pair is gold and nothing else is.
2. ``studio export triplets --json`` with the defaults (a 20 % test share of the queries with a positive gets no
   line), then ``studio train --task embedder --base default`` (the default recipe: one epoch from the embedded
   all-MiniLM-L6-v2), which waits for its worker.
3. ``studio eval --db --system bm25 --system NAME --system NAME+bm25 --system default --run-out DIR --json``: the
   evaluated queries (≥ 50; the TREC files and the count) share no text with the training and validation files;
   each system's reported judged@10 equals the mean over the evaluated queries of (labelled documents in its
   written top 10) / 10, computed here from the TREC file and the gold this script imported.
4. Judging the holes. ``studio eval --db --system default`` alone (no fine-tune among the systems, so every query
   with a positive is evaluated) writes default's top 10 over the queries the pool command uses. Then
   ``studio pool --system default --depth 10 --unjudged --exclude-train TRAIN --json`` must add exactly the unlabelled
   pairs of default's written top 10 in step 3's held-out run, and the bar's own command, ``studio pool --system
   default --depth 10 --unjudged --json`` (no exclusion: the queries of every labelled query with a positive, since
   default was trained on nothing), must add exactly the rest of the all-query run's holes (``added +
   already_queued`` = its unlabelled pairs). The pairs the studio queued (source ``holes``) must be those pairs.
5. The queued pairs are rated from the qrels by the same two simulated raters (``studio import ratings``); step 3's
   eval runs again: default's judged@10 ≥ 0.99, and every system's reported nDCG@10 equals ``ranx.evaluate(Qrels,
   Run, "ndcg@10")`` on its written run (the TREC file's order, scores −rank) with the gold as it now is.

Prints one JSON line per check (``"ok": true/false``) and a summary line per language; ``--out`` appends them;
the exit status is 1 when a check fails. Every run starts from an empty folder under .cache/bench/honest-eval
(removed afterwards unless ``--keep``); only corpus embeddings are cached between runs.

    python bench/honest_eval.py                  # en, every page (~1,000 queries; about 15 min on 2 busy cores)
    python bench/honest_eval.py --lang en,zh --out bench/results/honest-eval-2026-12-07.jsonl
    python bench/honest_eval.py --smoke          # 40 en pages, one small training step, the CLI in process:
                                                 # checks the path in ~40 s, not the ≥ 50 queries
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORK = ROOT / ".cache" / "bench" / "honest-eval"
CACHE = WORK / "cache"  # corpus embeddings, keyed by model weights and corpus: shared by runs, never stale
RATERS = ("rater-a", "rater-b")
DEPTH = 10
MIN_QUERIES = 50
MIN_LABELLED = 250  # labelled queries with a positive: a 20 % test share of them is >= 50
SMOKE_PAGES = 40
# One small step: the smoke run checks the path (export → train → eval → pool → rate → eval), not the model.
SMOKE_TRAIN = ["--max-steps", "1", "--batch-size", "4", "--passage-max-len", "64", "--query-max-len", "32"]
NAME = "heldout-ft"
TOL = 1e-9


def load_manpages():
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- files ---------------------------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def read_trec(path: Path) -> dict[str, list[str]]:
    """query id → document ids in the written rank order (``qid Q0 doc rank score tag``)."""
    rows: dict[str, list[tuple[int, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            qid, _, doc, rank, *_ = line.split()
            rows.setdefault(qid, []).append((int(rank), doc))
    return {q: [d for _, d in sorted(ranked)] for q, ranked in rows.items()}


# --- the CLI -------------------------------------------------------------------------------------------------

class Studio:
    """`studio` in one folder's STUDIO_* environment, with its --db: ``python -m studio`` as a user runs it
    (``subprocess``), or :data:`studio.cli.cli` through click's CliRunner in this process (``inprocess``: torch and
    the models load once; the process's STUDIO_* variables are then this folder's, set before studio is imported)."""

    def __init__(self, folder: Path, how: str) -> None:
        self.folder = folder
        self.how = how
        self.db = folder / "studio.db"
        self.env = {"HF_HUB_OFFLINE": "1", "STUDIO_DB": str(self.db), "STUDIO_MODELS": str(folder / "models"),
                    "STUDIO_JOBS": str(folder / "jobs"), "STUDIO_EXPORTS": str(folder / "exports"),
                    "STUDIO_RUNS": str(folder / "runs"), "STUDIO_CACHE": str(CACHE)}
        if how == "inprocess":
            if "studio" in sys.modules:
                raise RuntimeError("studio was imported before its STUDIO_* folders were set")
            os.environ.update(self.env)
        self.seconds: dict[str, float] = {}

    def __call__(self, *args: str, step: str | None = None) -> str:
        argv = ["--db", str(self.db), *args]
        t0 = time.perf_counter()
        if self.how == "inprocess":
            from click.testing import CliRunner

            from studio.cli import cli

            done = CliRunner().invoke(cli, argv)
            code, stdout, stderr = done.exit_code, done.stdout, done.stderr
            if done.exception is not None and not isinstance(done.exception, SystemExit):
                stderr += "".join(traceback.format_exception(done.exception))
        else:
            done = subprocess.run([sys.executable, "-m", "studio", *argv], cwd=self.folder,
                                  env={**os.environ, **self.env}, capture_output=True, text=True)
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        if step:
            self.seconds[step] = round(self.seconds.get(step, 0.0) + time.perf_counter() - t0, 1)
        if code != 0:
            raise RuntimeError(f"`studio {' '.join(args)}` failed ({code}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
        return stdout

    def json(self, *args: str, step: str | None = None) -> dict:
        return json.loads(self(*args, "--json", step=step))


# --- step 1: the project and its BM25-pooled gold --------------------------------------------------------------

def import_corpus(db_path: Path, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Every document and query of the BEIR folder into a new project, no pair (what ``studio import beir`` does
    with the corpus, without the qrels); returns the project's query and document texts by key."""
    from studio.actions import Project
    from studio.ingest.beir import read_beir
    from studio.store import opened
    from studio.store.gold import document_text
    from studio.store.imports import import_batch

    beir = read_beir(folder, split="train")
    documents = {d.key: d for d in beir.extra_documents} | {p.document.key: p.document for p in beir.pairs}
    queries = {q.key: q for q in beir.extra_queries} | {p.query.key: p.query for p in beir.pairs}
    beir.pairs, beir.extra_documents, beir.extra_queries = [], list(documents.values()), list(queries.values())
    with Project(db_path).db() as db:
        import_batch(db, beir, queue=False, actor="bench")
    with opened(db_path) as db:
        corpus = {r["key"]: document_text(r["title"], r["text"])
                  for r in db.query("SELECT key, title, text FROM documents ORDER BY id")}
        texts = {r["key"]: r["text"] for r in db.query("SELECT key, text FROM queries ORDER BY id")}
    return texts, corpus


def bm25_pool(queries: dict[str, str], corpus: dict[str, str], k: int) -> dict[str, list[str]]:
    """Each query's top `k` by the studio's BM25 over the project's documents (zero-score documents left out)."""
    from studio.retrieval.bm25 import BM25Index

    doc_ids = list(corpus)
    index = BM25Index([corpus[d] for d in doc_ids])
    qids = list(queries)
    hits = index.search_many([queries[q] for q in qids], k=k)
    return {q: [doc_ids[pos] for pos, _ in ranked] for q, ranked in zip(qids, hits)}


def judge(pairs, truth: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    """The simulated raters' label of each (query, document): 2 when the qrels call it relevant, else 0."""
    return {(q, d): 2 if truth.get(q, {}).get(d, 0) > 0 else 0 for q, d in pairs}


def ratings_file(path: Path, labels: dict[tuple[str, str], int]) -> Path:
    """Two agreeing raters' ratings of `labels`, by the project's ids (the pairs' texts are in the project)."""
    write_jsonl(path, ({"query_id": q, "doc_id": d, "annotator": rater, "rating": label}
                       for (q, d), label in labels.items() for rater in RATERS))
    return path


def gold_from_db(db_path: Path) -> dict[str, dict[str, int]]:
    from studio.store import opened
    from studio.store.gold import gold_set

    with opened(db_path) as db:
        return gold_set(db).labels


def queued_holes(db_path: Path) -> set[tuple[str, str]]:
    """The (query, document) keys of the pairs ``studio pool --unjudged`` queued (source ``holes``)."""
    from studio.store import opened

    with opened(db_path) as db:
        return {(r["q"], r["d"]) for r in db.query(
            "SELECT q.key AS q, d.key AS d FROM pairs p JOIN queries q ON q.id = p.query_id "
            "JOIN documents d ON d.id = p.document_id WHERE p.source = 'holes'")}


# --- checks --------------------------------------------------------------------------------------------------

def judged_share(ranked: dict[str, list[str]], gold: dict[str, dict[str, int]], queries, k: int) -> dict:
    """judged@k computed here: per query, the labelled documents among the written top k over k (a query with no
    line in the file counts 0), averaged; also the pooled share (labelled / written) and the unlabelled pairs."""
    labelled = written = 0
    per_query = []
    holes = set()
    for q in queries:
        top = ranked.get(q, [])[:k]
        hits = sum(d in gold.get(q, {}) for d in top)
        labelled += hits
        written += len(top)
        per_query.append(hits / k)
        holes |= {(q, d) for d in top if d not in gold.get(q, {})}
    return {"judged": sum(per_query) / len(per_query) if per_query else 0.0,
            "labelled_in_top": labelled, "written_in_top": written,
            "pooled_share": labelled / written if written else 0.0, "holes": holes}


def ranx_ndcg(ranked: dict[str, list[str]], gold: dict[str, dict[str, int]], queries, k: int) -> float:
    """ranx's nDCG@k of the written ranking (scores −rank keep the file's order) against the gold of `queries`."""
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({q: dict(gold[q]) for q in queries})
    run = Run({q: {d: float(-rank) for rank, d in enumerate(ranked.get(q, []), start=1)} for q in queries
               if ranked.get(q)})
    return float(evaluate(qrels, run, f"ndcg@{k}", make_comparable=True))


def systems_runs(report: dict, run_dir: Path) -> dict[str, dict[str, list[str]]]:
    """Each system of an eval report → its written ranking (the TREC file named after its spec)."""
    from studio.evaluation.systems import file_stem

    return {m["model"]: read_trec(run_dir / f"{file_stem(m['model'])}.trec") for m in report["models"]}


# --- one language --------------------------------------------------------------------------------------------

def run_language(lang: str, args, emit) -> bool:
    manpages = load_manpages()
    limit = SMOKE_PAGES if args.smoke else args.limit
    data = ROOT / ".cache" / "bench" / f"honest-manpages-{lang}-{limit or 'all'}"
    stats = manpages.build(lang, data, limit=limit, seed=42)
    truth: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        for q, labels in manpages.read_qrels(data / "qrels" / f"{split}.tsv").items():
            truth.setdefault(q, {}).update(labels)
    min_queries = 1 if args.smoke else MIN_QUERIES
    common = {"bench": "honest_eval", "lang": lang, "smoke": args.smoke, "pages": stats["pages_kept"]}
    results: list[bool] = []

    def check(name: str, ok: bool, **fields) -> None:
        results.append(bool(ok))
        emit({**common, "check": name, "ok": bool(ok), **fields})

    CACHE.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{lang}-", dir=WORK))
    studio = Studio(folder, args.cli)
    t_start = time.perf_counter()
    try:
        # 1. corpus, queries and the BM25-pooled gold
        t0 = time.perf_counter()
        queries, corpus = import_corpus(studio.db, data)
        pooled = bm25_pool(queries, corpus, DEPTH)
        labels = judge(((q, d) for q, docs in pooled.items() for d in docs), truth)
        imported = studio.json("import", "ratings", str(ratings_file(folder / "bm25-pool.ratings.jsonl", labels)),
                               step="import")
        gold = {}
        for (q, d), label in labels.items():
            gold.setdefault(q, {})[d] = label
        with_positive = sorted(q for q, ls in gold.items() if any(v > 0 for v in ls.values()))
        counts = studio.json("gold", step="import")
        db_gold = gold_from_db(studio.db)
        check("gold_pooled_from_bm25", db_gold == gold and counts["total"] == len(labels)
              and len(with_positive) >= (1 if args.smoke else MIN_LABELLED),
              documents=len(corpus), queries=len(queries), pooled_pairs=len(labels),
              relevant_pairs=sum(v > 0 for v in labels.values()),
              queries_with_positive=len(with_positive), queries_relevant_outside_pool=sum(
                  1 for q in queries if any(v > 0 for d, v in truth.get(q, {}).items() if d not in pooled[q])),
              gold_total=counts["total"], gold_by_origin=counts.get("by_origin"),
              ratings_imported=imported.get("ratings"), gold_in_db_equals_pool=db_gold == gold,
              seconds=round(time.perf_counter() - t0, 1))

        # 2. export with the defaults, train the default recipe
        manifest = studio.json("export", "triplets", step="export")
        # The default OUT is exports/<timestamp>/train.jsonl; the JSON (the manifest) names the files, not the folder.
        (train_file,) = (folder / "exports").glob(f"*/{manifest['files']['train']}")
        valid_file = train_file.with_name(manifest["files"]["valid"]) if manifest["files"].get("valid") else None
        trained_texts = {row["query"] for row in read_jsonl(train_file)}
        valid_texts = {row["query"] for row in read_jsonl(valid_file)} if valid_file else set()
        test_keys = set(manifest["test"]["query_keys"])
        train_argv = ["train", "--task", "embedder", "--base", "default", "--train", str(train_file),
                      "--name", NAME, *(SMOKE_TRAIN if args.smoke else [])]
        studio(*train_argv, step="train")
        model_dir = folder / "models" / NAME
        check("export_and_train", model_dir.is_dir() and bool(trained_texts),
              test_fraction=manifest["test"]["fraction"], test_queries=len(test_keys),
              train_lines=manifest["counts"]["train_lines"], valid_lines=manifest["counts"]["valid_lines"],
              train_query_texts=len(trained_texts), valid_query_texts=len(valid_texts),
              export_s=studio.seconds.get("export"), train_s=studio.seconds.get("train"),
              train_args=train_argv[1:])

        # 3. the bar's evaluation (plus default, whose holes step 4 judges)
        systems = ["bm25", NAME, f"{NAME}+bm25", "default"]
        eval_argv = ["eval", "--db", *(a for s in systems for a in ("--system", s))]
        run_dir = folder / "runs-heldout"
        report = studio.json(*eval_argv, "--run-out", str(run_dir), step="eval")
        runs = systems_runs(report, run_dir)
        written_queries = set().union(*(set(r) for r in runs.values()))
        evaluated = report["held_out"]["queries"]
        # The queries an evaluation on the gold uses: a positive label, text in neither file NAME learned from.
        expected = [q for q in with_positive if queries[q] not in trained_texts | valid_texts]
        leaked = {q for q in written_queries if queries[q] in trained_texts | valid_texts}
        check("heldout_queries", evaluated >= min_queries and not leaked and evaluated == len(expected)
              and written_queries <= set(expected),
              evaluated=evaluated, min_queries=min_queries, expected_evaluated=len(expected),
              in_test_share=len(set(expected) & test_keys), not_in_any_file=len(set(expected) - test_keys),
              left_out=report["held_out"]["left_out"], by_model=report["held_out"]["by_model"],
              evaluated_in_train_or_valid_file=len(leaked), queries_in_run_files=len(written_queries),
              include_trained=report["held_out"]["included"], eval_s=studio.seconds.get("eval"))
        before = {}
        for entry in report["models"]:
            spec = entry["model"]
            mine = judged_share(runs[spec], gold, expected, DEPTH)
            reported = entry["metrics"][f"judged@{DEPTH}"]
            before[spec] = {"ndcg@10": entry["metrics"]["ndcg@10"], "judged@10": reported,
                            "ndcg_condensed@10": entry["metrics"].get("ndcg_condensed@10")}
            check("judged_at_10_equals_written_run", abs(reported - mine["judged"]) <= TOL, system=spec,
                  reported_judged_at_10=reported, computed_judged_at_10=mine["judged"],
                  labelled_in_top10=mine["labelled_in_top"], written_in_top10=mine["written_in_top"],
                  unjudged_pairs=len(mine["holes"]), reported_unjudged=entry.get("unjudged"),
                  ndcg_at_10=entry["metrics"]["ndcg@10"],
                  ndcg_condensed_at_10=entry["metrics"].get("ndcg_condensed@10"))

        # 4. judge the holes: the held-out queries first (as the eval above saw them), then the bar's command
        heldout_holes = judged_share(runs["default"], gold, expected, DEPTH)["holes"]
        pooled_heldout = studio.json("pool", "--system", "default", "--depth", str(DEPTH), "--unjudged",
                                     "--exclude-train", str(train_file), step="pool")
        queued = queued_holes(studio.db)
        check("pool_unjudged_heldout_adds_written_holes",
              pooled_heldout["added"] + pooled_heldout["already_queued"] == len(heldout_holes)
              and pooled_heldout["already_queued"] == 0 and queued == heldout_holes,
              command="pool --system default --depth 10 --unjudged --exclude-train TRAIN --json",
              added=pooled_heldout["added"], already_queued=pooled_heldout["already_queued"],
              unjudged_in_written_top10=len(heldout_holes), queued_equals_written_holes=queued == heldout_holes,
              pool_queries=pooled_heldout["queries"], eval_queries=evaluated)

        all_dir = folder / "runs-default"
        report_all = studio.json("eval", "--db", "--system", "default", "--run-out", str(all_dir), step="eval")
        run_all = systems_runs(report_all, all_dir)["default"]
        all_queries = list(with_positive)
        all_holes = judged_share(run_all, gold, all_queries, DEPTH)["holes"]
        pooled_all = studio.json("pool", "--system", "default", "--depth", str(DEPTH), "--unjudged", step="pool")
        queued = queued_holes(studio.db)
        check("pool_unjudged_adds_written_holes",
              pooled_all["added"] + pooled_all["already_queued"] == len(all_holes)
              and pooled_all["already_queued"] == len(heldout_holes) and queued == all_holes
              and pooled_all["queries"] == report_all["held_out"]["queries"] == len(all_queries),
              command="pool --system default --depth 10 --unjudged --json",
              added=pooled_all["added"], already_queued=pooled_all["already_queued"],
              unjudged_in_written_top10=len(all_holes), queued_equals_written_holes=queued == all_holes,
              pool_queries=pooled_all["queries"], eval_queries=report_all["held_out"]["queries"],
              default_judged_at_10_all_queries=report_all["models"][0]["metrics"]["judged@10"])

        # 5. rate the holes as the same two raters, evaluate again
        hole_labels = judge(sorted(queued), truth)
        imported = studio.json("import", "ratings", str(ratings_file(folder / "holes.ratings.jsonl", hole_labels)),
                               step="import")
        for (q, d), label in hole_labels.items():
            gold.setdefault(q, {})[d] = label
        db_gold = gold_from_db(studio.db)
        run_dir2 = folder / "runs-heldout-judged"
        report2 = studio.json(*eval_argv, "--run-out", str(run_dir2), step="eval")
        runs2 = systems_runs(report2, run_dir2)
        check("holes_rated", db_gold == gold and report2["held_out"]["queries"] == evaluated,
              rated_pairs=len(hole_labels), relevant_found=sum(v > 0 for v in hole_labels.values()),
              ratings_imported=imported.get("ratings"), gold_in_db_equals_expected=db_gold == gold,
              evaluated=report2["held_out"]["queries"])
        for entry in report2["models"]:
            spec = entry["model"]
            mine = judged_share(runs2[spec], gold, expected, DEPTH)
            reported = entry["metrics"]
            theirs = ranx_ndcg(runs2[spec], gold, expected, DEPTH)
            judged_ok = abs(reported["judged@10"] - mine["judged"]) <= TOL
            bar = spec != "default" or reported["judged@10"] >= 0.99
            check("after_rating_judged_and_ranx", judged_ok and bar and abs(reported["ndcg@10"] - theirs) <= 1e-6,
                  system=spec, judged_at_10=reported["judged@10"], computed_judged_at_10=mine["judged"],
                  judged_at_10_before=before[spec]["judged@10"], ndcg_at_10=reported["ndcg@10"],
                  ranx_ndcg_at_10=theirs, ndcg_at_10_before=before[spec]["ndcg@10"],
                  ndcg_condensed_at_10=reported.get("ndcg_condensed@10"),
                  ndcg_condensed_at_10_before=before[spec]["ndcg_condensed@10"],
                  needs_judged_at_10_over_0_99=spec == "default")
        emit({**common, "check": "summary", "ok": all(results), "checks": len(results),
              "failed": len(results) - sum(results), "evaluated": evaluated,
              "recommended_before": report.get("recommended"), "recommended_after": report2.get("recommended"),
              "seconds": {**studio.seconds, "total": round(time.perf_counter() - t_start, 1)}, "folder": str(folder)
              if args.keep else None})
        return all(results)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="en", help="en, zh, or en,zh (one process per language)")
    parser.add_argument("--limit", type=int, default=None, help="man pages per language (default: all)")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_PAGES} en pages, one small training step, "
                        f"the CLI in process: checks the path (the ≥ {MIN_QUERIES} queries bar is not expected)")
    parser.add_argument("--cli", choices=("subprocess", "inprocess"), default=None,
                        help="run each `studio` command as `python -m studio` (what a user types; the default) or "
                        "through click's CliRunner in this process (torch loads once; the default of --smoke)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (database, models, exports)")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    args.cli = args.cli or ("inprocess" if args.smoke else "subprocess")
    langs = [x.strip() for x in args.lang.split(",") if x.strip()]
    if not langs or set(langs) - {"en", "zh"}:
        parser.error("--lang takes en, zh or en,zh")
    if len(langs) > 1:  # in process, studio reads its STUDIO_* folders once, at import: one process per language
        children = [subprocess.run([sys.executable, str(Path(__file__).resolve()), *_without(argv, "--lang"),
                                    "--lang", lang]).returncode for lang in langs]
        return max(children)
    out = open(args.out, "a", encoding="utf-8") if args.out else None

    def emit(line: dict) -> None:
        text = json.dumps(line, ensure_ascii=False)
        print(text, flush=True)
        if out:
            out.write(text + "\n")
            out.flush()

    emit({"bench": "honest_eval", "check": "environment", "date": date.today().isoformat(),
          "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
          "load_avg_1m": round(os.getloadavg()[0], 2), "smoke": args.smoke, "lang": langs[0], "cli": args.cli,
          "limit": SMOKE_PAGES if args.smoke else args.limit})
    try:
        return 0 if run_language(langs[0], args, emit) else 1
    finally:
        if out:
            out.close()


def _without(argv: list[str], option: str) -> list[str]:
    """`argv` without `option` and its value (``--lang en`` or ``--lang=en``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
