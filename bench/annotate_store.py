"""The annotation queue at scale, through the store functions the UI calls after every key press.

For each project size (10k, 100k, 1M pairs; a tenth of them rated once, a tenth twice, the rest untouched):

- one annotator: next_pair, submit_rating and progress, p50/p95/p99 in ms;
- twenty annotators, each its own process and connection, all at once: the same, plus errors that reached the
  caller ("database is locked" included), ratings lost (acknowledged but not in the database) and rule violations
  (a third rating, one person in both slots, a pair served to two people beyond its two slots);
- the reference: the queue as it was before schema m004 (correlated sub-queries over every pair, inside the write
  transaction), timed in the same run on the same database, with the ratio;
- import: `studio import pairs` of a CSV with that many lines (wall and CPU time, peak memory, in a child process)
  against a plain sqlite3 executemany of the same rows into the same schema, with the ratios.

Prints one JSON line per measurement.

    python bench/annotate_store.py [--sizes 10000,100000,1000000] [--processes 20] [--calls 200]
    python bench/annotate_store.py --only import --sizes 1000000 [--repeat 3]   # the import alone
    python bench/annotate_store.py --smoke          # CI: a small project, checks that every path works
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAIRS_PER_QUERY = 20  # pooling top-20 per query, as in the issue


def percentiles(values: list[float]) -> dict:
    """p50/p95/p99 in milliseconds (nearest rank)."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": round(1000 * statistics.median(ordered), 2), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


def build_project(db_path: Path, pairs: int, annotators: int, seed: int = 0) -> None:
    """A project of `pairs` pairs (20 per query), a tenth rated once and a tenth twice by the team."""
    from studio.store import connect

    db = connect(db_path)  # schema, triggers and counters
    conn = db.conn
    queries = (pairs + PAIRS_PER_QUERY - 1) // PAIRS_PER_QUERY
    with conn:
        conn.executemany("INSERT INTO queries (id, key, text, text_hash, source) VALUES (?, ?, ?, ?, 'bench')",
                         ((i, f"q{i}", f"query {i} about a drug interaction", f"hq{i}") for i in range(1, queries + 1)))
        conn.executemany("INSERT INTO documents (id, key, title, text, text_hash, source) VALUES (?, ?, '', ?, ?, 'bench')",
                         ((i, f"d{i}", f"document {i}: dosage, interactions and contraindications", f"hd{i}")
                          for i in range(1, pairs + 1)))
        conn.executemany("INSERT INTO pairs (id, query_id, document_id, source) VALUES (?, ?, ?, 'bench')",
                         ((i, 1 + (i - 1) // PAIRS_PER_QUERY, i) for i in range(1, pairs + 1)))
        conn.executemany("INSERT INTO annotators (id, name, role) VALUES (?, ?, 'annotator')",
                         ((i, f"annotator-{i:02d}") for i in range(1, annotators + 1)))
        rng = random.Random(seed)
        picked = rng.sample(range(1, pairs + 1), pairs // 5)
        rows = []
        for n, pair in enumerate(picked):
            first = rng.randrange(1, annotators + 1)
            rows.append((pair, first, rng.choice((0, 1, 2))))
            if n % 2:  # half of the picked pairs get their second rating
                rows.append((pair, 1 + first % annotators, rng.choice((0, 1, 2))))
        conn.executemany("INSERT INTO ratings (pair_id, annotator_id, rating) VALUES (?, ?, ?)", rows)
    db.close()


def reference_next_pair(db, me: int) -> int | None:
    """The queue before schema m004: every pair scanned with correlated sub-queries, in the write transaction."""
    from studio.store.connection import immediate

    available = """p.in_queue = 1
        AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.pair_id = p.id AND r.annotator_id = :me)
        AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.pair_id = p.id AND s.annotator_id = :me)"""
    taken = """((SELECT count(*) FROM ratings r WHERE r.pair_id = p.id)
        + (SELECT count(*) FROM assignments a WHERE a.pair_id = p.id AND a.annotator_id != :me
           AND NOT EXISTS (SELECT 1 FROM ratings r2 WHERE r2.pair_id = a.pair_id AND r2.annotator_id = a.annotator_id)))"""
    with immediate(db):
        rows = list(db.query(f"SELECT p.id, {taken} AS taken FROM pairs p WHERE {available} AND {taken} < 2 "
                             "ORDER BY taken DESC, p.query_id, p.id LIMIT 1", {"me": me}))
    return rows[0]["id"] if rows else None


def annotate(db_path: str, name: str, calls: int, start_at: float | None = None, think: float = 0.0) -> dict:
    """One annotator's session: `calls` times next pair → rating → progress, reading each pair for about `think`
    seconds (0: as fast as the store answers). Latencies, errors, what was saved."""
    from studio.store import connect
    from studio.store import ratings as store_ratings

    db = connect(db_path)
    rng = random.Random(name)
    timings: dict[str, list[float]] = {"next_pair": [], "submit": [], "progress": []}
    errors: list[str] = []
    saved: list[int] = []
    if start_at:
        time.sleep(max(0.0, start_at - time.time()))
    for _ in range(calls):
        try:
            t0 = time.perf_counter()
            view = store_ratings.next_pair(db, name)
            t1 = time.perf_counter()
            timings["next_pair"].append(t1 - t0)
            if view is None:
                break
            if think:
                time.sleep(rng.uniform(0.5, 1.5) * think)  # reading the document
                t1 = time.perf_counter()
            store_ratings.submit_rating(db, name, view.pair_id, rng.choice((0, 1, 2)))
            t2 = time.perf_counter()
            timings["submit"].append(t2 - t1)
            saved.append(view.pair_id)
            store_ratings.progress(db, name)
            timings["progress"].append(time.perf_counter() - t2)
        except Exception as exc:  # what would reach the annotator
            errors.append(f"{type(exc).__name__}: {exc}")
    db.close()
    return {"name": name, "timings": timings, "errors": errors, "saved": saved}


def _worker(args: tuple) -> dict:
    return annotate(*args)


def violations(db_path: Path, results: list[dict]) -> dict:
    """Lost ratings (acknowledged, not stored) and rule violations in the database after a run."""
    conn = sqlite3.connect(db_path)
    names = dict(conn.execute("SELECT name, id FROM annotators"))
    stored = set(conn.execute("SELECT pair_id, annotator_id FROM ratings"))
    lost = sum((pair, names[r["name"]]) not in stored for r in results for pair in r["saved"])
    third = conn.execute("SELECT count(*) FROM (SELECT pair_id FROM ratings GROUP BY pair_id HAVING count(*) > 2)")
    counters = conn.execute(
        "SELECT (SELECT queued FROM queue_counts) = (SELECT count(*) FROM pairs WHERE in_queue = 1) AND "
        "(SELECT double_rated FROM queue_counts) = (SELECT count(*) FROM (SELECT pair_id FROM ratings "
        "GROUP BY pair_id HAVING count(*) >= 2))").fetchone()[0]
    result = {"lost_ratings": lost, "pairs_with_3_ratings": third.fetchone()[0], "counters_consistent": bool(counters)}
    conn.close()
    return result


def team_run(db_path: Path, size: int, processes: int, calls: int, think: float) -> dict:
    """Twenty (`processes`) annotators at once, each its own process and connection."""
    start_at = time.time() + 2.0  # every process connected before the first call
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_worker, [(str(db_path), f"annotator-{i:02d}", calls, start_at, think)
                                     for i in range(1, processes + 1)])
    wall = time.perf_counter() - t0 - 2.0
    merged: dict[str, list[float]] = {"next_pair": [], "submit": [], "progress": []}
    for r in results:
        for what, values in r["timings"].items():
            merged[what].extend(values)
    errors = [e for r in results for e in r["errors"]]
    saved = sum(len(r["saved"]) for r in results)
    line = {"bench": "annotate_store", "pairs": size, "annotators": processes, "calls_each": calls,
            "think_s": think, "ratings_saved": saved, "ratings_per_s": round(saved / wall, 1), "errors": len(errors),
            "locked_errors": sum("locked" in e for e in errors), **violations(db_path, results)}
    for what, values in merged.items():
        line.update({f"{what}_{k}": v for k, v in percentiles(values).items()})
    both = [a + b for r in results for a, b in zip(r["timings"]["next_pair"], r["timings"]["submit"])]
    line.update({f"next_plus_submit_{k}": v for k, v in percentiles(both).items()})
    if errors:
        line["first_error"] = errors[0]
    return line


def latency_bench(size: int, processes: int, calls: int, reference_calls: int, thinks: list[float]) -> list[dict]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "queue.db"
        t0 = time.perf_counter()
        build_project(db_path, size, max(processes, 2) + 1)
        build_s = time.perf_counter() - t0
        solo = annotate(str(db_path), f"annotator-{processes + 1:02d}" if processes + 1 <= 99 else "annotator-01",
                        calls)
        line = {"bench": "annotate_store", "pairs": size, "annotators": 1, "calls": calls, "build_s": round(build_s, 1),
                "errors": len(solo["errors"])}
        for what, values in solo["timings"].items():
            line.update({f"{what}_{k}": v for k, v in percentiles(values).items()})
        lines.append(line)

        from studio.store import connect

        db = connect(db_path)
        me = next(db.query("SELECT id FROM annotators WHERE name = 'annotator-01'"))["id"]
        ref = []
        for _ in range(reference_calls):
            t = time.perf_counter()
            reference_next_pair(db, me)
            ref.append(time.perf_counter() - t)
        db.close()
        ref_p = percentiles(ref)
        lines.append({"bench": "annotate_store", "pairs": size, "annotators": 1, "implementation": "reference",
                      "calls": reference_calls, **{f"next_pair_{k}": v for k, v in ref_p.items()},
                      "ratio_next_pair_p50_reference_over_studio":
                          round(ref_p["p50_ms"] / line["next_pair_p50_ms"], 1) if line["next_pair_p50_ms"] else None})

        for think in thinks:
            lines.append(team_run(db_path, size, processes, calls, think))
    return lines


_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); print(u.ru_maxrss, u.ru_utime + u.ru_stime)")


def _peak_child(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak resident memory (MB) and CPU seconds (user + system) of `cmd`, measured by a fresh parent
    of its own (so that no other child of this process counts). CPU time says what wall time means on a machine
    shared with other work."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], check=True, capture_output=True, text=True,
                         cwd=ROOT)
    rss_kb, cpu_s = out.stdout.split()[-2:]
    return time.perf_counter() - t0, int(rss_kb) / 1024, float(cpu_s)


def import_bench(size: int) -> dict:
    """`studio import pairs FILE` against a plain executemany of the same rows, each in a fresh child process."""
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "pairs.csv"
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["query_id", "query", "doc_id", "document"])
            for i in range(size):
                q = i // PAIRS_PER_QUERY
                out.writerow([f"q{q}", f"query {q} about a drug interaction", f"d{i}",
                              f"document {i}: dosage, interactions and contraindications"])
        studio_s, studio_mb, studio_cpu = _peak_child([sys.executable, "-m", "studio", "--db",
                                                       str(Path(tmp) / "studio.db"), "import", "pairs", str(csv_path)])
        plain_s, plain_mb, plain_cpu = _peak_child([sys.executable, __file__, "--plain-import", str(csv_path),
                                                    str(Path(tmp) / "plain.db")])
    return {"bench": "annotate_store", "what": "import", "pairs": size, "studio_s": round(studio_s, 1),
            "studio_cpu_s": round(studio_cpu, 1), "studio_peak_mb": round(studio_mb),
            "plain_executemany_s": round(plain_s, 1), "plain_cpu_s": round(plain_cpu, 1),
            "plain_peak_mb": round(plain_mb), "ratio_studio_over_plain": round(studio_s / plain_s, 2),
            "ratio_cpu_studio_over_plain": round(studio_cpu / plain_cpu, 2)}


def plain_import(csv_path: str, db_path: str) -> None:
    """The reference: the same rows the studio stores (documents and queries with key, text, text hash and source;
    pairs) into the studio's own schema (its indexes and triggers), through sqlite3's executemany, streamed from
    the file, in one transaction — without the studio's checks, dedupe by text and audit."""
    from studio.store import connect
    from studio.store.imports import text_hash

    connect(db_path).close()  # the studio's schema, migrated
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA synchronous=FULL")
    with open(csv_path, newline="", encoding="utf-8") as f, conn:
        rows = csv.DictReader(f)
        queries: dict[str, int] = {}

        def pairs():
            for n, row in enumerate(rows, start=1):
                if row["query_id"] not in queries:
                    queries[row["query_id"]] = conn.execute(
                        "INSERT INTO queries (key, text, text_hash, source) VALUES (?, ?, ?, 'plain')",
                        (row["query_id"], row["query"], text_hash(row["query"]))).lastrowid
                conn.execute("INSERT INTO documents (id, key, title, text, text_hash, source) "
                             "VALUES (?, ?, '', ?, ?, 'plain')",
                             (n, row["doc_id"], row["document"], text_hash(row["document"])))
                yield queries[row["query_id"]], n

        conn.executemany("INSERT INTO pairs (query_id, document_id, source) VALUES (?, ?, 'plain')", pairs())
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200, help="next/submit/progress rounds per annotator")
    parser.add_argument("--reference-calls", type=int, default=3)
    parser.add_argument("--think", default="1.0,0",
                        help="seconds each annotator reads a pair, one team run per value (0: as fast as possible)")
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--only", choices=("queue", "import"),
                        help="run one part: the queue's latencies (as --no-import) or the import alone")
    parser.add_argument("--repeat", type=int, default=1, help="import measurements per size (each its own line)")
    parser.add_argument("--smoke", action="store_true", help="2,000 pairs, 4 processes, 20 calls: every path once")
    parser.add_argument("--plain-import", nargs=2, metavar=("CSV", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_import:
        plain_import(*args.plain_import)
        return
    if args.smoke:
        args.sizes, args.processes, args.calls, args.reference_calls, args.think = "2000", 4, 20, 2, "0.02,0"
    for size in (int(s) for s in args.sizes.split(",")):
        thinks = [float(x) for x in args.think.split(",")]
        if args.only != "import":
            for line in latency_bench(size, args.processes, args.calls, args.reference_calls, thinks):
                print(json.dumps(line), flush=True)
        if not args.no_import and args.only != "queue":
            for _ in range(args.repeat):
                print(json.dumps(import_bench(size)), flush=True)


if __name__ == "__main__":
    main()
