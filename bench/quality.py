"""Does fine-tuning in the studio pay off? Retrieval quality on real text, studio pipeline vs a plain fine-tune.

Two BEIR sets are built from Debian's man pages (bench/manpages.py): query = the NAME summary, document = the
DESCRIPTION. On each set's test split, in one run, this measures

* ``bm25``      bm25s with the studio's tokenizer,
* ``base``      the embedded all-MiniLM-L6-v2,
* ``plain``     a plain sentence-transformers fine-tune (MultipleNegativesRankingLoss on (query, positive) pairs,
                in-batch negatives only, batch 32, lr 2e-5, warmup 0.1, same epochs),
* ``studio``    the studio pipeline exactly as a user runs it: ``studio import beir`` (train split) →
                ``studio export triplets`` (default options) → ``studio train`` (default recipe) → ``studio eval``,
* ``reranker``  the studio's fine-tuned embedder's top-100 rescored by a cross-encoder fine-tuned with
                ``studio train --task reranker`` on the same export (dense alone is the ``studio`` line),
* ``studio+bm25`` the studio fine-tune fused with BM25 by ``studio eval --system embedder+bm25 --tune-on train``
                (the fusion tuned on the export's validation queries: the train split minus the training file),
* ``recommended`` what ``studio eval`` (and ⑧) recommends among bm25, the fine-tune and the fusion,

and prints one JSON line per system: nDCG@10, MRR@10, Recall@10, Recall@100, training seconds, and the ratio
studio / plain. ``--variant`` adds studio runs with other export/train options (the ablations in RESULTS.md).

    python bench/quality.py                 # both languages, full sets (tens of minutes on 2 cores)
    python bench/quality.py --smoke         # 40 pages per language, one epoch: checks the path, not the quality
    python bench/quality.py --lang zh --only studio --variant neg0="--hard-negatives none"

Everything lands in a git-ignored cache folder (``.cache/bench``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.evaluation import runner  # noqa: E402
from studio.evaluation.metrics import evaluate  # noqa: E402

KS = (10, 100)
REPORTED = ("ndcg@10", "mrr@10", "recall@10", "recall@100")
SYSTEMS = ("bm25", "base", "plain", "studio", "reranker")
PLAIN = {"batch_size": 32, "lr": 2e-5, "warmup": 0.1}
SMOKE_PAGES = 40
SMOKE_RERANK_TOP = 10  # cross-encoding 100 documents per query is most of a CPU smoke run


@dataclass
class Bench:
    """Where one language's run lives and what it is asked to do."""

    lang: str
    work: Path
    epochs: float
    seed: int = 42
    smoke: bool = False
    rerank_top: int = 100
    results: dict[str, dict] = field(default_factory=dict)

    @property
    def beir(self) -> Path:
        return self.work / "beir"


def load_manpages():
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emit(record: dict) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def scores(qrels: dict, run: dict) -> dict[str, float]:
    metrics = evaluate(qrels, run, KS)
    return {name: round(metrics[name], 4) for name in REPORTED}


# --- systems -------------------------------------------------------------------------------------------------

def run_bm25(evalset: runner.EvalSet) -> dict:
    from studio.retrieval.bm25 import BM25Index

    doc_ids = list(evalset.corpus)
    index = BM25Index([evalset.corpus[d] for d in doc_ids])
    qids = list(evalset.queries)
    hits = index.search_many([evalset.queries[q] for q in qids], k=max(KS))
    run = {q: {doc_ids[pos]: score for pos, score in ranked} for q, ranked in zip(qids, hits)}
    return scores(evalset.qrels, run)


def run_dense(evalset: runner.EvalSet, model: str | Path) -> dict:
    return scores(evalset.qrels, runner.retrieve(evalset, str(model), k=max(KS)).run)


def train_plain(bench: Bench, out: Path) -> float:
    """The ten lines an analyst would write with sentence-transformers; returns training seconds."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from studio.config import embedded_model_path

    train = runner.from_beir(bench.beir, split="train")
    anchors, positives = [], []
    for qid, labels in train.qrels.items():
        for doc, grade in labels.items():
            if grade > 0:
                anchors.append(train.queries[qid])
                positives.append(train.corpus[doc])
    torch.manual_seed(bench.seed)
    start = time.perf_counter()
    model = SentenceTransformer(str(embedded_model_path()), device="cpu" if not torch.cuda.is_available() else None)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"), num_train_epochs=bench.epochs, per_device_train_batch_size=PLAIN["batch_size"],
        learning_rate=PLAIN["lr"], warmup_steps=PLAIN["warmup"], seed=bench.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none", logging_steps=10,
        disable_tqdm=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, loss=MultipleNegativesRankingLoss(model),
                                         train_dataset=Dataset.from_dict({"anchor": anchors, "positive": positives}))
    trainer.train()
    model.save(str(out / "model"))
    return time.perf_counter() - start


def studio(bench: Bench, env: dict, *args: str) -> subprocess.CompletedProcess:
    """One `studio` command, as a user types it, inside the variant's own database/models/jobs folders."""
    command = [sys.executable, "-m", "studio", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"`studio {shlex.join(args)}` failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"\n{done.stderr[-3000:]}")
    return done


def studio_env(folder: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "STUDIO_DB": str(folder / "studio.db"),
            "STUDIO_MODELS": str(folder / "models"), "STUDIO_JOBS": str(folder / "jobs"),
            "STUDIO_EXPORTS": str(folder / "exports"), "STUDIO_CACHE": str(folder.parent.parent / "cache")}


def run_studio(bench: Bench, name: str, export_args: list[str], train_args: list[str],
               reranker: bool = False) -> list[dict]:
    """import beir → export triplets → train → eval, with the defaults unless a variant passes options."""
    folder = bench.work / "studio" / name
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    env = studio_env(folder)
    train_file = folder / "exports" / "train.jsonl"
    epochs = ["--epochs", str(bench.epochs)] if bench.epochs is not None else []
    studio(bench, env, "import", "beir", str(bench.beir), "--split", "train")
    start = time.perf_counter()
    studio(bench, env, "export", "triplets", str(train_file), *export_args)
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    studio(bench, env, "train", "--task", "embedder", "--base", "default", "--train", str(train_file),
           "--name", "embedder", *epochs, *train_args)
    train_s = time.perf_counter() - start
    # With the plain fine-tune as the baseline, `studio eval` also tests the difference (paired randomisation).
    plain = bench.work / "plain" / "model"
    baseline = ["--model", str(plain)] if (plain / "modules.json").is_file() else []
    found = json.loads(studio(bench, env, "eval", *baseline, "--model", "embedder", "--beir", str(bench.beir),
                              "--split", "test", "--k", ",".join(map(str, KS)), "--json").stdout)
    metrics = {k: round(found["models"][-1]["metrics"][k], 4) for k in REPORTED}
    line = {"system": "studio" if name == "default" else f"studio:{name}", **metrics,
            "train_s": round(train_s, 1), "export_s": round(export_s, 1),
            "options": shlex.join(export_args + train_args)}
    if baseline:
        row = next(r for r in found["comparisons"][0]["rows"] if r["metric"] == "ndcg@10")
        line.update({"p_vs_plain_ndcg@10": round(row["p_value"], 4),
                     "wins_ties_losses_vs_plain": [row["wins"], row["ties"], row["losses"]]})
    lines = [line]
    if name == "default":
        lines += run_systems(bench, env)
    if reranker:
        start = time.perf_counter()
        studio(bench, env, "train", "--task", "reranker", "--base", "default", "--train", str(train_file),
               "--name", "reranker", *epochs)
        rr_train_s = time.perf_counter() - start
        found = json.loads(studio(bench, env, "eval", "--model", "embedder", "--reranker", "reranker",
                                  "--rerank-top", str(bench.rerank_top), "--beir", str(bench.beir), "--split",
                                  "test", "--k", ",".join(map(str, KS)), "--json").stdout)
        reranked = {k: round(found["models"][-1]["metrics"][k], 4) for k in REPORTED}
        lines.append({"system": "reranker", **reranked, "train_s": round(rr_train_s, 1),
                      "rerank_top": bench.rerank_top, "vs_dense_ndcg@10": round(
                          reranked["ndcg@10"] - metrics["ndcg@10"], 4)})
    return lines


def run_systems(bench: Bench, env: dict) -> list[dict]:
    """What ⑧ evaluates and recommends, as `studio eval --system` runs it: BM25, the studio fine-tune, the fine-tune
    fused with BM25 — its fusion tuned on the train split minus the fine-tune's training queries, i.e. on the
    export's validation queries, never on test queries — and the recommended one of the three."""
    specs = ["bm25", "embedder", "embedder+bm25"]
    found = json.loads(studio(bench, env, "eval", *(a for spec in specs for a in ("--system", spec)), "--beir",
                              str(bench.beir), "--split", "test", "--tune-on", "train",
                              "--k", ",".join(map(str, KS)), "--json").stdout)
    by_spec = {m["model"]: m for m in found["models"]}
    fused = by_spec["embedder+bm25"]
    fusion = fused["system"]["fusion"]
    lines = [{"system": "studio+bm25", **{k: round(fused["metrics"][k], 4) for k in REPORTED},
              "fusion": fusion["method"], "weight": fusion["weight"], "tune_queries": fusion["tune_queries"],
              "ms_per_query": fused["system"]["ms_per_query"]}]
    rec = found["recommendation"]
    best = by_spec[rec["spec"]]
    lines.append({"system": "recommended", "spec": rec["spec"], **{k: round(best["metrics"][k], 4) for k in REPORTED},
                  "runner_up": rec["runner_up"], "lead_ndcg@10": round(rec["delta"], 4),
                  "p_lead": round(rec["p_holm"], 4), "ms_per_query": rec["ms_per_query"],
                  "vs_bm25_ndcg@10": round(best["metrics"]["ndcg@10"] - by_spec["bm25"]["metrics"]["ndcg@10"], 4)})
    return lines


# --- driver --------------------------------------------------------------------------------------------------

def build_set(bench: Bench) -> dict:
    manpages = load_manpages()
    return manpages.build(bench.lang, bench.beir, limit=SMOKE_PAGES if bench.smoke else None, seed=bench.seed)


def run_language(bench: Bench, only: set[str], variants: dict[str, str]) -> list[dict]:
    stats = build_set(bench)
    test = runner.from_beir(bench.beir, split="test")
    common = {"bench": "quality", "lang": bench.lang, "smoke": bench.smoke, "epochs": bench.epochs,
              "test_queries": len(test.qrels), "documents": len(test.corpus)}
    emit({**common, "set": stats})
    lines: list[dict] = []

    def record(line: dict) -> None:
        line = {**common, **line}
        lines.append(line)
        emit(line)

    if "bm25" in only:
        record({"system": "bm25", **run_bm25(test)})
    if "base" in only:
        record({"system": "base", **run_dense(test, _default())})
    plain = None
    if "plain" in only:
        out = bench.work / "plain"
        seconds = train_plain(bench, out)
        plain = {"system": "plain", **run_dense(test, out / "model"), "train_s": round(seconds, 1)}
        record(plain)
    if "studio" in only or "reranker" in only:
        for line in run_studio(bench, "default", [], [], reranker="reranker" in only):
            record(_versus(line, plain))
    for name, options in variants.items():
        export_args, train_args = split_options(options)
        for line in run_studio(bench, name, export_args, train_args):
            record(_versus(line, plain))
    return lines


def _versus(line: dict, plain: dict | None) -> dict:
    if not plain or not line["system"].startswith(("studio", "recommended")):
        return line
    out = dict(line)
    out["ratio_ndcg@10_vs_plain"] = round(line["ndcg@10"] / max(plain["ndcg@10"], 1e-9), 3)
    if "train_s" in line:
        out["ratio_train_s_vs_plain"] = round(line["train_s"] / max(plain["train_s"], 1e-9), 2)
    return out


def split_options(options: str) -> tuple[list[str], list[str]]:
    """A variant's options, split between `studio export triplets` and `studio train` by name."""
    export_names = {"--hard-negatives", "--negatives", "--partial", "--rank-window", "--valid-fraction", "--model"}
    tokens = shlex.split(options)
    export_args, train_args = [], []
    i = 0
    while i < len(tokens):
        target = export_args if tokens[i] in export_names else train_args
        target.append(tokens[i])
        if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            target.append(tokens[i + 1])
            i += 1
        i += 1
    return export_args, train_args


def markdown_table(lines: list[dict]) -> str:
    """The RESULTS.md table for these JSON lines (printed to stderr at the end of a run)."""
    rows = ["| set | system | nDCG@10 | MRR@10 | Recall@10 | Recall@100 | train s | nDCG@10 / plain | time / plain |",
            "|---|---|---|---|---|---|---|---|---|"]
    for line in lines:
        if "system" not in line:
            continue
        cells = [f"{line['lang']} ({line['test_queries']} q)", line["system"],
                 *(f"{line[k]:.4f}" for k in REPORTED), str(line.get("train_s", "")),
                 str(line.get("ratio_ndcg@10_vs_plain", "")), str(line.get("ratio_train_s_vs_plain", ""))]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _default() -> Path:
    from studio.config import embedded_model_path

    return embedded_model_path()


def environment() -> dict:
    import torch
    import transformers

    import FlagEmbedding  # noqa: F401
    from importlib.metadata import version

    return {"bench": "quality", "date": date.today().isoformat(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "flagembedding": version("FlagEmbedding"),
            "sentence_transformers": version("sentence-transformers")}


def main(argv: list[str] | None = None) -> int:
    from studio.training.config import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_PAGES} pages per language, one epoch")
    parser.add_argument("--lang", action="append", choices=("zh", "en"), help="repeat; default both")
    parser.add_argument("--epochs", type=float, help="for the plain and the studio fine-tunes "
                        "(default: the studio's default recipe; 1 with --smoke)")
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"systems to run, of {','.join(SYSTEMS)}")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                        help="an extra studio run with these export/train options (an ablation)")
    parser.add_argument("--rerank-top", type=int, default=100)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench" / "quality")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    variants = dict(v.split("=", 1) for v in args.variant)
    epochs = args.epochs if args.epochs is not None else (1.0 if args.smoke else TrainConfig.epochs)
    emit(environment())
    all_lines = []
    for lang in args.lang or ["zh", "en"]:
        work = args.work / f"{lang}{'-smoke' if args.smoke else ''}"
        rerank_top = min(args.rerank_top, SMOKE_RERANK_TOP) if args.smoke else args.rerank_top
        bench = Bench(lang, work, epochs, smoke=args.smoke, rerank_top=rerank_top)
        all_lines += run_language(bench, only, variants)
    print(markdown_table(all_lines), file=sys.stderr)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            for line in all_lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
