"""Stop, checkpoint, resume: a job stopped at step k and resumed logs the losses the uninterrupted job logs.

Each run trains a tiny random model (tests/tiny_models.py) on CPU for a few steps, in this process: the worker's
``main`` installs its SIGTERM handler here, and a callback sends SIGTERM to this very process at step k, which is
what the app's Cancel and a `kill` do to a worker. The data are drawn at random (one of three negatives per query,
batches of 2 out of 6 queries, so a step falls in the middle of an epoch), dropout is on and the learning rate
warms up and decays: a resume that restarted the data order, the draws, the random state, the optimizer or the
schedule would log different losses.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from transformers import TrainerCallback

from studio.training import worker
from studio.training.checkpoints import discard_partial_checkpoints, latest_checkpoint, resume_step
from studio.training.config import TrainConfig
from studio.training.failures import Cancelled
from studio.training.job_folder import EXIT_CANCELLED, EXIT_OK
from studio.training.metrics import read_metrics
from studio.training.supervision import StopRequest

QUERIES = [("warfarin and vitamin K", "Vitamin K rich foods change how warfarin works."),
           ("儿童发烧多少度要去医院", "三个月以下婴儿体温超过38℃应立即就医。"),
           ("how long does a cold last", "A common cold usually lasts seven to ten days."),
           ("高血压如何治疗", "高血压的治疗包括改变生活方式和服用降压药。"),
           ("what causes asthma attacks", "Allergens, cold air and exercise can trigger asthma attacks."),
           ("糖尿病有哪些症状", "糖尿病的常见症状包括多尿、口渴和疲劳。")]
NEGATIVES = ["Statins lower LDL cholesterol.", "The museum opens on Sundays.", "熊猫主要吃竹子。",
             "Guitars usually have six strings.", "长江是中国最长的河流。", "Rice grows in flooded fields."]
STEPS, STOP_AT = 8, 4  # 3 steps an epoch: step 4 is inside the second epoch


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, (query, pos) in enumerate(QUERIES):
            negatives = [NEGATIVES[(i + j) % len(NEGATIVES)] for j in range(3)]
            f.write(json.dumps({"query": query, "pos": [pos], "neg": negatives}, ensure_ascii=False) + "\n")
    return path


def make_job(folder: Path, train_file: Path, base: Path, task: str) -> Path:
    job = folder / "job"
    job.mkdir(parents=True)
    TrainConfig(task=task, base=str(base), train=str(train_file), name="r", output_dir=str(folder / "models" / "r"),
                max_steps=STEPS, batch_size=2, group_size=2, query_max_len=16, passage_max_len=24, lr=1e-3,
                warmup_ratio=0.25, save_steps=100, save_every=0.0, logging_steps=1).save(job)
    return job


class SigtermAt(TrainerCallback):
    """SIGTERM to this process once step `step` is done, as the app's Cancel or `kill PID` would send it."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def raw_steps(job: Path) -> list[int]:
    """The steps of every training-loss line in metrics.jsonl as written (no de-duplication)."""
    lines = (job / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [row["step"] for row in map(json.loads, lines) if "loss" in row]


@pytest.mark.parametrize("task", ["reranker", "embedder"])
def test_a_job_stopped_at_step_k_and_resumed_logs_the_uninterrupted_losses(tmp_path, train_file, tiny_reranker,
                                                                           tiny_m3, task):
    base = tiny_reranker if task == "reranker" else tiny_m3
    straight = make_job(tmp_path / "straight", train_file, base, task)
    assert worker.main([str(straight)]) == EXIT_OK
    expected = {r["step"]: r["loss"] for r in read_metrics(straight) if "loss" in r}
    assert sorted(expected) == list(range(1, STEPS + 1))

    job = make_job(tmp_path / "stopped", train_file, base, task)
    assert worker.main([str(job)], callbacks=[SigtermAt(STOP_AT)]) == EXIT_CANCELLED
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "the worker gave SIGTERM back"
    result = json.loads((job / "result.json").read_text(encoding="utf-8"))
    assert result["status"] == "cancelled" and result["final"]["step"] == STOP_AT
    assert result["final"]["checkpoint_step"] == STOP_AT and resume_step(job) == STOP_AT
    checkpoint = job / "checkpoints" / f"checkpoint-{STOP_AT}"
    assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"} <= {
        p.name for p in checkpoint.iterdir()}, "a full checkpoint: what resume_from_checkpoint continues from"
    assert not Path(json.loads((job / "config.json").read_text())["output_dir"]).exists(), "no model when stopped"

    config = TrainConfig.load(job)
    config.resume = True
    config.save(job)
    assert worker.main([str(job)]) == EXIT_OK
    assert raw_steps(job) == list(range(1, STEPS + 1)), "no step logged twice, none missing: the curve goes on"
    resumed = {r["step"]: r["loss"] for r in read_metrics(job) if "loss" in r}
    after = range(STOP_AT + 1, STEPS + 1)
    assert np.allclose([resumed[s] for s in after], [expected[s] for s in after], rtol=1e-6, atol=0), (
        resumed, expected)
    assert [resumed[s] for s in range(1, STOP_AT + 1)] == [expected[s] for s in range(1, STOP_AT + 1)]


class CheckpointsSeen(TrainerCallback):
    """The checkpoint folders on disk as each step begins."""

    def __init__(self, job: Path):
        self.job, self.seen = job, {}

    def on_step_begin(self, args, state, control, **kwargs):
        folder = self.job / "checkpoints"
        self.seen[state.global_step + 1] = sorted((p.name for p in folder.glob("checkpoint-*")),
                                                  key=lambda name: int(name.split("-")[1]))


@pytest.mark.parametrize("save_every, kept, expected", [
    (1e-9, None, ["checkpoint-3", "checkpoint-4"]),   # every step's time is past: saved, the newest 2 kept
    (1e-9, 3, ["checkpoint-2", "checkpoint-3", "checkpoint-4"]),  # the Trainer's save_total_limit, when set
    (0.0, None, []),                                   # off: only save_steps (100) and the end
])
def test_checkpoints_come_every_few_minutes_of_training_as_well_and_old_ones_go(tmp_path, train_file, tiny_reranker,
                                                                               save_every, kept, expected):
    """A kill -9 or a power cut loses at most `save_every` minutes, not everything since step 0 (save_steps 50)."""
    job = make_job(tmp_path, train_file, tiny_reranker, "reranker")
    config = TrainConfig.load(job)
    config.save_every = save_every
    config.extra = {"save_total_limit": kept} if kept else {}
    config.save(job)
    seen = CheckpointsSeen(job)
    assert worker.main([str(job)], callbacks=[seen]) == EXIT_OK
    assert seen.seen[5] == expected
    assert resume_step(job) == STEPS


def test_resume_drops_a_checkpoint_the_worker_was_killed_writing(tmp_path):
    """trainer_state.json is written last: a folder without it is half written and never resumed from."""
    folder = tmp_path / "checkpoints"
    for step, complete in ((2, True), (4, True), (6, False)):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(folder).name == "checkpoint-4" and resume_step(tmp_path) == 4
    assert discard_partial_checkpoints(folder, latest_checkpoint(folder)) == ["checkpoint-6"]
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert resume_step(tmp_path / "elsewhere") is None


def test_a_stop_asked_for_while_the_model_loads_interrupts_the_loading(tmp_path):
    """Loading a model takes a minute on a CPU and there is nothing to save yet: the cancel file, seen by the
    heartbeat thread, interrupts the main thread at once. Once training runs, a request only raises the flag."""
    import threading
    import time

    stop = StopRequest(tmp_path).install()
    try:
        (tmp_path / "cancel").touch()
        threading.Timer(0.2, stop.watch_file).start()  # what the heartbeat thread does every 2 s
        began = time.time()
        with pytest.raises(Cancelled):
            while time.time() - began < 20:  # a long load, in Python or in C
                time.sleep(0.01)
        assert time.time() - began < 5 and stop.requested
    finally:
        stop.restore()
    training = StopRequest(tmp_path).install()
    try:
        training.training = True
        training.watch_file()
        assert training.requested and training()
        os.kill(os.getpid(), signal.SIGTERM)  # noted, not raised: the step finishes and is saved
        assert training.requested
    finally:
        training.restore()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
