"""Issue #29's bar on the man-page sets: controls, the annotator report, and model raters measured against gold.

For each language (bench/manpages.py's BEIR sets built from Debian's man pages), in a fresh folder:

1. **Two projects**, split by page as manpages.py splits them: a *held-out* project of the test queries and a
   *training* project of the train queries. Each query's pairs are its qrels positive plus the rest of the
   studio's own BM25 top ``--pool`` over the whole corpus, with reference labels from the qrels (positive → 2,
   else 0): gold the raters never saw.
2. **Model raters** on the held-out gold, through the CLI: ``studio judge --model default --pairs gold --json`` (the
   embedded all-MiniLM-L6-v2; its thresholds are cross-fitted by query, so κ is out of fold), and a reranker
   fine-tuned from the embedded model on the *training* project's export (``studio export triplets`` → ``studio
   train --task reranker --base default``), then ``studio judge --reranker NAME``. Each result's ``kappa_vs_gold``
   must equal scikit-learn's ``cohen_kappa_score`` on the labels it returned. (The LLM rater: bench/llm_judge.py.)
3. **The simulated team** of five rates the held-out project through ②'s own functions
   (``studio.store.ratings.next_pair`` / ``submit_rating``, the server's clock replaced by a simulated one) after
   ``studio controls add --from-gold --n N`` and ``studio controls rate 0.2``: two good raters (a slip one time in
   twelve), a careless one (random labels), a lenient one (rates irrelevant pairs 1 six times in ten) and a fast
   one (right, at a fifteenth of the others' time). ``studio annotators report --json`` must flag the careless one
   ``low_control_accuracy``, the lenient one ``lenient``, the fast one ``fast`` and neither good rater; no pair may
   have more than two ratings and no control answer may be stored as a rating.

Prints one JSON line per check (``"ok"``) and one summary line per language (κ of each model rater, the report's
lines); ``--out`` appends them; exit status 1 when a check fails.

    python bench/label_quality.py --lang en,zh --out bench/results/label-quality-2026-12-07.jsonl
    python bench/label_quality.py --smoke        # 40 en pages, one training step: checks the path in ~1 min
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORK = ROOT / ".cache" / "bench" / "label-quality"
TEAM = ("good1", "good2", "careless", "lenient", "fast")
SECONDS = 20.0
SMOKE_PAGES = 40
SMOKE_TRAIN = ["--max-steps", "1", "--batch-size", "4", "--passage-max-len", "64", "--query-max-len", "32"]


def load_manpages():
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Rater:
    """How one simulated person labels a pair whose gold label is `truth`, and how long they take."""

    def __init__(self, name: str, seed: int):
        self.name, self.rng = name, random.Random(seed)

    def label(self, truth: int) -> int:
        if self.name == "careless":
            return self.rng.randrange(3)
        if self.name == "lenient" and truth == 0 and self.rng.random() < 0.6:
            return 1
        if self.name.startswith("good") and self.rng.random() < 1 / 12:
            return max(0, min(2, truth + self.rng.choice((-1, 1))))
        return truth

    def seconds(self) -> float:
        return (SECONDS / 15 if self.name == "fast" else SECONDS) * self.rng.uniform(0.6, 1.4)


class Checks:
    def __init__(self, out: Path | None, lang: str) -> None:
        self.out, self.lang, self.failed = out, lang, 0

    def emit(self, row: dict) -> None:
        line = json.dumps({"bench": "label_quality", "lang": self.lang, **row}, ensure_ascii=False)
        print(line, flush=True)
        if self.out:
            with open(self.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def check(self, name: str, ok: bool, **details) -> None:
        self.failed += not ok
        self.emit({"check": name, "ok": bool(ok), **details})


def studio(*args: str) -> str:
    """`studio ARGS` in this process (click's runner); raises with the output when it fails."""
    from click.testing import CliRunner

    from studio.cli import cli

    done = CliRunner().invoke(cli, list(args))
    if done.exit_code != 0:
        raise RuntimeError(f"studio {' '.join(args)} failed ({done.exit_code}):\n{done.output}\n{done.exception!r}")
    return done.stdout


def build_project(db_path: Path, folder: Path, split: str, pool: int) -> dict[int, int]:
    """A project of `split`'s queries: each query's qrels positives plus BM25's top `pool`, labelled from the qrels.
    Returns pair id → gold label."""
    from studio.actions import Project
    from studio.ingest.beir import read_beir
    from studio.ingest.records import ImportBatch, PairRecord
    from studio.records import document_text
    from studio.retrieval.bm25 import BM25Index
    from studio.store.imports import import_batch

    beir = read_beir(folder, split=split)
    documents = {d.key: d for d in beir.extra_documents} | {p.document.key: p.document for p in beir.pairs}
    positives: dict[str, set[str]] = {}
    queries = {}
    for p in beir.pairs:
        queries[p.query.key] = p.query
        if p.reference_label:
            positives.setdefault(p.query.key, set()).add(p.document.key)
    doc_keys = list(documents)
    index = BM25Index([document_text(documents[k].title, documents[k].text) for k in doc_keys])
    qkeys = [q for q in queries if q in positives]
    hits = index.search_many([queries[q].text for q in qkeys], k=pool)
    records, line = [], 1
    for q, ranked in zip(qkeys, hits):
        keys = list(dict.fromkeys([*sorted(positives[q]), *(doc_keys[pos] for pos, _ in ranked)]))[:pool + 1]
        for d in keys:
            line += 1
            records.append(PairRecord(queries[q], documents[d], line=line,
                                      reference_label=2 if d in positives[q] else 0))
    with Project(db_path).db() as db:
        import_batch(db, ImportBatch("beir", f"{folder.name}/{split}", records), actor="bench")
        return {r["id"]: r["reference_label"] for r in db.query("SELECT id, reference_label FROM pairs")}


def kappa_check(checks: Checks, db_path: Path, result: dict, who: str) -> float | None:
    """The rater's reported κ against gold equals scikit-learn's on the labels it returned."""
    from sklearn.metrics import cohen_kappa_score

    from studio.store import opened

    with opened(db_path) as db:
        gold = {(r["q"], r["d"]): r["label"] for r in db.query(
            "SELECT q.key AS q, d.key AS d, g.label FROM gold g JOIN queries q ON q.id = g.query_id "
            "JOIN documents d ON d.id = g.document_id WHERE g.label IS NOT NULL")}
    scored = [j for j in result["judgments"] if (j["query_id"], j["doc_id"]) in gold]
    ours = cohen_kappa_score([gold[(j["query_id"], j["doc_id"])] for j in scored], [j["label"] for j in scored])
    reported = result["kappa_vs_gold"]
    checks.check(f"kappa_equals_sklearn_{who}", reported is not None and abs(reported - ours) < 1e-9,
                 reported=reported, sklearn=float(ours), pairs=len(scored), kappa_on=result.get("kappa_on"))
    return reported


def simulate_team(db_path: Path, truth: dict[int, int]) -> dict[str, int]:
    """The five raters take turns through next_pair / submit_rating until nobody is served anything."""
    from studio.store import connect
    from studio.store import ratings as store_ratings
    from studio.store.annotators import ensure_annotator

    clock = SimpleNamespace(now=1_700_000_000.0)
    real_time = store_ratings.time
    store_ratings.time = SimpleNamespace(time=lambda: clock.now)
    random.seed(7)
    people = {name: Rater(name, seed) for seed, name in enumerate(TEAM)}
    served = dict.fromkeys(TEAM, 0)
    db = connect(db_path)
    try:
        for name in TEAM:
            ensure_annotator(db, name, actor="bench")
        busy = True
        while busy:
            busy = False
            for name, rater in people.items():
                view = store_ratings.next_pair(db, name)
                if view is None:
                    continue
                busy = True
                served[name] += 1
                clock.now += rater.seconds()
                store_ratings.submit_rating(db, name, view.pair_id, rater.label(truth[view.pair_id]))
    finally:
        store_ratings.time = real_time
        db.close()
    return served


def run_language(lang: str, args, checks: Checks, work: Path) -> dict:
    manpages = load_manpages()
    limit = SMOKE_PAGES if args.smoke else args.pages
    folder = ROOT / ".cache" / "bench" / f"manpages-{lang}" if not args.smoke else work / f"manpages-{lang}"
    t0 = time.perf_counter()
    stats = manpages.build(lang, folder, limit=limit)
    heldout_db, train_db = work / f"heldout-{lang}.db", work / f"train-{lang}.db"
    truth = build_project(heldout_db, folder, "test", args.pool)
    build_project(train_db, folder, "train", args.pool)
    summary: dict = {"pages": stats.get("pages", stats.get("queries")), "heldout_pairs": len(truth),
                     "relevant": sum(1 for v in truth.values() if v == 2)}

    # 2. model raters, judged blind before the team rates (gold = the qrels, nothing the team said)
    default = json.loads(studio("--db", str(heldout_db), "judge", "--model", "default", "--pairs", "gold", "--json"))
    summary["kappa_default"] = kappa_check(checks, heldout_db, default, "default")
    summary["kappa_default_pairs"] = default["kappa_pairs"]
    manifest = json.loads(studio("--db", str(train_db), "export", "triplets", "--json"))
    export = max((work / "exports").glob(f"*/{manifest['files']['train']}"), key=lambda p: p.stat().st_mtime)
    name = f"rr-{lang}"
    train = ["--db", str(train_db), "train", "--task", "reranker", "--base", "default", "--train", str(export),
             "--name", name]
    studio(*train, *(SMOKE_TRAIN if args.smoke else args.train_args.split()))
    reranker = json.loads(studio("--db", str(heldout_db), "judge", "--reranker", name, "--pairs", "gold", "--json"))
    summary["kappa_reranker"] = kappa_check(checks, heldout_db, reranker, "reranker")
    summary["kappa_reranker_pairs"] = reranker["kappa_pairs"]

    # 3. the team, with controls
    controls = json.loads(studio("--db", str(heldout_db), "controls", "add", "--from-gold", "--n",
                                 str(args.controls), "--json"))
    studio("--db", str(heldout_db), "controls", "rate", str(args.rate))
    served = simulate_team(heldout_db, truth)
    report = json.loads(studio("--db", str(heldout_db), "annotators", "report", "--json"))
    lines = {line["name"]: line for line in report["annotators"]}
    for name in TEAM:
        line = lines[name]
        checks.emit({"rater": name, "ratings": line["ratings"], "control_answers": line["control_answers"],
                     "control_accuracy": line["control_accuracy"], "median_seconds": line["median_seconds"],
                     "leniency": line["leniency"], "flags": line["flags"], "served": served[name]})
    enough = all(lines[n]["control_answers"] >= 10 for n in TEAM)
    checks.check("ten_control_answers_each", enough, answers={n: lines[n]["control_answers"] for n in TEAM},
                 controls=controls.get("controls"))
    checks.check("careless_low_control_accuracy", "low_control_accuracy" in lines["careless"]["flags"])
    checks.check("lenient_flagged", "lenient" in lines["lenient"]["flags"])
    checks.check("fast_flagged", "fast" in lines["fast"]["flags"])
    checks.check("good_raters_unflagged", not lines["good1"]["flags"] and not lines["good2"]["flags"],
                 good1=lines["good1"]["flags"], good2=lines["good2"]["flags"])
    from studio.store import opened

    with opened(heldout_db) as db:
        most = next(db.query("SELECT coalesce(max(n), 0) AS m FROM (SELECT count(*) AS n FROM ratings "
                             "GROUP BY pair_id)"))["m"]
        leaked = next(db.query("SELECT count(*) AS n FROM control_answers c JOIN ratings r ON r.pair_id = c.pair_id "
                               "AND r.annotator_id = c.annotator_id"))["n"]
        answers = next(db.query("SELECT count(*) AS n FROM control_answers"))["n"]
    checks.check("at_most_two_ratings_per_pair", most <= 2, most=most)
    checks.check("no_control_answer_is_a_rating", leaked == 0 and answers > 0, answers=answers, as_ratings=leaked)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", default="en", help="en, zh or en,zh")
    parser.add_argument("--pages", type=int, default=400, help="man pages per language (queries: their test split)")
    parser.add_argument("--pool", type=int, default=5, help="BM25 documents per query besides its positive")
    parser.add_argument("--controls", type=int, default=60)
    parser.add_argument("--rate", type=float, default=0.2)
    # A few hundred training queries make few steps at the default batch of 32: smaller batches, more epochs and
    # shorter passages give a cross-encoder (from the embedded MiniLM, a new head) enough steps on 2 CPU cores.
    parser.add_argument("--train-args", default="--epochs 4 --batch-size 8 --passage-max-len 128",
                        help="options for `studio train --task reranker`")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.smoke:  # a small team on few pairs: a higher control rate, so each person still answers ten
        args.controls, args.pool, args.rate = 30, 5, 0.45
    WORK.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=WORK))
    for var, sub in (("STUDIO_MODELS", "models"), ("STUDIO_JOBS", "jobs"), ("STUDIO_EXPORTS", "exports"),
                     ("STUDIO_RUNS", "runs")):
        os.environ[var] = str(work / sub)
    os.environ.setdefault("STUDIO_CACHE", str(WORK / "cache"))
    failed = 0
    try:
        for lang in args.lang.split(","):
            checks = Checks(args.out, lang)
            summary = run_language(lang, args, checks, work)
            failed += checks.failed
            checks.emit({"summary": True, "failed_checks": checks.failed, **summary, "smoke": args.smoke,
                         "date": date.today().isoformat(), "python": platform.python_version(),
                         "cpus": os.cpu_count()})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
