"""What a training job is asked to do (`config.json`) and the files it leaves in its job folder.

The job folder is the contract between the app and the worker process. It is ``jobs/<id:05d>-<name>`` (with
``-2``, ``-3``... when another database's job took that name first); the jobs row stores it, nothing recomputes it:

    <job folder>/config.json     TrainConfig, written by the app before the worker starts
    <job folder>/metrics.jsonl   one JSON object per logged step (see METRIC_FIELDS), appended by the worker
    <job folder>/log.txt         the worker's stdout and stderr
    <job folder>/heartbeat       rewritten every few seconds while the worker lives: "<pid> <unix time>"
    <job folder>/phase           what the worker is doing now, one word of PHASES (the page shows it before step 1)
    <job folder>/cancel          created by the app to ask the worker to stop: it finishes the current optimizer
                                 step, saves a checkpoint and exits (SIGTERM to the worker does the same)
    <job folder>/checkpoints/    Hugging Face Trainer checkpoints (checkpoint-<step>/: weights, optimizer,
                                 scheduler, RNG states, trainer state), every save_steps steps and every save_every
                                 minutes, the newest two kept; resume continues from the newest complete one
    <job folder>/result.json     written once at the end: {"status", "model_dir", "error", "final"}

Exit codes: 0 succeeded, 2 failed with an explained error in result.json, 3 cancelled; anything else is a crash.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from studio.errors import InputError, StudioError
from studio.training import settings as table
from studio.training.settings import default_factory as _d

# Read from the one field table (studio/training/settings.py): choices, and the settings each rule applies to.
TASKS, METHODS = table.choices("task"), table.choices("method")
ARCHITECTURES, PRECISIONS, DISTILL = table.choices("architecture"), table.choices("precision"), table.choices("distill")
CHOICES = tuple((s.name, s.choices) for s in table.SETTINGS if s.choices)
# Whole-number settings of at least 1 (passage_max_len may also be None: the base's own length).
COUNTS = tuple(s.name for s in table.with_rule("count"))
# Number settings with the range they must fall in: (field, lowest, highest, highest allowed itself).
RANGES = tuple((s.name, s.low, s.high, s.high_ok) for s in table.with_rule("range"))
# Whole-number settings of at least 0.
NATURALS = tuple(s.name for s in table.with_rule("natural"))
# What the worker is doing, written to <job folder>/phase in this order (the Train tab words each one).
PHASES = ("checking", "loading_model", "reading_data", "starting", "training", "stopping", "exporting")
# Checkpoints kept in a job folder unless config.extra sets the Trainer's save_total_limit.
CHECKPOINTS_KEPT = 2
# Lines of a training file checked before a job is recorded (the worker reads them all): big files stay fast.
CHECKED_LINES = 100
EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 2, 3
# The `studio train` flag of each setting that has one (TrainConfig.to_argv; studio/cli/train.py generates them).
CLI_FLAGS = {s.name: s.flag for s in table.SETTINGS if s.flag}
REQUIRED_FLAGS = tuple(s.name for s in table.SETTINGS if s.required) + ("base",)
# Keys a metrics.jsonl line may carry; step and time are always present.
METRIC_FIELDS = ("step", "total_steps", "epoch", "loss", "eval_loss", "lr", "grad_norm", "samples_per_s",
                 "gpu_mem_gb", "eta_s", "time")


@dataclass
class TrainConfig:
    """One fine-tuning run. The defaults are the recipe measured by bench/quality.py (bench/RESULTS.md)."""

    task: str                      # embedder | reranker
    base: str                      # model folder or hub id (actions.jobs.start resolves names; "default" = ★)
    train: str                     # FlagEmbedding JSONL from `studio export triplets`
    name: str                      # output folder name under models/
    output_dir: str                # models/<name>, resolved by the app
    # Every default below is the field table's (studio/training/settings.py): change it there.
    valid: str | None = _d("valid")                # validation JSONL (same format); enables eval loss
    method: str = _d("method")                     # full | lora
    architecture: str = _d("architecture")         # auto: m3 when the base has colbert_linear.pt / sparse_linear.pt
    epochs: float = _d("epochs")
    max_steps: int = _d("max_steps")               # > 0 overrides epochs
    batch_size: int = _d("batch_size")             # queries per device per step (more in-batch negatives)
    lr: float | None = _d("lr")                    # None: 5e-5 full, 1e-4 LoRA
    group_size: int = _d("group_size")             # 1 positive + (group_size - 1) hard negatives per query
    query_max_len: int = _d("query_max_len")
    passage_max_len: int | None = _d("passage_max_len")  # None: the base's max_seq_length, at most 512
    temperature: float = _d("temperature")         # all-MiniLM-L6-v2's own (scale 20); 0.02 (BGE's) lost on both sets
    warmup_ratio: float = _d("warmup_ratio")
    weight_decay: float = _d("weight_decay")
    lora_r: int = _d("lora_r")
    lora_alpha: int = _d("lora_alpha")
    lora_dropout: float = _d("lora_dropout")
    lora_targets: list[str] = _d("lora_targets")
    freeze_embeddings: bool = _d("freeze_embeddings")
    freeze_layers: int = _d("freeze_layers")       # freeze the lowest N transformer layers
    gradient_checkpointing: bool = _d("gradient_checkpointing")
    precision: str = _d("precision")               # auto: bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU
    unified: bool = _d("unified")                  # m3: dense + sparse + ColBERT together
    self_distill: bool = _d("self_distill")        # m3: self-knowledge distillation across the three heads
    distill: str = _d("distill")                   # auto: use pos_scores/neg_scores when the file has them; on | off
    seed: int = _d("seed")
    logging_steps: int = _d("logging_steps")
    save_steps: int = _d("save_steps")
    save_every: float = _d("save_every")           # minutes between checkpoints besides save_steps (0: steps only)
    resume: bool = _d("resume")                    # continue from the newest checkpoint in the job folder
    extra: dict = _d("extra")

    @classmethod
    def recipe(cls, name: str):
        """The measured recipe's value of one field (bench/quality.py): the CLI and the Train tab start from these,
        so the recipe lives in one place. Not to be confused with the ★ default *model* (``--base default``)."""
        spec = cls.__dataclass_fields__[name]
        return spec.default_factory() if callable(spec.default_factory) else spec.default

    def to_argv(self) -> list[str]:
        """The ``studio train`` flags that ask for this job: the required ones (task, base, training file, name),
        then every setting that differs from the recipe. Settings with no flag (output_dir, resume, the
        worker's own choices such as distill) are left out."""
        argv: list[str] = []
        for name, flag in CLI_FLAGS.items():
            value = getattr(self, name)
            if name not in REQUIRED_FLAGS and value == self.recipe(name):
                continue
            if isinstance(value, bool):
                argv += [flag] if value else []
            elif isinstance(value, list):
                argv += [flag, ",".join(str(v) for v in value)]
            elif isinstance(value, float):  # 20.0 as "20"; else the shortest text that reads back as the same float
                argv += [flag, str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)]
            else:
                argv += [flag, str(value)]
        return argv

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-4 if self.method == "lora" else 5e-5)

    def validate(self) -> None:
        """Refuse what the worker would refuse, before a job is recorded: the settings, then the first
        CHECKED_LINES lines of the training (and validation) file. Raises StudioError / InputError."""
        self.check_settings()
        if not str(self.train or "").strip():
            raise StudioError("train_file_none")
        if not Path(self.train or "").is_file():
            raise StudioError("train_file_missing", path=self.train)
        check_train_file(self.train, distill=self.distill)
        if self.valid:
            check_train_file(self.valid, distill="off")  # scores in validation files are optional

    def check_settings(self) -> None:
        """Choices, counts, steps, learning rate, temperature and group size: the first problem, named in the error
        (:meth:`setting_problems` lists them all)."""
        problems = self.setting_problems()
        if problems:
            raise problems[0]

    def setting_problems(self) -> list[StudioError]:
        """Every setting the worker would refuse, each as the StudioError naming its field (empty: all fine)."""
        found: list[StudioError] = []
        for name, allowed in CHOICES:
            if getattr(self, name) not in allowed:
                found.append(StudioError("train_bad_choice", field=name, value=getattr(self, name),
                                         allowed=", ".join(allowed)))
        for name in COUNTS:
            value = getattr(self, name)
            if not (value is None and name == "passage_max_len") and not (_whole(value) and value >= 1):
                found.append(StudioError("train_bad_count", field=name, value=value))
        for name, low, high, high_ok in RANGES:
            value = getattr(self, name)
            if not _in_range(value, low, high, high_ok):
                found.append(StudioError("train_bad_range", field=name, value=value, low=f"{low:g}", high=f"{high:g}"))
        for name in NATURALS:
            if not (_whole(getattr(self, name)) and getattr(self, name) >= 0):
                found.append(StudioError("train_bad_natural", field=name, value=getattr(self, name)))
        if not _whole(self.max_steps):
            found.append(StudioError("train_bad_max_steps", field="max_steps", value=self.max_steps))
        if not _positive(self.lora_alpha):
            found.append(StudioError("train_not_positive", field="lora_alpha", value=self.lora_alpha))
        if self.method == "lora" and not (isinstance(self.lora_targets, list) and self.lora_targets
                                          and all(isinstance(x, str) and x.strip() for x in self.lora_targets)):
            found.append(StudioError("train_no_lora_targets", field="lora_targets"))
        minimum = 2 if self.task == "reranker" else 1  # a reranker scores its positive against negatives
        if not (_whole(self.group_size) and self.group_size >= minimum):
            found.append(StudioError("train_bad_group_size", field="group_size", value=self.group_size,
                                     minimum=minimum))
        if not (_whole(self.max_steps) and self.max_steps > 0) and not _positive(self.epochs):
            found.append(StudioError("train_no_steps", epochs=self.epochs, max_steps=self.max_steps))
        for name, value in (("lr", self.learning_rate()), ("temperature", self.temperature)):
            if not _positive(value):
                found.append(StudioError("train_not_positive", field=name, value=value))
        return found

    def save(self, job_dir: Path) -> Path:
        path = Path(job_dir) / "config.json"
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, job_dir: Path) -> "TrainConfig":
        data = json.loads((Path(job_dir) / "config.json").read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_range(value: object, low: float, high: float, high_ok: bool) -> bool:
    """A finite number from `low` up to `high` (`high` itself only when `high_ok`)."""
    return _number(value) and math.isfinite(value) and low <= value and (value < high or (high_ok and value == high))


def _positive(value: object) -> bool:
    """A finite number above 0."""
    return _number(value) and math.isfinite(value) and value > 0


def check_train_file(path: str | Path, *, distill: str = "auto", limit: int = CHECKED_LINES) -> int:
    """Check the first `limit` lines of a FlagEmbedding JSONL file the way the worker reads them; returns how many
    lines were checked. Raises InputError naming the file, line and field."""
    file = Path(path)
    if not file.is_file():
        raise InputError("file_not_found", file=str(path))
    if file.suffix.lower() not in (".jsonl", ".json"):
        raise InputError("train_file_suffix", file=str(path), suffix=file.suffix or "(none)")
    checked, first_scores = 0, None
    for number, raw in read_lines(file, str(path)):
        if not raw.strip():
            continue
        scores = check_train_line(raw, str(path), number)
        first_scores = scores if first_scores is None else first_scores
        if not scores and (distill == "on" or (distill == "auto" and first_scores)):
            raise InputError("train_no_scores", file=str(path), line=number)
        checked += 1
        if checked >= limit:
            break
    if not checked:
        raise InputError("no_rows", file=str(path))
    return checked


def read_lines(path: str | Path, name: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, decoded line by line so that bad bytes are found where they are.

    Raises:
        InputError: ``invalid_utf8`` naming the file (as `name`, default the path) and the line.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("invalid_utf8", file=name or str(path), line=number) from None


def check_train_line(raw: str, file: str, line: int) -> bool:
    """One {"query", "pos", "neg"} line, as FlagEmbedding's datasets read it; returns whether it carries pos_scores
    and neg_scores. Raises InputError naming the file, line and field."""
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise InputError("train_line_not_json", file=file, line=line, detail=getattr(exc, "msg", str(exc))) from None
    if not isinstance(record, dict):
        raise InputError("not_object", file=file, line=line)
    if not isinstance(record.get("query"), str) or not record["query"].strip():
        raise InputError("train_line_query", file=file, line=line, field="query")
    for key in ("pos", "neg"):
        value = record.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise InputError("train_line_texts", file=file, line=line, field=key)
    for key, texts in (("pos_scores", "pos"), ("neg_scores", "neg")):
        scores = record.get(key)
        if key in record and (not isinstance(scores, list) or len(scores) != len(record[texts])
                              or not all(_number(s) for s in scores)):
            raise InputError("train_line_scores", file=file, line=line, field=key, texts=texts)
    return "pos_scores" in record and "neg_scores" in record


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_base(base: str, models_dir: str | Path | None = None) -> str:
    """The base model as the worker should get it: ``default``, a model folder (absolute; a name in models/ is
    looked up there) or a hub id this machine has downloaded. Raises StudioError otherwise; never downloads."""
    from studio.models.registry import DEFAULT_NAME, EMBEDDED_NAME, get_default, resolve

    text = str(base or "").strip()
    if text == DEFAULT_NAME and get_default(models_dir) == EMBEDDED_NAME:  # a ★ model resolves to its folder below
        return text
    found = resolve(text, models_dir) if text else ""
    path = Path(found).expanduser()
    if found and path.is_dir():
        return os.path.abspath(path)
    if found and path.exists():
        raise StudioError("base_is_file", base=text)
    if not text or names_a_folder(text):
        raise StudioError("base_not_found", base=text)
    if _offline() and not _hub_cached(text):
        raise StudioError("base_not_available", base=text)
    return text


def names_a_folder(base: str) -> bool:
    """Whether `base` can only mean a folder (absolute, relative with ./ or ~, or deeper than a hub id's
    "owner/name"): when no such folder exists it is missing, not a model to fetch from the hub."""
    path = Path(base).expanduser()
    return path.is_absolute() or base.startswith((".", "~")) or base.count("/") > 1 or "\\" in base


def _offline() -> bool:
    """Whether the worker runs with the hub off (the launcher's default unless HF_HUB_OFFLINE says otherwise)."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hub_cached(repo_id: str) -> bool:
    """Whether the hub model `repo_id` is in this machine's Hugging Face cache (looked up, never fetched)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=repo_id, local_files_only=True)).is_dir()
    except Exception:  # noqa: BLE001 - not cached, a malformed id, or no hub library: not usable offline
        return False


def read_metrics(job_dir: Path) -> list[dict]:
    """Every complete line of metrics.jsonl (a line being written right now is skipped), as one run.

    A job resumed from a checkpoint logs again from the step after it; the steps a dead run logged past that
    checkpoint were lost with it, so a line whose step goes back drops the earlier lines from that step on
    (otherwise the loss curve doubles back on itself).
    """
    path = Path(job_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows: list[dict] = []
    latest = float("-inf")
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = row.get("step") if isinstance(row, dict) else None
        if not isinstance(step, (int, float)):
            continue
        if step < latest:
            rows = [r for r in rows if r["step"] < step]
        rows.append(row)
        latest = step
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


def steps_fix(train_file: str | Path | None, batch_size: int, epochs: float,
              max_steps: int = -1) -> tuple[str, int | float, int] | None:
    """What to change so that a job that would take fewer than FEW_STEPS optimizer steps takes at least that many:
    (setting, new value, steps it then takes), or None when it already takes enough or the file cannot tell.

    With max_steps set, max_steps is raised to FEW_STEPS; otherwise epochs are raised to the fewest whole epochs
    that reach it (a file of 3 batches at 1 epoch: 7 epochs, 21 steps).
    """
    few = too_few_steps(train_file, batch_size, epochs, max_steps)
    if few is None:
        return None
    if max_steps and max_steps > 0:
        return "max_steps", FEW_STEPS, FEW_STEPS
    _, lines = few
    batches = math.ceil(lines / max(int(batch_size), 1))
    new_epochs = math.ceil(FEW_STEPS / batches)
    return "epochs", new_epochs, optimizer_steps(lines, batch_size, new_epochs)


# --- checkpoints -------------------------------------------------------------------------------------------------
def checkpoint_step(path: Path) -> int | None:
    """The step of a ``checkpoint-<step>`` folder name, or None for any other name."""
    prefix, _, number = path.name.rpartition("-")
    return int(number) if prefix == "checkpoint" and number.isdigit() else None


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The complete ``checkpoint-<step>`` folder (its trainer_state.json, written last, is there) with the highest
    step, or None. A folder the worker was killed while writing is not complete."""
    best: tuple[int, Path] | None = None
    folder = Path(folder)
    if folder.is_dir():
        for path in folder.iterdir():
            step = checkpoint_step(path)
            if step is not None and path.is_dir() and (path / "trainer_state.json").is_file() and (
                    best is None or step > best[0]):
                best = (step, path)
    return best[1] if best else None


def resume_step(job_dir: str | Path) -> int | None:
    """The step a job's resume continues from: that of its newest complete checkpoint, None when it has none
    (it then starts again from step 1)."""
    found = latest_checkpoint(Path(job_dir) / "checkpoints")
    return checkpoint_step(found) if found else None


def base_label(base: str | Path, models_dir: str | Path | None = None) -> str:
    """The base model as people name it, not where it lies: ``all-MiniLM-L6-v2`` for the embedded model (a folder
    inside the virtual environment), ``NAME`` for ``models/NAME``, ``owner/name`` for a Hugging Face cache folder.
    ``default`` in a job's config is the embedded model too (check_base keeps the word only when the ★ model is
    the embedded one; the worker reads it so). Names, hub ids and other folders are returned as they are."""
    from studio import config as cfg

    text = str(base or "").strip()
    path = Path(text)
    if text == "default":
        return cfg.EMBEDDED_MODEL_NAME
    if not text or not path.is_absolute():
        return text

    def same(a: Path, b: Path) -> bool:
        return os.path.realpath(a) == os.path.realpath(b)

    try:
        if same(path, cfg.embedded_model_path()):
            return cfg.EMBEDDED_MODEL_NAME
    except ImportError:  # the embedded model's package is missing: nothing to compare with
        pass
    if same(path.parent, Path(models_dir or cfg.MODELS_DIR)):
        return path.name
    for part in path.parts:  # <hub cache>/models--owner--name/snapshots/<revision>
        if part.startswith("models--") and part.count("--") >= 2:
            return "/".join(part.split("--")[1:])
    return text
