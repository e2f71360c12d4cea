"""CPU corpus encoding (issue 30, item 4): sentence-transformers' ``encode`` vs the studio's ``dense.encode``.

Same model (the embedded all-MiniLM-L6-v2 unless --model), same corpus, same process, same cores. The corpus is real
man-page text (bench/manpages.py's sets, built here when missing): every document of the English set (what its test
queries are judged against), then as distractors the Chinese set's documents and the later parts of long English
documents (never judged relevant), up to --docs passages. Timing interleaves the two encoders chunk by chunk (the
first to run alternates), so the load of other processes on shared cores falls on both alike.

Prints JSON lines: one per encoder (passages/s, seconds, nDCG@10 of the English test queries, each encoder ranking
with its own query vectors, checked against ranx), then a comparison (throughput ratio, nDCG@10 delta, the smallest
and mean row cosine between the two encoders' corpus vectors, top-10 overlap, single-query latency), then versions.

    python bench/cpu_encode.py --smoke            # 48 passages, 20 queries, under 30 s on idle cores
    python bench/cpu_encode.py --docs 2000 --out bench/results/cpu-encode-2026-12-08.jsonl
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from studio.evaluation import metrics, runner  # noqa: E402
from studio.retrieval import cache, cpu_encode, dense  # noqa: E402

SETS = ROOT / ".cache" / "bench"
TAIL_CHARS = 1500  # a distractor passage: the text of a long English page after its first TAIL_CHARS characters


def load_set(lang: str) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    folder = SETS / f"manpages-{lang}"
    if not (folder / "corpus.jsonl").exists():
        spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
        manpages = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(manpages)
        manpages.build(lang, folder)
    test = runner.from_beir(folder, "test")  # as the studio reads a BEIR folder
    return test.corpus, test.queries, test.qrels


def build_corpus(docs: int, smoke: bool) -> tuple[list[str], list[str], dict[str, str], dict[str, dict[str, int]]]:
    """(doc ids, passages, test queries, qrels): English documents first, then distractors, `docs` in all."""
    corpus, queries, qrels = load_set("en")
    qrels = {q: rels for q, rels in qrels.items() if q in queries}
    if smoke:
        qrels = dict(list(qrels.items())[:20])
        wanted = {d for rels in qrels.values() for d in rels}
        corpus = {d: t for d, t in corpus.items() if d in wanted} | dict(
            list((d, t) for d, t in corpus.items() if d not in wanted)[:docs // 2])
    ids, texts = list(corpus), list(corpus.values())
    distractors = [(f"zh:{d}", t) for d, t in load_set("zh")[0].items()]
    distractors += [(f"tail:{d}", t[TAIL_CHARS:TAIL_CHARS * 2]) for d, t in corpus.items() if len(t) > TAIL_CHARS * 1.5]
    for d, t in distractors[:max(docs - len(ids), 0)]:
        ids.append(d)
        texts.append(t)
    ids, texts = ids[:docs], texts[:docs]
    kept = set(ids)
    qrels = {q: {d: r for d, r in rels.items() if d in kept} for q, rels in qrels.items()}
    qrels = {q: rels for q, rels in qrels.items() if rels}
    return ids, texts, {q: queries[q] for q in qrels}, qrels


def st_encode(embedder, texts: list[str]) -> np.ndarray:
    return np.asarray(embedder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False), dtype=np.float32)


def timed_interleaved(encoders: dict, texts: list[str], chunk: int) -> tuple[dict, dict]:
    vectors = {name: [] for name in encoders}
    seconds = {name: 0.0 for name in encoders}
    names = list(encoders)
    for n, start in enumerate(range(0, len(texts), chunk)):
        part = texts[start:start + chunk]
        for name in (names if n % 2 == 0 else names[::-1]):
            begin = time.perf_counter()
            vectors[name].append(encoders[name](part))
            seconds[name] += time.perf_counter() - begin
    return {k: np.concatenate(v) for k, v in vectors.items()}, seconds


def rank(doc_vectors: np.ndarray, query_vectors: np.ndarray, ids: list[str], qids: list[str], k: int = 10) -> dict:
    scores = query_vectors @ doc_vectors.T
    top = dense.top_k(scores, k)
    return {q: {ids[i]: float(scores[row, i]) for i in top[row]} for row, q in enumerate(qids)}


def ranx_ndcg(qrels: dict, run: dict) -> float | None:
    try:
        from ranx import Qrels, Run, evaluate
    except ImportError:
        return None
    return float(evaluate(Qrels(qrels), Run(run), "ndcg@10", make_comparable=True))


def query_latency_ms(encode, queries: list[str]) -> float:
    encode(queries[:1])
    times = []
    for q in queries[:10]:
        begin = time.perf_counter()
        encode([q])
        times.append(time.perf_counter() - begin)
    return round(float(np.median(times)) * 1000, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=500, help="passages per interleaved timing chunk")
    parser.add_argument("--model", default=None, help="model name or folder (default: the ★ default)")
    parser.add_argument("--smoke", action="store_true", help="48 passages, 20 queries: under 30 s")
    parser.add_argument("--out", type=Path, default=None, help="append the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.docs, args.chunk = 48, 24
    import torch

    name = dense.resolve_model(args.model)
    embedder = dense.load_embedder(name)
    if not cpu_encode.variant(name):
        raise SystemExit(f"the fast path does not apply to {name} here ({cpu_encode.ENV}, GPU or model layout)")
    ids, texts, queries, qrels = build_corpus(args.docs, args.smoke)
    qids, qtexts = list(queries), list(queries.values())
    encoders = {"sentence-transformers": lambda t: st_encode(embedder, t), "studio": lambda t: dense.encode(t, name)}
    for encode in encoders.values():  # load, quantise and warm both before any timing
        encode(texts[:8])
    vectors, seconds = timed_interleaved(encoders, texts, args.chunk)
    lines, runs = [], {}
    common = {"bench": "cpu_encode", "model": Path(name).name, "passages": len(texts), "queries": len(qids),
              "threads": torch.get_num_threads(), "cores": os.cpu_count(), "smoke": args.smoke}
    for label, encode in encoders.items():
        runs[label] = rank(vectors[label], encode(qtexts), ids, qids)
        score = metrics.evaluate(qrels, runs[label], ks=(10,), metrics=("ndcg",))["ndcg@10"]
        lines.append(common | {"encoder": label, "passages_per_s": round(len(texts) / seconds[label], 2),
                               "seconds": round(seconds[label], 2), "ndcg@10": round(score, 4),
                               "ndcg@10_ranx": (round(r, 4) if (r := ranx_ndcg(qrels, runs[label])) is not None
                                                else None),
                               "query_ms_p50": query_latency_ms(encode, qtexts)})
    cos = np.sum(vectors["studio"] * vectors["sentence-transformers"], axis=1)
    overlap = np.mean([len(set(runs["studio"][q]) & set(runs["sentence-transformers"][q])) / 10 for q in qids])
    st_line, studio_line = lines
    lines.append(common | {"compare": "studio/sentence-transformers", "variant": cpu_encode.VARIANT,
                           "token_budget": cpu_encode.TOKEN_BUDGET,
                           "throughput_ratio": round(studio_line["passages_per_s"] / st_line["passages_per_s"], 3),
                           "ndcg@10_delta": round(studio_line["ndcg@10"] - st_line["ndcg@10"], 4),
                           "min_row_cosine": round(float(cos.min()), 4), "mean_row_cosine": round(float(cos.mean()), 4),
                           "max_cosine_delta": round(float(1 - cos.min()), 4),
                           "mean_top10_overlap": round(float(overlap), 4),
                           "fingerprints_differ": cache.model_fingerprint(name) != _plain_fingerprint(name),
                           "bar_ratio_1_5": studio_line["passages_per_s"] >= 1.5 * st_line["passages_per_s"],
                           "bar_ndcg_0_005": abs(studio_line["ndcg@10"] - st_line["ndcg@10"]) <= 0.005})
    import sentence_transformers
    import transformers

    lines.append({"bench": "cpu_encode", "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                                      "transformers": transformers.__version__,
                                                      "sentence_transformers": sentence_transformers.__version__},
                  "cpu": platform.processor() or platform.machine(), "date": datetime.date.today().isoformat(),
                  "load_1min": round(os.getloadavg()[0], 2)})
    for line in lines:
        print(json.dumps(line, ensure_ascii=False), flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return 0


def _plain_fingerprint(name: str) -> str:
    old = os.environ.get(cpu_encode.ENV)
    os.environ[cpu_encode.ENV] = "0"
    try:
        return cache.model_fingerprint(name)
    finally:
        if old is None:
            del os.environ[cpu_encode.ENV]
        else:
            os.environ[cpu_encode.ENV] = old


if __name__ == "__main__":
    sys.exit(main())
