"""What a training job is asked to do: :class:`TrainConfig`, saved as the job folder's ``config.json``.

Its fields, defaults, bounds and flags come from the one field table, :mod:`studio.training.settings`; this module
derives the checks from it (:meth:`TrainConfig.setting_problems`) and the ``studio train`` flags
(:data:`CLI_FLAGS`, :meth:`TrainConfig.to_argv`). The job folder and its other files are
:class:`~studio.training.job_folder.JobFolder`'s; the training file's checks are :mod:`studio.training.train_file`'s.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from studio.errors import StudioError
from studio.training import settings as table
from studio.training.job_folder import JobFolder
from studio.training.settings import default_factory as _d
from studio.training.train_file import check_train_file

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
# The `studio train` flag of each setting that has one (TrainConfig.to_argv; studio/cli/train.py generates them).
CLI_FLAGS = {s.name: s.flag for s in table.SETTINGS if s.flag}
REQUIRED_FLAGS = tuple(s.name for s in table.SETTINGS if s.required) + ("base",)


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
        :data:`~studio.training.train_file.CHECKED_LINES` lines of the training (and validation) file. Raises
        StudioError / InputError."""
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
        """Write the job folder's ``config.json``; returns its path."""
        path = JobFolder(job_dir).config
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, job_dir: Path) -> "TrainConfig":
        """Read the job folder's ``config.json`` (keys this version does not know are left out)."""
        data = json.loads(JobFolder(job_dir).config.read_text(encoding="utf-8"))
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


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
