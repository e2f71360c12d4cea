"""What the worker hooks into the Hugging Face Trainer: metrics lines, stop and checkpoint, validation loss, draws.

:class:`StudioCallback` appends one JSON object per logged step to ``metrics.jsonl`` (keys from
:data:`studio.training.metrics.METRIC_FIELDS`), prints a short progress line, stops training after the current
optimizer step when asked to (the app's ``cancel`` file or SIGTERM, see
:class:`studio.training.supervision.StopRequest`) with a checkpoint saved at that step, saves a checkpoint every
``save_every`` seconds of training besides the Trainer's step interval, and stops a run whose loss is no longer
finite. With several processes (torchrun) the processes agree on stopping and saving at each step, so that none
waits for the others in a collective operation.

:class:`SeededDraws` makes the training data's random draws (which positive, which negatives, FlagEmbedding's text
shuffling) a function of (seed, epoch, item) instead of Python's global random stream, so that a run resumed in
the middle of an epoch draws exactly what the uninterrupted run drew: the Trainer restores the random states only
after fetching the first batch past the checkpoint, and Accelerate's loader fetches one batch ahead.

:class:`EvalLoss` computes the validation loss with FlagEmbedding's own model and collator: their models only
return a loss in training mode, and their runners take no eval dataset, so the Trainer's ``evaluate`` gives
nothing. It runs every ``every`` steps and at the last step, and its value rides on that step's metrics line.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
from transformers import TrainerCallback

from studio.training.job_folder import JobFolder
from studio.training.metrics import METRIC_FIELDS


def _finite(value: object) -> float | None:
    """`value` as a float, or None when it is missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class EvalLoss:
    """Mean training loss of the model over a validation dataset, without updating anything.

    Args:
        model: The FlagEmbedding training model (the wrapper whose forward returns ``.loss``).
        dataset: A FlagEmbedding train dataset built over the validation file.
        collator: The runner's data collator.
        batch_size: Queries per batch (the training batch size: in-batch negatives depend on it).
        device: Where the model lives.
        amp_dtype: Autocast dtype when training in fp16/bf16, else None.
    """

    def __init__(self, model: torch.nn.Module, dataset, collator: Callable, batch_size: int,
                 device: torch.device, amp_dtype: torch.dtype | None = None):
        self.model, self.dataset, self.collator = model, dataset, collator
        self.batch_size, self.device, self.amp_dtype = max(1, batch_size), device, amp_dtype

    def __call__(self) -> float | None:
        model = self.model
        was_training = model.training
        # The datasets draw negatives with Python's `random`; keep the training run's sequence untouched.
        random_state = random.getstate()
        saved = {name: getattr(model, name) for name in ("train_batch_size", "step") if hasattr(model, name)}
        # Submodules in eval mode (no dropout, including attention dropout), the wrapper in training mode: that is
        # the flag FlagEmbedding's models check before computing a loss.
        model.eval()
        model.training = True
        amp = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
               else nullcontext())
        total, count = 0.0, 0
        try:
            with torch.no_grad(), amp:
                for start in range(0, len(self.dataset), self.batch_size):
                    items = [self.dataset[i] for i in range(start, min(start + self.batch_size, len(self.dataset)))]
                    if "train_batch_size" in saved:
                        model.train_batch_size = len(items)  # the reranker reshapes its logits by this
                    batch = _to_device(self.collator(items), self.device)
                    loss = _finite(model(**batch).loss)
                    if loss is not None:
                        total += loss * len(items)
                        count += len(items)
        finally:
            for name, value in saved.items():
                setattr(model, name, value)
            model.train(was_training)
            random.setstate(random_state)
        return total / count if count else None


def _to_device(value, device: torch.device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value


class SeededDraws(torch.utils.data.Dataset):
    """A FlagEmbedding training dataset whose items draw their random choices from a generator seeded by
    (seed, epoch, item); Python's global random state is left as it was.

    Args:
        dataset: The runner's training dataset (its ``__getitem__`` uses the ``random`` module).
        seed: The job's seed.
    """

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        state = random.getstate()
        random.seed(f"studio-draws:{self.seed}:{self.epoch}:{int(item)}")  # a str seed hashes alike in every process
        try:
            return self.dataset[item]
        finally:
            random.setstate(state)

    def __getattr__(self, name: str):
        if name == "dataset":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


class DrawEpoch(TrainerCallback):
    """Tells a :class:`SeededDraws` which epoch begins (a resumed run starts inside the checkpoint's epoch)."""

    def __init__(self, draws: SeededDraws):
        self.draws = draws

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is the epoch's number plus the share of it already trained (resuming mid-epoch).
        self.draws.epoch = int(math.floor((state.epoch or 0.0) + 1e-6))


def _agree(flags: Sequence[bool], device) -> list[bool]:
    """`flags` or-ed across the processes of a distributed run (as they are in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return list(flags)
    tensor = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


class StudioCallback(TrainerCallback):
    """metrics.jsonl, progress lines, stop, timed checkpoints and validation for one job folder.

    Args:
        job_dir: The job folder (metrics.jsonl, the cancel file).
        evaluator: Validation loss, computed every `eval_every` steps and at the last one.
        eval_every: Steps between validations (0: only at the last step).
        printer: Where progress lines go.
        stop_requested: Whether a stop was asked for (default: the job folder's cancel file exists).
        save_every: Seconds of training between checkpoints besides the Trainer's step interval (0: none).
        phase: Called with what the worker is doing now (``training``, ``stopping``).

    After training, :attr:`cancelled` says whether a stop request ended it, :attr:`diverged` whether the loss
    stopped being finite, :attr:`last` holds the last metrics line and :attr:`summary` the Trainer's end-of-training
    figures (``train_loss``, ``train_runtime``).
    """

    def __init__(self, job_dir: str | Path, evaluator: EvalLoss | None = None, eval_every: int = 0,
                 printer: Callable[[str], None] = lambda line: print(line, flush=True),
                 stop_requested: Callable[[], bool] | None = None, save_every: float = 0.0,
                 phase: Callable[[str], None] = lambda name: None):
        self.job_dir = Path(job_dir)
        folder = JobFolder(self.job_dir)
        self.metrics_path, self.cancel_path = folder.metrics, folder.cancel
        self.evaluator, self.eval_every, self.printer = evaluator, eval_every, printer
        self.stop_requested = stop_requested or self.cancel_path.exists
        self.save_every, self.phase = float(save_every or 0.0), phase
        self._last_save = time.time()
        self.cancelled = self.diverged = False
        self.last: dict = {}
        self.last_loss: float | None = None
        self.last_eval_loss: float | None = None
        self.summary: dict = {}
        self._pending_eval: tuple[int, float | None] | None = None
        self._start_step = 0
        self._start_time = self._log_time = time.time()
        self._log_step = 0
        self._eval_seconds = self._eval_seconds_at_log = 0.0

    # --- Trainer events -------------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._start_step = self._log_step = state.global_step  # > 0 when resuming
        self._start_time = self._log_time = self._last_save = time.time()
        self.phase("training")

    def on_save(self, args, state, control, **kwargs):
        self._last_save = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        timed = self.save_every > 0 and time.time() - self._last_save >= self.save_every
        stop, timed = _agree([self.stop_requested(), timed], args.device)
        last_step = state.max_steps > 0 and state.global_step >= state.max_steps
        if stop and not last_step:  # at the last step the run ends anyway: its model is written, not thrown away
            self.cancelled = True
            control.should_save = True  # the checkpoint resume continues from: this very step
            control.should_training_stop = True
            self.phase("stopping")
            self.printer(f"stop requested: step {state.global_step} done, saving checkpoint-{state.global_step} "
                         "and stopping")
            return control
        if timed:
            control.should_save = True
        if self.evaluator is not None and (last_step or (self.eval_every > 0
                                                         and state.global_step % self.eval_every == 0)):
            began = time.time()
            self._pending_eval = (state.global_step, self.evaluator())
            self._eval_seconds += time.time() - began
            control.should_log = True  # the validation loss goes out on this step's metrics line
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        eval_loss = None
        if self._pending_eval and self._pending_eval[0] == state.global_step:
            eval_loss = self._pending_eval[1]
            self._pending_eval = None
        if "eval_loss" in logs:
            eval_loss = logs["eval_loss"]
        if "loss" not in logs and eval_loss is None:
            # The end-of-training summary (train_loss, train_runtime, ...): no new step to report.
            self.summary.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
            return
        now = time.time()
        step = state.global_step
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
        train_seconds = (now - self._log_time) - (self._eval_seconds - self._eval_seconds_at_log)
        steps = step - self._log_step
        samples_per_s = per_step * steps / train_seconds if steps > 0 and train_seconds > 0 else None
        done = step - self._start_step
        elapsed = (now - self._start_time) - self._eval_seconds
        eta = (elapsed / done * max(0, state.max_steps - step)) if done > 0 and state.max_steps > 0 else None
        loss = logs.get("loss")
        row = {
            "step": step,
            "total_steps": state.max_steps,
            "epoch": _round(logs.get("epoch", state.epoch), 4),
            "loss": _finite(loss),
            "eval_loss": _finite(eval_loss),
            "lr": _finite(logs.get("learning_rate")),
            "grad_norm": _finite(logs.get("grad_norm")),
            "samples_per_s": _round(samples_per_s, 2),
            "gpu_mem_gb": _round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
            "eta_s": _round(eta, 1),
            "time": round(now, 3),
        }
        row = {k: row[k] for k in METRIC_FIELDS if row.get(k) is not None}
        self._append(row)
        self.last = row
        if "loss" in row:
            self.last_loss = row["loss"]
        if "eval_loss" in row:
            self.last_eval_loss = row["eval_loss"]
        self._log_time, self._log_step, self._eval_seconds_at_log = now, step, self._eval_seconds
        self.printer(_progress_line(row))
        if loss is not None and _finite(loss) is None:
            self.diverged = True
            control.should_training_stop = True

    # --- helpers --------------------------------------------------------------------------------------------------
    def _append(self, row: dict) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()


def _round(value: object, digits: int) -> float | None:
    number = _finite(value)
    return None if number is None else round(number, digits)


_PROGRESS_FORMATS = (("loss", "loss {:.4f}"), ("eval_loss", "eval_loss {:.4f}"), ("lr", "lr {:.2e}"),
                     ("samples_per_s", "{:.1f} samples/s"), ("gpu_mem_gb", "gpu {:.2f} GiB"), ("eta_s", "eta {:.0f}s"))


def _progress_line(row: dict) -> str:
    parts = [f"step {row['step']}/{row.get('total_steps', '?')}"]
    parts += [fmt.format(row[key]) for key, fmt in _PROGRESS_FORMATS if key in row]
    return "  ".join(parts)
