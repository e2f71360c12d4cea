"""BGE-M3 fine-tuning throughput: FlagEmbedding's own M3 runner vs the studio's worker path, same config and seed.

The model is BGE-M3's architecture with random weights (XLM-R large: 24 layers, hidden 1024, vocab 250002, plus
colbert_linear.pt and sparse_linear.pt) and a word-level tokenizer of the same vocabulary, so nothing is
downloaded. The data are synthetic FlagEmbedding JSONL lines with a realistic length spread (passages: lognormal,
median 240 tokens, cut at passage_max_len). Both runs train unified (dense + sparse + ColBERT) with
self-distillation unless --dense-only. Dropout is 0 by default so the two loss curves can be compared step by step
(with dropout the two paths agree in distribution only); --dropout 0.1 gives BGE-M3's setting.

Prints JSON lines: one per implementation, then one comparing them.

    python bench/train_throughput.py --smoke                          # tiny model, CPU, under a minute
    python bench/train_throughput.py --bf16 --batch 8 --group 8      # GPU: the issue's reference setting
    python bench/train_throughput.py --bf16 --batch 16 --group 8     # where FlagEmbedding ran out of memory
    python bench/train_throughput.py --bf16 --batch 32 --group 8 --impl studio --checkpointing
    python bench/train_throughput.py --bf16 --batch 8 --group 8 --packing on  # GPU: packed batches, varlen attention

sec_per_step: median wall time of the timed steps (data loading, forward, backward, optimizer; after --warmup
steps); the median shrugs off other processes' bursts on shared machines.
tokens_per_s: real (non-pad) query + passage tokens. mfu: 6 × non-embedding parameters × real tokens per second
over the GPU's dense peak (bf16 or fp32 without TF32) from PEAK_TFLOPS; null where unknown (CPUs).
peak_mem_gb: torch.cuda.max_memory_allocated on GPUs; on CPUs the peak rise of the process's resident memory
(psutil, sampled every 5 ms) over its level before the run, which includes memory the allocator keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Dense peak TFLOPS by GPU name: (bf16, fp32). First match wins.
PEAK_TFLOPS = (("H200", 989.0, 67.0), ("H100 PCIe", 756.0, 51.0), ("H100", 989.0, 67.0), ("A100", 312.0, 19.5),
               ("L40S", 362.0, 91.6), ("L4", 121.0, 30.3))
LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
         "max_position_embeddings": 8194}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 514}
OUT = sys.stdout


def emit(record: dict) -> None:
    """One JSON line on the real stdout (library prints go to stderr while the runs are going)."""
    OUT.write(json.dumps(record, ensure_ascii=False) + "\n")
    OUT.flush()


# --- model, tokenizer and data -------------------------------------------------------------------------------------
def build_tokenizer(folder: Path, vocab: int):
    """A word-level tokenizer over ``w4 … w{vocab-2}`` with XLM-R's special ids (<s>=0, <pad>=1, </s>=2, <unk>=3)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{f"w{i}": i for i in range(4, vocab - 1)},
             "<mask>": vocab - 1}
    core = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                        special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                        sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                                        model_max_length=8192, model_input_names=["input_ids", "attention_mask"])
    tokenizer.save_pretrained(folder)
    return tokenizer


def xlmr_config(size: dict, vocab: int, dropout: float, **extra):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(vocab_size=vocab, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1,
                            bos_token_id=0, eos_token_id=2, hidden_dropout_prob=dropout,
                            attention_probs_dropout_prob=dropout, **size, **extra)


def build_m3(folder: Path, size: dict, vocab: int, dropout: float = 0.0, seed: int = 0) -> Path:
    """BGE-M3's layout with random weights: XLMRobertaModel + colbert_linear.pt + sparse_linear.pt + tokenizer."""
    import torch
    from transformers import XLMRobertaModel

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder, vocab)
    torch.manual_seed(seed)
    model = XLMRobertaModel(xlmr_config(size, vocab, dropout))
    model.save_pretrained(folder)
    hidden = size["hidden_size"]
    torch.save(torch.nn.Linear(hidden, hidden).state_dict(), folder / "colbert_linear.pt")
    torch.save(torch.nn.Linear(hidden, 1).state_dict(), folder / "sparse_linear.pt")
    return folder


def lengths(rng, n: int, median: float, low: int, high: int, sigma: float = 0.6) -> list[int]:
    """Lognormal word counts, clipped: many short texts, a long tail."""
    import numpy as np

    return np.clip(rng.lognormal(np.log(median), sigma, n), low, high).astype(int).tolist()


def synthetic_text(rng, words: int, vocab: int) -> str:
    """`words` tokens drawn Zipf-like over the vocabulary, so frequent tokens repeat as in real text."""
    ids = 4 + (rng.zipf(1.15, words) - 1) % (vocab - 5)
    return " ".join(f"w{i}" for i in ids)


def write_train_file(path: Path, lines: int, group: int, vocab: int, query_median: float, passage_median: float,
                     passage_cap: int, seed: int = 0) -> Path:
    """FlagEmbedding JSONL: {"query", "pos": [1 passage], "neg": [group - 1 passages]} per line."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            query = synthetic_text(rng, lengths(rng, 1, query_median, 3, 60)[0], vocab)
            passages = [synthetic_text(rng, n, vocab) for n in lengths(rng, group, passage_median, 8, passage_cap)]
            f.write(json.dumps({"query": query, "pos": passages[:1], "neg": passages[1:]}) + "\n")
    return path


# --- measuring -----------------------------------------------------------------------------------------------------
def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def peak_tflops(name: str, bf16: bool) -> float | None:
    for key, half, single in PEAK_TFLOPS:
        if key in name:
            return half if bf16 else single
    return None


class MemoryPeak:
    """Peak memory of a block: CUDA allocated bytes on GPUs, resident-set rise (sampled) on CPUs."""

    def __init__(self):
        import torch

        self.cuda = torch.cuda.is_available()
        self.peak, self._stop = 0, threading.Event()

    def __enter__(self) -> Self:
        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            import psutil

            self.process = psutil.Process()
            self.base = self.process.memory_info().rss
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss - self.base)

    def __exit__(self, *exc) -> None:
        import torch

        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self._stop.set()
            self.thread.join()

    @property
    def what(self) -> str:
        return ("torch.cuda.max_memory_allocated" if self.cuda
                else "peak rise of resident memory (psutil, sampled every 5 ms)")


def count_tokens(trainer, record: list) -> None:
    """Append (real tokens, padded tokens, batch lengths) for every batch the trainer trains on.

    Counted at the training step, not in the collator: with DataLoader workers the collator runs in other processes.
    """
    train_step = trainer.training_step

    def training_step(model, inputs, *args, **kwargs):
        q, p = inputs["queries"]["attention_mask"], inputs["passages"]["attention_mask"]
        record.append((int(q.sum() + p.sum()), q.numel() + p.numel(), q.sum(1).tolist(), p.sum(1).tolist()))
        return train_step(model, inputs, *args, **kwargs)

    trainer.training_step = training_step


def step_meter():
    """A TrainerCallback timing every step (end to end, GPU synchronised) and keeping each logged loss."""
    import torch
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []
            self.losses: dict[int, float] = {}

        def _mark(self):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.marks.append(time.perf_counter())

        def on_train_begin(self, args, state, control, **kwargs):
            self._mark()

        def on_step_end(self, args, state, control, **kwargs):
            self._mark()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses[state.global_step] = logs["loss"]

    return Meter()


def profiler(start: int, steps: int, path: Path):
    """A TrainerCallback profiling steps start+1 … start+steps (torch.profiler) into a text table at `path`."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    class Profile(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == start:
                activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
                self.prof = profile(activities=activities)
                self.prof.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == start + steps and hasattr(self, "prof"):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.prof.__exit__(None, None, None)
                averages = self.prof.key_averages()
                device_key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
                path.write_text(f"{steps} steps\n\nby {device_key}\n" + averages.table(sort_by=device_key, row_limit=40)
                                + "\n\nby cpu_time_total\n" + averages.table(sort_by="cpu_time_total", row_limit=25))

    return Profile()


def encoder_tokens(record, budget: int | None, packed: bool = False) -> float:
    """Tokens the encoder processes per batch, padding included: whole batches, the studio's length chunks
    (queries and passages pooled into one set of chunks), or only the real tokens when `packed`."""
    from studio.training.fast_models import length_chunks

    if packed:
        return sum(r[0] for r in record) / len(record)
    if budget is None:
        return sum(r[1] for r in record) / len(record)
    return sum(sum(len(rows) * n for rows, n in length_chunks(r[2] + r[3], budget)) for r in record) / len(record)


def count_passes(model) -> list[int]:
    """A one-item list counting the transformer's forward passes (each is a full set of kernel launches on a GPU)."""
    passes = [0]

    def hook(*_):
        passes[0] += 1

    model.model.register_forward_hook(hook)
    return passes


# --- one run -------------------------------------------------------------------------------------------------------
def build_runner(impl: str, job: Path, config):
    """The studio worker's runner, or FlagEmbedding's EncoderOnlyEmbedderM3Runner with the same arguments."""
    from studio.training import planning, worker

    plan = planning.make_plan(job, config)
    if impl == "studio":
        return worker.build_runner(job, config, plan)
    from FlagEmbedding.finetune.embedder.encoder_only.m3 import (
        EncoderOnlyEmbedderM3Runner,
    )

    from studio.training.embedder import argument_classes

    kwargs = planning.argument_kwargs(job, config, plan)
    return EncoderOnlyEmbedderM3Runner(*(cls(**kw) for cls, kw in zip(argument_classes(plan.architecture), kwargs)))


def run(impl: str, root: Path, config, args, meta: dict) -> dict:
    """Train `args.warmup + args.steps` steps with one implementation; its JSON record."""
    import torch

    from studio.training.fast_models import StudioM3Model, packing_enabled

    job = root / impl
    job.mkdir()
    record: dict = {"bench": "train_throughput", "impl": impl, **meta}
    tokens: list = []
    try:
        with MemoryPeak() as memory, contextlib.redirect_stdout(sys.stderr):
            runner = build_runner(impl, job, config)
            trainer = runner.trainer
            count_tokens(trainer, tokens)
            passes = count_passes(runner.model)
            meter = step_meter()
            trainer.add_callback(meter)
            if args.profile:
                trainer.add_callback(profiler(args.warmup, 3, Path(f"{args.profile}.{impl}.txt")))
            trainer.train()
            model = runner.model
            params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
            device = next(model.parameters()).device
            budget = model.chunk_budget(device) if isinstance(model, StudioM3Model) else None
            packed = isinstance(model, StudioM3Model) and packing_enabled(model.model, device)
            del runner, trainer, model
    except torch.cuda.OutOfMemoryError as exc:
        gc.collect()
        torch.cuda.empty_cache()
        return {**record, "error": f"out of memory: {str(exc).splitlines()[0][:160]}"}
    gc.collect()
    steps = [b - a for a, b in zip(meter.marks, meter.marks[1:])][args.warmup:]
    timed = tokens[args.warmup:args.warmup + len(steps)]
    sec = statistics.median(steps)
    real = sum(t[0] for t in timed) / len(timed) / sec
    peak = peak_tflops(meta["device"], args.bf16)
    return {**record, "non_embedding_params": params, "steps_timed": len(steps), "sec_per_step": round(sec, 4),
            "queries_per_s": round(args.batch / sec, 2), "tokens_per_s": round(real),
            "real_tokens_per_step": round(sum(t[0] for t in timed) / len(timed)),
            "packed": packed, "encoder_tokens_per_step": round(encoder_tokens(timed, budget, packed)),
            "token_budget": None if packed else budget,
            "encoder_passes_per_step": round(passes[0] / len(tokens), 2),
            "mfu": round(6 * params * real / (peak * 1e12), 4) if peak else None,
            "peak_mem_gb": round(memory.peak / 2**30, 4), "mem_measure": memory.what,
            "loss_at": {str(k): round(v, 6) for k, v in sorted(meter.losses.items())}}


def set_threads(threads: int | None) -> None:
    """Fix torch's CPU threads: on a busy 2-core machine two OpenMP threads mostly wait for each other."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def ratio(studio_gb: float, flag_gb: float) -> float | None:
    """studio / FlagEmbedding peak memory; None when either is below 1 MiB (too small for a sampled RSS rise)."""
    if min(studio_gb, flag_gb) < 2**-10:
        return None
    return round(studio_gb / flag_gb, 3)


def versions() -> dict:
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "FlagEmbedding", "peft", "datasets"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def compare(results: dict) -> dict:
    """studio / FlagEmbedding ratios and how far the loss curves are apart."""
    studio, flag = results.get("studio", {}), results.get("flagembedding", {})
    out: dict = {"bench": "train_throughput", "compare": "studio/flagembedding"}
    if "sec_per_step" in studio and "sec_per_step" in flag:
        shared = sorted(set(studio["loss_at"]) & set(flag["loss_at"]), key=int)
        rel = {s: abs(studio["loss_at"][s] - flag["loss_at"][s]) / max(abs(flag["loss_at"][s]), 1e-12)
               for s in shared}
        out.update(ratio_queries_per_s=round(studio["queries_per_s"] / flag["queries_per_s"], 3),
                   ratio_tokens_per_s=round(studio["tokens_per_s"] / flag["tokens_per_s"], 3),
                   mem_ratio=ratio(studio["peak_mem_gb"], flag["peak_mem_gb"]),
                   N=int(shared[-1]), loss_rel_diff_at_N=float(f"{rel[shared[-1]]:.3g}"),
                   loss_rel_diff_max=float(f"{max(rel.values()):.3g}"))
    else:
        out["note"] = "no ratio: " + "; ".join(f"{k}: {v.get('error', 'not run')}" for k, v in
                                               (("studio", studio), ("flagembedding", flag)) if "error" in v or not v)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model (hidden 32, vocab 30522) on the CPU")
    parser.add_argument("--batch", type=int, help="queries per step (default 8; smoke 4)")
    parser.add_argument("--group", type=int, help="passages per query (default 8; smoke 4)")
    parser.add_argument("--steps", type=int, help="timed steps (default 20; smoke 8)")
    parser.add_argument("--warmup", type=int, help="untimed first steps (default 3; smoke 2)")
    parser.add_argument("--query-len", type=int, help="query_max_len (default 128; smoke 16)")
    parser.add_argument("--passage-len", type=int, help="passage_max_len (default 512; smoke 64)")
    parser.add_argument("--vocab", type=int, help="vocabulary size (default 250002; smoke 30522)")
    parser.add_argument("--dense-only", action="store_true", help="dense loss only (no sparse/ColBERT heads)")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    parser.add_argument("--dropout", type=float, default=0.0, help="hidden and attention dropout (BGE-M3: 0.1)")
    parser.add_argument("--checkpointing", action="store_true",
                        help="activation (gradient) checkpointing: recompute each layer in backward, for big batches")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=JSON",
                        help="a FlagEmbedding / TrainingArguments field for both runs, e.g. dataloader_num_workers=2")
    parser.add_argument("--profile", metavar="PREFIX", help="write a torch.profiler table of 3 steps after the "
                        "warm-up to PREFIX.<impl>.txt")
    parser.add_argument("--impl", choices=("both", "studio", "flagembedding"), default="both")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (smoke: 1, steadier on shared cores)")
    parser.add_argument("--packing", choices=("auto", "on", "off"), default="auto",
                        help="studio: encode each batch's real tokens in one pass (on), in length chunks (off), or "
                        "the studio's default for the device (auto: packed on CPUs, chunks on GPUs)")
    parser.add_argument("--token-budget", type=int, help="studio: padded tokens per encoder call (default: the "
                        "model's, 16384 on GPUs; smoke 256 so that batches are split)")
    args = parser.parse_args(argv)
    if args.smoke:
        defaults = {"batch": 4, "group": 4, "steps": 8, "warmup": 2, "query_len": 16, "passage_len": 64,
                    "vocab": 30522, "token_budget": 256, "threads": 1}
    else:
        defaults = {"batch": 8, "group": 8, "steps": 20, "warmup": 3, "query_len": 128, "passage_len": 512,
                    "vocab": 250002}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def run_apart(argv: list[str], impl: str) -> dict:
    """One implementation in a child process, so that each starts with an empty GPU and a fresh allocator."""
    import subprocess

    # Expandable segments: less fragmentation, for both alike (FlagEmbedding's 15 GiB sparse tensor needs it at
    # batch 8 on an 80 GB H100).
    env = {**os.environ, "PYTORCH_CUDA_ALLOC_CONF": os.environ.get("PYTORCH_CUDA_ALLOC_CONF",
                                                                   "expandable_segments:True")}
    done = subprocess.run([sys.executable, __file__, *argv, "--impl", impl], stdout=subprocess.PIPE, text=True,
                          check=False, env=env)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"bench": "train_throughput", "impl": impl, "error": f"child exited with {done.returncode}"}
    return lines[-1]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.impl == "both":
        results = {}
        for impl in ("flagembedding", "studio"):
            results[impl] = run_apart(argv, impl)
            emit(results[impl])
        emit({**compare(results), "versions": versions(),
              "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})
        return
    import logging

    logging.basicConfig(level=logging.WARNING)  # FlagEmbedding's runner would otherwise log at INFO
    set_threads(args.threads)
    if args.packing != "auto":
        os.environ["STUDIO_PACKED"] = "1" if args.packing == "on" else "0"
    from studio.training.config import TrainConfig
    from studio.training.fast_models import StudioM3Model

    StudioM3Model.token_budget = args.token_budget

    size = TINY if args.smoke else LARGE
    scale = args.passage_len / 512
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            base = build_m3(root / "model", size, args.vocab, args.dropout)
        train = write_train_file(root / "train.jsonl", (args.warmup + args.steps + 1) * args.batch, args.group,
                                 args.vocab, query_median=14 * min(1.0, args.query_len / 128),
                                 passage_median=240 * scale, passage_cap=int(700 * scale))
        config = TrainConfig(task="embedder", base=str(base), train=str(train), name="bench", output_dir="",
                             architecture="m3", max_steps=args.warmup + args.steps, batch_size=args.batch,
                             group_size=args.group, query_max_len=args.query_len, passage_max_len=args.passage_len,
                             lr=args.lr, warmup_ratio=0.0, precision="bf16" if args.bf16 else "fp32",
                             unified=not args.dense_only, self_distill=not args.dense_only,
                             gradient_checkpointing=args.checkpointing,
                             save_steps=10**6, extra={"save_strategy": "no", **{
                                 key: json.loads(value) for key, value in (e.split("=", 1) for e in args.extra)}})
        meta = {"device": device_name(), "model": ("tiny XLM-R (hidden 32, 2 layers)" if args.smoke else
                                                   "XLM-R large (BGE-M3 architecture, random init)")
                + f", vocab {args.vocab}, M3 heads", "precision": config.precision,
                "mode": "dense only" if args.dense_only else "unified + self-distillation", "batch": args.batch,
                "group": args.group, "query_max_len": args.query_len, "passage_max_len": args.passage_len,
                "dropout": args.dropout, "checkpointing": args.checkpointing, "packing": args.packing,
                "extra": args.extra,
                "setup_s": round(time.perf_counter() - started, 1)}
        emit(run(args.impl, root, config, args, meta))


if __name__ == "__main__":
    main()
