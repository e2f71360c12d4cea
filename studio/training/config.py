"""What a training job is asked to do (`config.json`) and the files it leaves in its job folder.

The job folder is the contract between the app and the worker process:

    jobs/<id>/config.json     TrainConfig, written by the app before the worker starts
    jobs/<id>/metrics.jsonl   one JSON object per logged step (see METRIC_FIELDS), appended by the worker
    jobs/<id>/log.txt         the worker's stdout and stderr
    jobs/<id>/heartbeat       rewritten every few seconds while the worker lives: "<pid> <unix time>"
    jobs/<id>/cancel          created by the app to ask the worker to stop after the current step
    jobs/<id>/checkpoints/    Hugging Face Trainer checkpoints (checkpoint-<step>/), used to resume
    jobs/<id>/result.json     written once at the end: {"status", "model_dir", "error", "final"}

Exit codes: 0 succeeded, 2 failed with an explained error in result.json, 3 cancelled; anything else is a crash.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

TASKS = ("embedder", "reranker")
METHODS = ("full", "lora")
ARCHITECTURES = ("auto", "m3", "encoder")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 2, 3
# Keys a metrics.jsonl line may carry; step and time are always present.
METRIC_FIELDS = ("step", "total_steps", "epoch", "loss", "eval_loss", "lr", "grad_norm", "samples_per_s",
                 "gpu_mem_gb", "eta_s", "time")


@dataclass
class TrainConfig:
    """One fine-tuning run. The defaults are the recipe measured by bench/quality.py (bench/RESULTS.md)."""

    task: str                      # embedder | reranker
    base: str                      # model folder, hub id, or "default" (the embedded all-MiniLM-L6-v2)
    train: str                     # FlagEmbedding JSONL from `studio export triplets`
    name: str                      # output folder name under models/
    output_dir: str                # models/<name>, resolved by the app
    valid: str | None = None       # validation JSONL (same format); enables eval loss
    method: str = "full"           # full | lora
    architecture: str = "auto"     # auto: m3 when the base has colbert_linear.pt / sparse_linear.pt
    epochs: float = 1.0
    max_steps: int = -1            # > 0 overrides epochs
    batch_size: int = 32           # queries per device per step (more in-batch negatives)
    lr: float | None = None        # None: 5e-5 full, 1e-4 LoRA
    group_size: int = 2            # 1 positive + (group_size - 1) hard negatives per query, drawn anew each epoch
    query_max_len: int = 128
    passage_max_len: int | None = None  # None: the base's max_seq_length (sentence_bert_config.json), at most 512
    temperature: float = 0.05      # all-MiniLM-L6-v2's own (scale 20); 0.02 (BGE's) lost on both man-page sets
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: ["query", "key", "value"])
    freeze_embeddings: bool = False
    freeze_layers: int = 0         # freeze the lowest N transformer layers
    gradient_checkpointing: bool = False
    precision: str = "auto"        # auto: bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU
    unified: bool = True           # m3: dense + sparse + ColBERT together
    self_distill: bool = True      # m3: self-knowledge distillation across the three heads
    distill: str = "auto"          # auto: use pos_scores/neg_scores when the training file has them; on | off
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 50
    resume: bool = False           # continue from the newest checkpoint in the job folder
    extra: dict = field(default_factory=dict)

    @classmethod
    def default(cls, name: str):
        """The default of one field: the CLI and the Train tab show these, so the recipe lives in one place."""
        spec = cls.__dataclass_fields__[name]
        return spec.default_factory() if callable(spec.default_factory) else spec.default

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-4 if self.method == "lora" else 5e-5)

    def save(self, job_dir: Path) -> Path:
        path = Path(job_dir) / "config.json"
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, job_dir: Path) -> "TrainConfig":
        data = json.loads((Path(job_dir) / "config.json").read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def read_metrics(job_dir: Path) -> list[dict]:
    """Every complete line of metrics.jsonl (a line being written right now is skipped)."""
    path = Path(job_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def passage_max_len(config: TrainConfig, base: Path, cap: int = 512) -> int:
    """The passage length to train with: as asked, or the base's own max_seq_length (at most `cap`).

    Training on longer passages than the model reads at inference is wasted compute and a train/serve mismatch:
    all-MiniLM-L6-v2 encodes 256 tokens, so training it on 512 doubled the cost of every step for nothing.
    """
    if config.passage_max_len is not None:
        return config.passage_max_len
    try:
        seq = json.loads((base / "sentence_bert_config.json").read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        seq = None
    return min(int(seq), cap) if isinstance(seq, int) and seq > 0 else cap


# Fewer optimizer steps than this and a fine-tune barely moves the model: the Train tab says so before it starts.
FEW_STEPS = 20


def optimizer_steps(train_lines: int, batch_size: int, epochs: float, max_steps: int = -1) -> int:
    """The optimizer steps a job takes, counted as Transformers counts them (batches per epoch rounded up)."""
    if max_steps and max_steps > 0:
        return int(max_steps)
    return math.ceil(math.ceil(train_lines / max(int(batch_size), 1)) * float(epochs))


def too_few_steps(train_file: str | Path | None, batch_size: int, epochs: float,
                  max_steps: int = -1) -> tuple[int, int] | None:
    """(optimizer steps, training lines) when a job on `train_file` would take fewer than FEW_STEPS steps; None when
    it takes enough, or when the file or the settings cannot tell."""
    lines = count_lines(train_file) if train_file else None
    if not lines or batch_size < 1 or epochs <= 0:
        return None
    steps = optimizer_steps(lines, batch_size, epochs, max_steps)
    return (steps, lines) if steps < FEW_STEPS else None


def count_lines(path: str | Path) -> int | None:
    """Non-empty lines of a training file (one query each), or None when there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except (OSError, UnicodeDecodeError):
        return None
