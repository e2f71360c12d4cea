"""`studio recipe serve` against the libraries in-process: requests/s and p50/p95 latency, fp32 and int8.

A recipe ``default+bm25>RERANKER`` (the embedded all-MiniLM-L6-v2, BM25, reciprocal-rank fusion, a reranker over
the top 30) is served by uvicorn on a free local port, holding the bundled demo corpus (95 documents), and called
over HTTP by one keep-alive client, one request at a time:

* ``/v1/embeddings`` with 1 and 32 texts, against ``SentenceTransformer.encode(texts, normalize_embeddings=True)``;
* ``/rerank`` with 1 and 32 texts, against ``CrossEncoder.predict(pairs)``;
* ``/search`` (one query a request, k = 10; each reranks 30 pairs), against the runtime's own ``Index.search``
  in-process.

The same texts go to both sides (demo queries for batch 1, demo documents for batch 32). The in-process side loads
its own models (quantised the same way for int8). ``ratio`` is the service's requests/s over the in-process
calls/s: what HTTP, JSON and the service's bookkeeping (token counts for ``usage``/``truncated``) cost.

No cross-encoder is on disk and nothing can be downloaded, so the reranker is MiniLM-L6-shaped: the embedded
model's encoder with an untrained one-logit head (real size and speed, meaningless scores); ``--smoke`` uses a
tiny random one (hidden 32, 2 layers) and a few requests (under 30 s).

    python bench/recipe_serve.py --smoke
    python bench/recipe_serve.py --out bench/results/recipe-serve-$(date +%F).jsonl

Prints one JSON line per (route, batch, precision) and a last line with versions, threads and date.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = sys.stdout
WARMUP = 2
SMOKE_DOCUMENTS, SMOKE_CHARS = 30, 60  # --smoke: the first 30 demo documents, cut to 60 characters


def emit(record: dict, out_file: Path | None) -> None:
    line = json.dumps(record, ensure_ascii=False)
    OUT.write(line + "\n")
    OUT.flush()
    if out_file:
        with out_file.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


def build_reranker(folder: Path, tiny: bool) -> Path:
    """A cross-encoder folder: MiniLM-L6's encoder with a fresh one-logit head, or a tiny random BERT."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from studio.config import embedded_model_path

    source = str(embedded_model_path())
    torch.manual_seed(0)
    if tiny:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = BertForSequenceClassification(BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, num_labels=1))
    else:
        tokenizer = AutoTokenizer.from_pretrained(source)
        with contextlib.redirect_stdout(sys.stderr):
            model = BertForSequenceClassification.from_pretrained(source, num_labels=1)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def timed(call, payloads: list, warmup: int = WARMUP) -> list[float]:
    """Milliseconds of `call(payload)` for each payload (after `warmup` untimed calls)."""
    for payload in payloads[:warmup]:
        call(payload)
    out = []
    for payload in payloads:
        t0 = time.perf_counter()
        call(payload)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def record(route: str, batch: int, precision: str, served: list[float], local: list[float]) -> dict:
    p50, p95 = percentiles(served)
    l50, l95 = percentiles(local)
    rps, lps = 1000 / float(np.mean(served)), 1000 / float(np.mean(local))
    return {"route": route, "batch": batch, "precision": precision, "requests": len(served),
            "service_rps": round(rps, 2), "service_p50_ms": round(p50, 2), "service_p95_ms": round(p95, 2),
            "inprocess_cps": round(lps, 2), "inprocess_p50_ms": round(l50, 2), "inprocess_p95_ms": round(l95, 2),
            "ratio": round(rps / lps, 3), "items_per_s": round(rps * batch, 1)}


def run(args) -> None:
    import httpx
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from studio.config import DEMO_DIR, embedded_model_path
    from studio.recipe import build_recipe, write_recipe
    from studio.recipe_runtime import _identity, _int8, document_text
    from studio.serving.service import build_service

    if args.threads:
        torch.set_num_threads(args.threads)
    out_file = Path(args.out) if args.out else None
    docs = [json.loads(line) for line in (DEMO_DIR / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in (DEMO_DIR / "queries.jsonl").open(encoding="utf-8")]
    if args.smoke:
        global WARMUP
        WARMUP = 1
        docs = [{**d, "text": d["text"][:SMOKE_CHARS]} for d in docs[:SMOKE_DOCUMENTS]]
    texts = [document_text({"title": d.get("title"), "text": d["text"]}) for d in docs]
    n1, n32 = (4, 1) if args.smoke else (args.requests, max(args.requests // 6, 10))
    one = [[queries[i % len(queries)]] for i in range(n1)]
    many = [[texts[(i * 32 + j) % len(texts)] for j in range(32)] for i in range(n32)]
    with tempfile.TemporaryDirectory() as tmp:
        reranker = build_reranker(Path(tmp) / "ce", args.smoke)
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        recipe = write_recipe(build_recipe(f"default+bm25>{reranker}", rerank_top=30), Path(tmp) / "recipe")
        for precision in ("fp32", "int8"):
            int8 = precision == "int8"
            with contextlib.redirect_stdout(sys.stderr):
                service = build_service(recipe.parent, port=free_port(), int8=int8, documents=corpus)
                service.notes.clear()
                embedder = SentenceTransformer(str(embedded_model_path()), device="cpu")
                cross = CrossEncoder(str(reranker), max_length=512, device="cpu")
                if int8:
                    embedder, cross = _int8(embedder), _int8(cross)
            server = service.server(log_level="warning")
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.02)
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=120) as http:
                    def post(route):
                        def call(body):
                            response = http.post(route, json=body)
                            response.raise_for_status()
                        return call

                    for batch, payloads in ((1, one), (32, many)):
                        served = timed(lambda t: post("/v1/embeddings")({"input": t}), payloads)
                        local = timed(lambda t: embedder.encode(t, batch_size=64, normalize_embeddings=True,
                                                                show_progress_bar=False), payloads)
                        emit(record("/v1/embeddings", batch, precision, served, local), out_file)
                        query = queries[0]
                        served = timed(lambda t: post("/rerank")({"query": query, "texts": t, "raw_scores": True}),
                                       payloads)
                        local = timed(lambda t: cross.predict([(query, x) for x in t], activation_fn=_identity,
                                                              show_progress_bar=False), payloads)
                        emit(record("/rerank", batch, precision, served, local), out_file)
                    searches = [q[0] for q in one[:max(len(one) // 2, 4)]]  # each reranks 30 pairs
                    served = timed(lambda q: post("/search")({"query": q, "k": 10}), searches)
                    local = timed(lambda q: service.index.search(q, 10), searches)
                    emit(record("/search", 1, precision, served, local), out_file)
            finally:
                server.should_exit = True
                thread.join(timeout=10)
    emit({"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
          "cpu": platform.processor() or platform.machine(), "smoke": bool(args.smoke),
          "reranker": "tiny random BERT" if args.smoke else "MiniLM-L6 encoder + untrained head",
          "documents": len(docs), "rerank_top": 30, "date": datetime.date.today().isoformat()}, out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny reranker, a few requests (under 30 s)")
    parser.add_argument("--requests", type=int, default=60,
                        help="batch-1 requests per route (batch 32: a sixth, at least 10; /search: half)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
