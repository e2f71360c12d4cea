"""The training settings' one field table: name, type, default (the recipe measured by bench/quality.py), rule,
`studio train` flag and help, ⑥ form label and widget. :class:`~studio.training.config.TrainConfig` takes its
defaults and its checks from here, ``studio train`` generates its options from here (studio/cli/train.py), and the
⑥ form its hyper-parameter widgets (studio/ui/tabs/train.py, through :mod:`studio.actions.jobs`): a default or a
bound changes in one place.

Adding a setting: a :class:`Setting` here, the field of the same name on TrainConfig (a test checks they agree),
its label ``train.<name>`` in both catalogues when the form shows it, and what the worker does with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    """One training setting.

    Attributes:
        name: TrainConfig's field.
        type: int, float, str, bool, list (of str) or dict.
        default: the recipe's value (a list's default is copied for each config).
        choices: the allowed values of a str setting.
        rule: "count" (whole, ≥ 1), "natural" (whole, ≥ 0), "whole", "positive" (a number above 0), "range"
            (`low` ≤ value < `high`, or ≤ `high` when `high_ok`); "" for none.
        optional: None is allowed (chosen for the job: the method's learning rate, the base's length…).
        flag: its ``studio train`` option ("" = none); `required` there; `help`: the option's help (the CLI is English).
        label: the ⑥ form's label key ("" = not on the form); `widget`: "number" (any number), "whole",
            "text", "choice", "check"; `advanced`: in the form's hyper-parameter accordion.
    """

    name: str
    type: type
    default: object = None
    choices: tuple[str, ...] = ()
    rule: str = ""
    low: float = 0.0
    high: float = 0.0
    high_ok: bool = False
    optional: bool = False
    flag: str = ""
    required: bool = False
    help: str = ""
    label: str = ""
    widget: str = ""
    advanced: bool = False
    info: str = ""  # the form's info key under the label ("" = none)

    def fresh_default(self) -> object:
        """The default, a new list or dict each time."""
        return list(self.default) if self.type is list else dict(self.default or {}) if self.type is dict else \
            self.default


def _form(name: str, widget: str, **kw) -> dict:
    """The form side of an advanced setting: label ``train.<name>``, `widget`, in the accordion."""
    return {"label": f"train.{name}", "widget": widget, "advanced": True, **kw}


SETTINGS: tuple[Setting, ...] = (
    Setting("task", str, None, choices=("embedder", "reranker"), flag="--task", required=True),
    Setting("base", str, "default", flag="--base",
            help="Model name in models/, a folder, a hub id, or 'default' (the ★ default model)."),
    Setting("train", str, None, flag="--train", required=True, help="FlagEmbedding JSONL from `studio export triplets`."),
    Setting("name", str, None, flag="--name", required=True, help="Output folder under models/."),
    Setting("output_dir", str, None),
    Setting("valid", str, None, optional=True, flag="--valid",
            help="Validation JSONL (default: the .valid.jsonl beside --train, if any)."),
    Setting("method", str, "full", choices=("full", "lora"), flag="--method"),
    Setting("architecture", str, "auto", choices=("auto", "m3", "encoder")),
    Setting("epochs", float, 1.0, flag="--epochs", **_form("epochs", "number")),
    Setting("max_steps", int, -1, rule="whole", flag="--max-steps", help="Stop after N steps (overrides --epochs).",
            **_form("max_steps", "whole")),
    Setting("batch_size", int, 32, rule="count", flag="--batch-size", help="Queries per device per step.",
            **_form("batch_size", "whole")),
    Setting("lr", float, None, rule="positive", optional=True, flag="--lr",
            help="Learning rate (default 5e-5 full, 1e-4 LoRA).", **_form("lr", "text")),
    Setting("group_size", int, 2, flag="--group-size", help="1 positive + N-1 negatives per query.",
            **_form("group_size", "whole")),
    Setting("query_max_len", int, 128, rule="count", flag="--query-max-len", **_form("query_max_len", "whole")),
    Setting("passage_max_len", int, None, rule="count", optional=True, flag="--passage-max-len",
            help="Tokens per passage (default: the base model's max_seq_length, at most 512).",
            **_form("passage_max_len", "whole", info="train.passage_max_len_info")),
    Setting("temperature", float, 0.05, rule="positive", flag="--temperature",
            help="Softmax temperature of the contrastive loss (embedder).", **_form("temperature", "number")),
    Setting("warmup_ratio", float, 0.1, rule="range", low=0.0, high=1.0, flag="--warmup",
            help="Warm-up, as a share of the steps.", **{**_form("warmup_ratio", "number"), "label": "train.warmup"}),
    Setting("weight_decay", float, 0.01, rule="range", low=0.0, high=1.0, high_ok=True),
    Setting("precision", str, "auto", choices=("auto", "fp32", "fp16", "bf16"), flag="--precision",
            **_form("precision", "choice")),
    Setting("gradient_checkpointing", bool, False, flag="--gradient-checkpointing",
            **_form("gradient_checkpointing", "check")),
    Setting("lora_r", int, 16, rule="count", flag="--lora-r", **_form("lora_r", "whole")),
    Setting("lora_alpha", int, 32, rule="positive", flag="--lora-alpha", **_form("lora_alpha", "whole")),
    Setting("lora_dropout", float, 0.05, rule="range", low=0.0, high=1.0, flag="--lora-dropout",
            **_form("lora_dropout", "number")),
    Setting("lora_targets", list, ("query", "key", "value"), flag="--lora-targets", help="Modules LoRA adapts.",
            **_form("lora_targets", "text")),
    Setting("freeze_embeddings", bool, False, flag="--freeze-embeddings", help="Keep the embedding layer fixed.",
            **_form("freeze_embeddings", "check")),
    Setting("freeze_layers", int, 0, rule="natural", flag="--freeze-layers",
            help="Keep the lowest N transformer layers fixed.", **_form("freeze_layers", "whole")),
    Setting("unified", bool, True),
    Setting("self_distill", bool, True),
    Setting("distill", str, "auto", choices=("auto", "on", "off")),
    Setting("seed", int, 42, rule="natural", flag="--seed", help="Random seed (data order, negatives drawn)."),
    Setting("logging_steps", int, 1, rule="count"),
    Setting("save_steps", int, 50, rule="count"),
    Setting("save_every", float, 10.0, rule="range", low=0.0, high=10_000.0, high_ok=True, flag="--save-every",
            help="Also save a checkpoint every MINUTES of training (0: only every 50 steps); a kill or a power cut "
                 "loses at most that much.", **_form("save_every", "number", info="train.save_every_info")),
    Setting("resume", bool, False),
    Setting("extra", dict, None),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, object] = {s.name: s.default for s in SETTINGS}


def default(name: str) -> object:
    """The recipe's value of setting `name` (a fresh list or dict)."""
    return BY_NAME[name].fresh_default()


def default_factory(name: str):
    """A dataclass default for setting `name`: ``field(default=…)`` or, for a list or dict, a factory."""
    s = BY_NAME[name]
    if s.type in (list, dict):
        return field(default_factory=s.fresh_default)
    return field(default=s.default)


def choices(name: str) -> tuple[str, ...]:
    return BY_NAME[name].choices


def with_rule(rule: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if s.rule == rule)


def form_settings() -> tuple[Setting, ...]:
    """The ⑥ form's hyper-parameter settings, in its order."""
    return tuple(s for s in SETTINGS if s.advanced)
