"""Pool and evaluation on a project's corpus: do they read the stored vectors (studio/retrieval/vector_store.py)
instead of encoding the corpus again?

One scenario, run twice in fresh processes with fresh caches — once by this tree (the studio) and once by a
reference tree (``--reference DIR``: the code before, e.g. ``git archive HEAD | tar -x -C DIR``):

1. the demo project, padded to ``--docs`` documents with numbered copies of its passages;
2. ``pool`` (hybrid, k 20, the ★ model) then ``evaluate`` (the ★ model on the gold labels), each timed through the
   action the CLI calls, counting the corpus texts the encoder got;
3. ``--add`` documents added (an import), then evaluate and pool again.

One JSON line per (implementation, step) with seconds and texts encoded, then one line per step with the ratio
reference / studio, and a last line with versions. The first pool and evaluation also pay the model's load.

    python bench/pool_eval_vectors.py --reference /tmp/ref --docs 95 --add 10     # the demo as it is
    python bench/pool_eval_vectors.py --reference /tmp/ref --docs 2000 --add 100
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(root: Path, docs: int, add: int) -> None:
    """Run the scenario with the studio at `root` (first on sys.path); one JSON line per step on stdout."""
    sys.path.insert(0, str(root))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from studio.actions import Actor, Project, collect, evaluate
    from studio.demo import load_demo
    from studio.retrieval import dense
    from studio.store import opened

    encoded = [0]
    real = dense.encode
    queries: set[str] = set()

    def counting(texts, *args, **kwargs):
        texts = list(texts)
        encoded[0] += sum(text not in queries for text in texts)  # the corpus's texts, not the queries'
        return real(texts, *args, **kwargs)

    dense.encode = counting
    folder = Path(tempfile.mkdtemp(prefix="pool-eval-"))
    db_path = folder / "studio.db"
    with opened(db_path) as db:
        load_demo(db)
        base = list(db.query("SELECT title, text FROM documents ORDER BY id"))
        queries.update(row["text"] for row in db.query("SELECT text FROM queries"))
        pad(db, base, docs - len(base), "pad")
    project, admin = Project(db_path), Actor("bench", "admin")

    def step(name: str, fn) -> None:
        before, t0 = encoded[0], time.perf_counter()
        fn()
        print(json.dumps({"step": name, "seconds": round(time.perf_counter() - t0, 2),
                          "corpus_texts_encoded": encoded[0] - before,
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}),
              flush=True)

    def pool() -> None:
        collect.pool(project, admin, 20, "hybrid")

    def evaluation() -> None:
        evaluate.evaluate(project, admin, ["default"], "db")

    step("pool", pool)
    step("eval", evaluation)
    with opened(db_path) as db:
        pad(db, base, add, "added")
    step("eval_after_add", evaluation)
    step("pool_after_add", pool)


def pad(db, base: list[dict], n: int, tag: str) -> None:
    """Add `n` documents: numbered copies of the demo's passages (distinct texts)."""
    rows = []
    for i in range(n):
        doc = base[i % len(base)]
        text = f"{doc['text']} ({tag} {i})"
        rows.append({"key": f"{tag}-{i}", "title": doc["title"], "text": text,
                     "text_hash": hashlib.sha1(text.encode("utf-8")).hexdigest(), "source": "bench"})
    if rows:
        db["documents"].insert_all(rows)


def run(root: Path, docs: int, add: int) -> list[dict]:
    """The scenario in a fresh process with a fresh cache, the studio taken from `root`."""
    env = {**os.environ, "STUDIO_CACHE": tempfile.mkdtemp(prefix="pool-eval-cache-"), "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, __file__, "--worker", str(root), "--docs", str(docs), "--add", str(add)],
                         env=env, cwd=tempfile.mkdtemp(prefix="pool-eval-cwd-"), capture_output=True, text=True,
                         check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, help="the studio before (a tree with studio/)")
    parser.add_argument("--docs", type=int, default=95)
    parser.add_argument("--add", type=int, default=10)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.docs, args.add)
        return
    lines = []
    results = {}
    for name, root in (("reference", args.reference), ("studio", ROOT)):
        if root is None:
            continue
        results[name] = run(root, args.docs, args.add)
        for row in results[name]:
            lines.append({"implementation": name, "docs": args.docs, "add": args.add, **row})
    if "reference" in results:
        for ref, new in zip(results["reference"], results["studio"]):
            lines.append({"step": new["step"], "docs": args.docs, "add": args.add,
                          "seconds_ratio_reference_over_studio": round(ref["seconds"] / max(new["seconds"], 1e-9), 2),
                          "texts_encoded": {"reference": ref["corpus_texts_encoded"],
                                            "studio": new["corpus_texts_encoded"]}})
    lines.append({"python": platform.python_version(), "cpus": os.cpu_count(),
                  "date": datetime.date.today().isoformat()})
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


if __name__ == "__main__":
    main()
