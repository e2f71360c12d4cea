"""BGE-M3 encoding and reranking throughput: FlagEmbedding (BGEM3FlagModel, FlagReranker) vs the studio's encoders.

Same random models of BGE-M3's and bge-reranker-v2-m3's architecture as bench/train_throughput.py (XLM-R large,
vocab 250002; nothing downloaded) and a synthetic corpus with a realistic length spread (lognormal, median 240
tokens, cut at --max-length). Three tasks, each timed for both implementations after a warm-up call (best of
--repeats passes over the whole input):

* m3_dense: ``BGEM3FlagModel.encode_corpus(return_dense=True)`` vs ``M3Encoder.encode_corpus``;
* m3_all: the same with dense + lexical weights + ColBERT vectors;
* rerank: ``FlagReranker.compute_score`` vs ``CrossEncoderScorer.compute_score`` on (query, document) pairs.

Prints one JSON line per task and implementation, one comparison line per task (throughput ratio, largest
difference between the two outputs, memory ratio), and a last line with versions and date.

    python bench/encode_throughput.py --smoke          # tiny models, CPU, under a minute
    python bench/encode_throughput.py --fp16           # GPU, 4096 documents, as FlagEmbedding's default use_fp16
    python bench/encode_throughput.py --fp16 --packing on   # GPU: packed batches, varlen flash attention

peak_mem_gb: torch.cuda.max_memory_allocated on GPUs; on CPUs the peak rise of resident memory (sampled).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import (
    LARGE,
    TINY,
    MemoryPeak,
    build_m3,
    build_tokenizer,
    device_name,
    emit,
    lengths,
    ratio,
    set_threads,
    synthetic_text,
    versions,
    xlmr_config,
)


def build_reranker(folder: Path, size: dict, vocab: int, seed: int = 1) -> Path:
    """bge-reranker-v2-m3's layout with random weights: XLMRobertaForSequenceClassification with one logit."""
    import torch
    from transformers import XLMRobertaForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder, vocab)
    torch.manual_seed(seed)
    XLMRobertaForSequenceClassification(xlmr_config(size, vocab, 0.0, num_labels=1)).save_pretrained(folder)
    return folder


def timed(fn, items, repeats: int):
    """(fn(items), best seconds of `repeats` calls, peak memory record), GPU work included."""
    import torch

    best = float("inf")
    with MemoryPeak() as memory, contextlib.redirect_stdout(sys.stderr):
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn(items)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return result, best, memory


def max_difference(task: str, ours, theirs) -> float:
    """Largest absolute difference between the two implementations' outputs."""
    if task == "rerank":
        return float(np.abs(np.asarray(ours) - np.asarray(theirs)).max())
    worst = float(np.abs(ours["dense_vecs"].astype(np.float32) - theirs["dense_vecs"].astype(np.float32)).max())
    if ours["lexical_weights"] is not None:
        for a, b in zip(ours["lexical_weights"], theirs["lexical_weights"]):
            for key in set(a) | set(b):
                worst = max(worst, abs(float(a.get(key, 0)) - float(b.get(key, 0))))
        for a, b in zip(ours["colbert_vecs"], theirs["colbert_vecs"]):
            worst = max(worst, float("inf") if a.shape != b.shape else float(np.abs(a - b).max()))
    return worst


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models (hidden 32, vocab 30522) on the CPU")
    parser.add_argument("--docs", type=int, help="documents to encode / pairs to score (default 4096; smoke 300)")
    parser.add_argument("--max-length", type=int, help="tokens per document / pair (default 512; smoke 64)")
    parser.add_argument("--vocab", type=int, help="vocabulary size (default 250002; smoke 30522)")
    parser.add_argument("--fp16", action="store_true", help="use_fp16 for both implementations (GPU)")
    parser.add_argument("--tasks", default="m3_dense,m3_all,rerank")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (smoke: 1, steadier on shared cores)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per implementation; the best counts")
    parser.add_argument("--packing", choices=("auto", "on", "off"), default="auto",
                        help="studio's M3 encoder: batches packed to their real tokens (on), padded (off), or the "
                        "default for the device (auto: packed on CPUs, padded on GPUs)")
    args = parser.parse_args(argv)
    if args.packing != "auto":
        os.environ["STUDIO_PACKED"] = "1" if args.packing == "on" else "0"
    docs = args.docs or (300 if args.smoke else 4096)
    max_length = args.max_length or (64 if args.smoke else 512)
    vocab = args.vocab or (30522 if args.smoke else 250002)
    size = TINY if args.smoke else LARGE

    import logging

    import torch

    logging.basicConfig(level=logging.WARNING)
    set_threads(args.threads or (1 if args.smoke else None))
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(0)
    scale = max_length / 512
    corpus = [synthetic_text(rng, n, vocab) for n in lengths(rng, docs, 240 * scale, 8, int(700 * scale))]
    queries = [synthetic_text(rng, n, vocab) for n in lengths(rng, docs, 14, 3, 40)]
    pairs = [[q, d] for q, d in zip(queries, corpus)]
    tasks = args.tasks.split(",")
    meta = {"bench": "encode_throughput", "device": device_name(), "precision": "fp16" if args.fp16 else "fp32",
            "model": ("tiny XLM-R (hidden 32, 2 layers)" if args.smoke else "XLM-R large (random init)")
            + f", vocab {vocab}", "items": docs, "max_length": max_length, "packing": args.packing}

    from FlagEmbedding import BGEM3FlagModel, FlagReranker
    from transformers import AutoTokenizer

    from studio.retrieval.fast_encode import CrossEncoderScorer, M3Encoder

    def make(task: str, impl: str):
        """(call taking the items, the items) for one task and implementation; loads the model."""
        if task == "rerank":
            model = (FlagReranker(str(reranker), use_fp16=args.fp16, devices=device) if impl == "flagembedding"
                     else CrossEncoderScorer(reranker, use_fp16=args.fp16, device=device))
            options = {"max_length": max_length} | ({"batch_size": 128} if impl == "flagembedding" else {})
            return (lambda items: model.compute_score(items, **options)), pairs
        model = (BGEM3FlagModel(str(m3), use_fp16=args.fp16, devices=device) if impl == "flagembedding"
                 else M3Encoder(m3, use_fp16=args.fp16, device=device))
        full = task == "m3_all"
        options = {"max_length": max_length, "return_dense": True, "return_sparse": full,
                   "return_colbert_vecs": full}
        if impl == "flagembedding":
            options["batch_size"] = 256
        return (lambda items: model.encode_corpus(items, **options)), corpus

    with tempfile.TemporaryDirectory(prefix="encode-bench-") as tmp:
        with contextlib.redirect_stdout(sys.stderr):
            m3 = build_m3(Path(tmp) / "m3", size, vocab)
            reranker = build_reranker(Path(tmp) / "reranker", size, vocab) if "rerank" in tasks else None
        encoded = AutoTokenizer.from_pretrained(str(m3))(corpus, truncation=True, max_length=max_length)
        doc_tokens = sum(len(ids) for ids in encoded["input_ids"])
        for task in tasks:
            outputs, records = {}, {}
            for impl in ("studio", "flagembedding"):
                with contextlib.redirect_stdout(sys.stderr):
                    fn, items = make(task, impl)
                    fn(items[:16])  # warm-up: kernels, allocator
                outputs[impl], seconds, memory = timed(fn, items, args.repeats)
                per_s = len(items) / seconds
                records[impl] = {**meta, "task": task, "impl": impl, "sec": round(seconds, 3),
                                 ("pairs_per_s" if task == "rerank" else "docs_per_s"): round(per_s, 1),
                                 "peak_mem_gb": round(memory.peak / 2**30, 4), "mem_measure": memory.what}
                if task != "rerank":
                    records[impl]["tokens_per_s"] = round(doc_tokens / seconds)
                emit(records[impl])
                del fn
                gc.collect()
            key = "pairs_per_s" if task == "rerank" else "docs_per_s"
            emit({"bench": "encode_throughput", "task": task, "compare": "studio/flagembedding",
                  "ratio_per_s": round(records["studio"][key] / records["flagembedding"][key], 3),
                  "max_abs_diff": float(f"{max_difference(task, outputs['studio'], outputs['flagembedding']):.3g}"),
                  "mem_ratio": ratio(records["studio"]["peak_mem_gb"], records["flagembedding"]["peak_mem_gb"])})
    emit({"bench": "encode_throughput", "versions": versions(),
          "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})


if __name__ == "__main__":
    main()
