"""Training jobs (⑥): start, watch, cancel and resume fine-tuning runs, and what they start from.

All of it is an admin's: a job holds the machine's GPU for hours and writes a model into models/. Training runs in
the worker's own process (studio.training.worker); these actions record, start and supervise it. The defaults a
job leaves open are resolved here, in one place: the validation file beside the training file, and the base
model's name ("default" = the ★ default model of ⑦ Models).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from studio import config as studio_config
from studio.actions import files
from studio.actions.base import Actor, Project, action
from studio.actions.models import model_field
from studio.dataset.naming import validation_twin
from studio.errors import StudioError
from studio.models.inspection import describe, scan
from studio.models.registry import DEFAULT_NAME, resolve
from studio.store import jobs as store_jobs
from studio.training import jobs as training_jobs
# Light (no torch): the CLI's and the Train form's few-steps warning and its one-click fix.
from studio.training.advice import steps_fix, too_few_steps  # noqa: F401
from studio.training.base_model import base_label
from studio.training.config import TrainConfig
from studio.training.metrics import read_metrics
from studio.training.settings import SETTINGS, Setting  # noqa: F401  (the field table: CLI options, form widgets)

ACTIVE = ("queued", "running")
RESUMABLE = ("failed", "cancelled")
recipe = TrainConfig.recipe  # the measured recipe's value of a setting: the CLI's and the Train form's defaults
TRAIN_PLACEHOLDER = "<exports/…/train.jsonl>"  # the preview's training file before one is chosen


@dataclass(frozen=True)
class JobSnapshot:
    """A job as its watchers show it (the Train tab's timer, the CLI's progress bar): its row, its logged steps
    (metrics.jsonl), the end of its log, what its worker is doing (``phase``: loading_model, reading_data,
    starting, training, stopping, exporting; None when it is not running), whether it was asked to stop and is
    finishing its step (``stopping``), the step a resume continues from (``checkpoint_step``: its newest complete
    checkpoint on disk, None = from step 1) and its base model by name (``base``)."""

    job: dict
    metrics: list[dict]
    log: str
    phase: str | None = None
    stopping: bool = False
    checkpoint_step: int | None = None
    base: str = ""

    @property
    def status(self) -> str:
        return self.job["status"]

    @property
    def active(self) -> bool:
        """Queued or running: worth watching again."""
        return self.job["status"] in ACTIVE

    @property
    def worker_died(self) -> bool:
        """Failed because its worker vanished (killed, out of memory) rather than with an explained error."""
        error = str(self.job["error"] or "")
        return self.job["status"] == "failed" and error.startswith(training_jobs.WORKER_DIED_PREFIX)

    @property
    def last_loss(self) -> dict:
        """The newest logged step with a training loss ({} before the first)."""
        losses = [m for m in self.metrics if m.get("loss") is not None]
        return losses[-1] if losses else {}


def valid_beside(train: str | Path | None) -> str | None:
    """The validation file beside a training file (``X.valid.jsonl`` next to ``X.jsonl``), when there is one."""
    text = str(train or "").strip()
    twin = validation_twin(text) if text else None
    return None if twin is None else str(twin)


def make_config(config_or_options: TrainConfig | Mapping) -> TrainConfig:
    """A TrainConfig from a config (copied: recording a job fills in its paths) or from options named as its
    fields (task, base, train, name required; output_dir is set when the job is recorded)."""
    if isinstance(config_or_options, TrainConfig):
        return dataclasses.replace(config_or_options)
    return TrainConfig(**{"output_dir": "", "base": "default", **dict(config_or_options)})


def settings_problems(options: Mapping) -> list[StudioError]:
    """Every setting in `options` (named as TrainConfig's fields) the worker would refuse, each naming its field:
    the Train form shows them all at once rather than one per click (:meth:`TrainConfig.setting_problems`)."""
    try:
        return make_config(options).setting_problems()
    except TypeError as exc:  # an unknown or missing field: the caller's mistake, not the person's
        raise ValueError(f"not TrainConfig options: {exc}") from exc


def command_line(config_or_options: TrainConfig | Mapping) -> list[str]:
    """The ``studio train …`` command that asks for the same job (TrainConfig.to_argv)."""
    return ["studio", "train", *make_config(config_or_options).to_argv()]


def starts_without_reranker_head(task: str, base: str | None) -> bool:
    """Whether a reranker would start from a base that is not a cross-encoder (a new, untrained scoring head).
    False when the base is a hub id this machine cannot inspect: no guess."""
    if task != "reranker":
        return False

    path = Path(resolve((base or "").strip() or "default"))
    return path.is_dir() and describe(path).kind != "reranker"


@dataclass(frozen=True)
class FormAdvice:
    """What the Train form warns about before Start: a reranker that would start without a reranker head
    (``new_head``), too few optimizer steps (``few_steps``: steps, training lines) and the one change that gives
    enough (``fix``: setting, new value, steps it then takes)."""

    new_head: bool = False
    few_steps: tuple[int, int] | None = None
    fix: tuple[str, int | float, int] | None = None


@action("admin", why_no_cli="the Train form's warnings while it is filled in (`studio train` prints the same ones)")
def form_advice(project: Project, actor: Actor, /, *, task: str, base: str | None, train: str | None,
                batch_size: int, epochs: float, max_steps: int = -1) -> FormAdvice:
    """The Train form's warnings for what the page sends: `base` a model name or hub id, `train` a name inside
    exports/. A name the page may not send (a server path, '..') gives no advice rather than an error: Start
    says what is wrong with it. The line count of a file under exports/ is an admin's to see, as the file is."""
    try:
        new_head = starts_without_reranker_head(task, model_field((base or "").strip() or "default", field="base"))
    except StudioError:
        new_head = False
    try:
        path = files.export_path(train, field="train")
    except StudioError:
        path = None
    few = too_few_steps(path, batch_size, epochs, max_steps) if path is not None else None
    fix = steps_fix(path, batch_size, epochs, max_steps) if few is not None else None
    return FormAdvice(new_head, few, fix)


@action("admin", why_no_cli="the Train form's preview of the `studio train` command it stands for")
def command_preview(project: Project, actor: Actor, options: Mapping, /) -> str:
    """The ``studio train …`` shell line that asks for the job the form describes (the form's options, `train` a
    name inside exports/). Paths are shown relative to the project (``exports/run/train.jsonl``), never as the
    server's own; without a training file a placeholder stands in.

    Raises:
        StudioError: ``path_outside`` for a training file or base model that is not a name the page may send.
    """
    opts = dict(options)
    name = str(opts.get("train") or "").strip()
    if name:
        files.export_path(name, field="train")  # refuses a server path, '~' or '..'
        opts["train"] = f"{Path(studio_config.EXPORTS_DIR).name}/{name}"
    else:
        opts["train"] = TRAIN_PLACEHOLDER
    opts["base"] = model_field(str(opts.get("base") or "").strip() or "default", field="base")
    opts["name"] = str(opts.get("name") or "").strip() or "<name>"
    studio_, *rest = command_line(opts)
    return " ".join(shlex.quote(a) for a in [studio_, "--db", _db_shown(project.db_path), *rest])


def _db_shown(db_path: Path) -> str:
    """The project's database as the preview names it: relative to the working folder (where ``studio`` runs),
    its file name when it lies elsewhere: never the server's own path."""
    path = Path(db_path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


@action("admin", cli="train")
def start(project: Project, actor: Actor, config_or_options: TrainConfig | Mapping, /, *, now: bool = False,
          gpus: int = 1) -> dict:
    """Record a job (audited as the actor) and start it when there is room; returns its row.

    `now` starts it at once on `gpus` GPUs whatever else runs (``studio train`` in the foreground, where the person
    at the keyboard decides). A training file's ``.valid.jsonl`` twin becomes the validation file unless one is
    named, and the base model's name is resolved (``default`` = the ★ default model). What the worker would refuse
    raises StudioError before anything is written.
    """
    config = make_config(config_or_options)
    if config.valid is None:
        config.valid = valid_beside(config.train)
    config.base = resolve(str(config.base or "").strip() or "default")
    with project.db() as db:
        _refuse_taken_name(db, str(config.name or "").strip())
        job_id = training_jobs.create(db, config, created_by=actor.name)
        if now:
            training_jobs.launch(db, job_id, gpus=gpus)
        else:
            training_jobs.start_queued(db)
        return store_jobs.get_job(db, job_id)


def _refuse_taken_name(db, name: str) -> None:
    """A queued or running job already writes models/`name`: a second one would fail at its export, hours later.
    Raises StudioError ``job_name_queued`` / ``job_name_running`` naming that job."""
    for status in ACTIVE:
        for job in store_jobs.list_jobs(db, status):
            if job["name"] == name:
                raise StudioError(f"job_name_{status}", job_id=job["id"], name=name)


@action("admin", cli="jobs cancel")
def cancel(project: Project, actor: Actor, job_id: int, /, *, wait: bool = False,
           on_wait: Callable[[float], None] | None = None) -> dict:
    """Stop a queued or running job (audited as the actor); returns its row; an ended job is refused.

    A queued job is cancelled at once. A running one finishes its current optimizer step, saves a checkpoint there
    and stops, however long that step takes: without `wait` this returns at once with the job still running
    (the page watches it end), with `wait` it returns once the worker has stopped, calling `on_wait` with the
    seconds waited about once a second (``studio jobs cancel``).
    """
    with project.db() as db:
        job = store_jobs.get_job(db, int(job_id))
        if job["status"] not in ACTIVE:
            raise StudioError("job_ended", job_id=job["id"], status=job["status"])
        return training_jobs.cancel(db, job["id"], wait=wait, on_wait=on_wait, actor=actor.name)


@action("admin", cli="jobs resume")
def resume(project: Project, actor: Actor, job_id: int, /) -> dict:
    """Queue a failed or cancelled job again (audited as the actor) and start it when there is room; its worker
    continues from the newest checkpoint. Returns its row (running, or queued behind another job)."""
    with project.db() as db:
        status = store_jobs.get_job(db, int(job_id))["status"]
        if status not in RESUMABLE:  # "job 3 has finished: nothing to resume", not "job 3 is succeeded"
            raise StudioError(f"job_resume_{status}", job_id=int(job_id))
        training_jobs.resume(db, int(job_id), actor=actor.name)
        training_jobs.start_queued(db)
        return store_jobs.get_job(db, int(job_id))


@action("admin", cli="jobs")
def list_jobs(project: Project, actor: Actor, /, *, existing: bool = False) -> list[dict]:
    """Every job, newest first, brought up to date with its worker (a dead one is marked failed)."""
    with project.db(existing=existing) as db:
        training_jobs.refresh_all(db)
        return store_jobs.list_jobs(db)


@action("admin", why_no_cli="the Train tab's live view (the CLI's `studio train` shows a progress bar)")
def watch(project: Project, actor: Actor, job_id: int, /, *, log_lines: int = 40) -> JobSnapshot:
    """One job brought up to date with its worker: its row, logged steps and the last `log_lines` of its log."""
    with project.db() as db:
        job = training_jobs.refresh(db, int(job_id))
    job_dir = job["job_dir"]
    log = training_jobs.log_tail(job_dir, log_lines) if log_lines > 0 else ""
    running = job["status"] == "running"
    return JobSnapshot(job, read_metrics(job_dir), log,
                       phase=training_jobs.read_phase(job_dir) if running else None,
                       stopping=running and training_jobs.cancel_requested(job_dir),
                       checkpoint_step=training_jobs.resume_point(job_dir), base=_base_name(job_dir))


def _base_name(job_dir: str | Path) -> str:
    """The job's base model as people name it (``all-MiniLM-L6-v2``, ``NAME`` in models/), "" when unreadable."""
    try:
        config = TrainConfig.load(Path(job_dir))
    except (OSError, ValueError, TypeError):
        return ""
    return base_label(config.base, Path(config.output_dir).parent if config.output_dir else None)


@action("admin", why_no_cli="the Train form's file picker (the CLI takes any path with --train)")
def training_files(project: Project, actor: Actor, /) -> list[str]:
    """Training files a job can use: names inside exports/ (``run/train.jsonl``), newest first, validation twins
    left out (a job finds those itself)."""
    return files.training_file_names()


@action("admin", why_no_cli="the Train form's base model picker (the CLI lists models with `studio models`)")
def base_models(project: Project, actor: Actor, /) -> list[str]:
    """Models a job can start from: ``default`` (the ★ model) and every usable model in models/."""
    names = [info.name for info in scan() if info.ok]
    return [DEFAULT_NAME, *(name for name in names if name != DEFAULT_NAME)]


def supervise(project: Project, max_running: int | None = None) -> list[int]:
    """The app's scheduler, not a person's action: re-attach to live workers (a dead one is marked failed) and start
    queued jobs while fewer than `max_running` run. Returns the ids started."""
    with project.db() as db:
        return training_jobs.start_queued(db, max_running)
