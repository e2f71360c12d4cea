"""Job supervision with the real worker process: queue, cancel, a killed worker, resume."""

import json
import os
import signal
import sys
import time

import pytest

from studio import config as cfg
from studio.errors import StudioError
from studio.store import connect
from studio.store import jobs as store_jobs
from studio.training import jobs, preflight
from studio.training.checkpoints import resume_step
from studio.training.config import TrainConfig
from studio.training.metrics import read_metrics
from tests.tiny_models import build_tiny_reranker

LINES = [
    {"query": "warfarin and vitamin K", "pos": ["Vitamin K rich foods change how warfarin works."],
     "neg": ["Statins lower LDL cholesterol.", "Ibuprofen can raise blood pressure.", "Sleep hygiene tips."]},
    {"query": "儿童发烧多少度要去医院", "pos": ["三个月以下婴儿体温超过38℃应立即就医。"],
     "neg": ["高血压患者应限制盐摄入。", "糖尿病足的日常护理。", "流感疫苗每年接种。"]},
]


# A stand-in for the worker whose current step takes `step_seconds` to finish once it is asked to stop: it beats
# (or, with beating 0, goes silent, as a frozen process does), then saves checkpoint-7, writes result.json and exits 3.
FAKE_WORKER = r"""
import json, os, sys, time
from pathlib import Path
job, step_seconds, beating = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
give_up = time.time() + 60  # never outlive a failed test
def beat():
    (job / "heartbeat").write_text(f"{os.getpid()} {int(time.time())}")
(job / "phase").write_text("training")
while not (job / "cancel").exists() and time.time() < give_up:
    beat(); time.sleep(0.1)
end = time.time() + step_seconds
while time.time() < end:
    if beating:
        beat()
    time.sleep(0.1)
(job / "checkpoints" / "checkpoint-7").mkdir(parents=True, exist_ok=True)
(job / "checkpoints" / "checkpoint-7" / "trainer_state.json").write_text("{}")
(job / "result.json").write_text(json.dumps({"status": "cancelled", "model_dir": None, "error": None,
                                             "final": {"step": 7, "checkpoint_step": 7}}))
sys.exit(3)
"""


def fake_worker(monkeypatch, step_seconds: float, beating: bool = True) -> None:
    """Launch FAKE_WORKER instead of the real worker (studio.training.jobs.command)."""
    monkeypatch.setattr(jobs, "command", lambda job_dir, gpus=1: [
        sys.executable, "-c", FAKE_WORKER, str(job_dir), str(step_seconds), "1" if beating else "0"])


def wait_for_heartbeat(job: dict, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not os.path.exists(os.path.join(job["job_dir"], "heartbeat")) and time.time() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny_reranker(tmp_path_factory):
    return str(build_tiny_reranker(tmp_path_factory.mktemp("tiny") / "reranker"))


@pytest.fixture
def setup(tmp_path, tiny_reranker):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in LINES), encoding="utf-8")
    db = connect(tmp_path / "jobs.db")

    def new_job(name: str, max_steps: int = 4, save_steps: int = 2, on=db, models: str = "models", **settings) -> int:
        recipe = {"task": "reranker", "base": tiny_reranker, "train": str(train), "name": name, "output_dir": "",
                  "max_steps": max_steps, "batch_size": 2, "group_size": 2, "query_max_len": 16,
                  "passage_max_len": 32, "save_steps": save_steps, "lr": 1e-3}
        config = TrainConfig(**{**recipe, **settings})
        return jobs.create(on, config, jobs_dir=tmp_path / "jobs", models_dir=tmp_path / models)

    return db, new_job, tmp_path


def wait_for(db, job_id, statuses=("succeeded", "failed", "cancelled"), timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.refresh(db, job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job['status']}")


def start_and_wait_for_checkpoint(db, job_id, timeout=120) -> dict:
    """Start the queue and return the job row once its worker has written a first checkpoint."""
    jobs.start_queued(db)
    job = store_jobs.get_job(db, job_id)
    deadline = time.time() + timeout
    while not jobs.checkpoints(job["job_dir"]) and time.time() < deadline:
        time.sleep(0.2)
    assert jobs.checkpoints(job["job_dir"]), "a checkpoint was written"
    return job


def test_create_refuses_what_would_fail_later(setup, tmp_path):
    db, new_job, _ = setup
    with pytest.raises(StudioError) as err:
        new_job("../escape")
    assert err.value.code == "bad_model_name"
    (tmp_path / "models" / "taken").mkdir(parents=True)
    with pytest.raises(StudioError) as err:
        new_job("taken")
    assert err.value.code == "model_exists"
    with pytest.raises(StudioError) as err:
        jobs.create(db, TrainConfig(task="embedder", base="default", train=str(tmp_path / "nope.jsonl"), name="x",
                                    output_dir=""))
    assert err.value.code == "train_file_missing"


def test_two_databases_share_one_jobs_folder(setup, tmp_path):
    """Each database numbers its jobs from 1: the second job 1 gets a folder of its own, and both run."""
    db, new_job, _ = setup
    stale = tmp_path / "jobs" / "00001-other"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("left by a deleted database")
    other = connect(tmp_path / "other.db")
    first, second = new_job("same"), new_job("same", on=other, models="models-other")
    third = new_job("other", on=other, models="models-other")
    assert first == second == 1 and third == 2
    dirs = [store_jobs.get_job(db, first)["job_dir"], store_jobs.get_job(other, second)["job_dir"],
            store_jobs.get_job(other, third)["job_dir"]]
    assert [os.path.basename(d) for d in dirs] == ["00001-same", "00001-same-2", "00002-other"]
    assert (stale / "config.json").read_text() == "left by a deleted database"
    assert jobs.start_queued(db) == [first] and jobs.start_queued(other, max_running=2) == [second, third]
    for database, job_id in ((db, first), (other, second), (other, third)):
        done = wait_for(database, job_id)
        assert done["status"] == "succeeded", jobs.log_tail(done["job_dir"])
    assert (tmp_path / "models" / "same" / "config.json").exists()
    assert (tmp_path / "models-other" / "same" / "config.json").exists()


@pytest.mark.parametrize("settings, code", [
    ({"batch_size": 0}, "train_bad_count"),
    ({"max_steps": -1, "epochs": 0}, "train_no_steps"),
    ({"lr": -1.0}, "train_not_positive"),
    ({"group_size": 1}, "train_bad_group_size"),
    ({"precision": "fp8"}, "train_bad_choice"),
    ({"base": "no-such-org/no-such-model"}, "base_not_available"),
    ({"base": "./no-such-folder"}, "base_not_found"),
    ({"train": "train.csv"}, "train_file_suffix"),
    ({"train": "csv.jsonl"}, "train_line_not_json"),
    ({"train": "no-pos.jsonl"}, "train_line_texts"),
    ({"train": "missing.jsonl"}, "train_file_missing"),
    ({"valid": "missing.valid.jsonl"}, "file_not_found"),
    ({"train": "latin1.jsonl"}, "invalid_utf8"),
    ({"warmup_ratio": 1.5}, "train_bad_range"),
    ({"lora_dropout": -0.1}, "train_bad_range"),
    ({"freeze_layers": -1}, "train_bad_natural"),
    ({"save_every": float("nan")}, "train_bad_range"),
    ({"method": "lora", "lora_targets": []}, "train_no_lora_targets"),
])
def test_invalid_settings_leave_no_row_and_no_folder(setup, tmp_path, monkeypatch, settings, code):
    db, new_job, _ = setup
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "train.csv").write_text("query,pos,neg\nq,p,n\n", encoding="utf-8")
    (tmp_path / "csv.jsonl").write_text("query,pos,neg\nq,p,n\n", encoding="utf-8")
    (tmp_path / "no-pos.jsonl").write_text(json.dumps(LINES[0]) + "\n" + json.dumps({"query": "q", "neg": ["n"]}),
                                           encoding="utf-8")
    (tmp_path / "latin1.jsonl").write_bytes((json.dumps(LINES[0]) + "\n").encode() + json.dumps(
        {"query": "café", "pos": ["p"], "neg": ["n"]}, ensure_ascii=False).encode("latin-1") + b"\n")
    for key in ("train", "valid"):
        if key in settings:
            settings = {**settings, key: str(tmp_path / settings[key])}
    with pytest.raises(StudioError) as err:
        new_job("bad", **settings)
    assert err.value.code == code
    assert store_jobs.list_jobs(db) == [] and not (tmp_path / "jobs").exists()
    if code == "train_line_texts":
        where = f"{tmp_path / 'no-pos.jsonl'}, line 2, field 'pos'"
        assert str(err.value) == f"{where}: must be a non-empty list of strings"
    if code == "invalid_utf8":
        assert str(err.value).startswith(f"{tmp_path / 'latin1.jsonl'}, line 2: not valid UTF-8")
    if code.startswith("train_bad") or code == "train_no_lora_targets":
        assert err.value.params["field"] == next(k for k in settings if k != "method")


def test_a_job_folder_that_cannot_be_written_leaves_no_row(setup, tmp_path, monkeypatch):
    db, new_job, _ = setup

    def full_disk(self, job_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TrainConfig, "save", full_disk)
    with pytest.raises(StudioError) as err:
        new_job("full")
    assert err.value.code == "job_folder_failed" and "No space left on device" in str(err.value)
    assert store_jobs.list_jobs(db) == [] and list((tmp_path / "jobs").iterdir()) == []
    monkeypatch.undo()
    assert new_job("full") == 1 and os.path.basename(store_jobs.get_job(db, 1)["job_dir"]) == "00001-full"


def test_resume_refuses_a_job_that_can_no_longer_run(setup, tmp_path):
    db, new_job, _ = setup
    job_id = new_job("gone")
    store_jobs.mark_ended(db, job_id, "failed", error="stopped")
    (tmp_path / "train.jsonl").unlink()
    with pytest.raises(StudioError) as err:
        jobs.resume(db, job_id)
    assert err.value.code == "train_file_missing" and store_jobs.get_job(db, job_id)["status"] == "failed"
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in LINES),
                                          encoding="utf-8")
    (tmp_path / "models" / "gone").mkdir(parents=True)  # the name was taken meanwhile: its export would fail
    with pytest.raises(StudioError) as err:
        jobs.resume(db, job_id)
    assert err.value.code == "model_exists" and store_jobs.get_job(db, job_id)["status"] == "failed"


def test_one_job_at_a_time_and_a_queued_job_cancels_at_once(setup, tmp_path):
    db, new_job, _ = setup
    first, second = new_job("first"), new_job("second")
    assert jobs.start_queued(db, max_running=1) == [first]
    assert store_jobs.get_job(db, second)["status"] == "queued"
    assert jobs.cancel(db, second)["status"] == "cancelled"
    done = wait_for(db, first)
    assert done["status"] == "succeeded" and done["exit_code"] == 0
    assert (tmp_path / "models" / "first" / "config.json").exists()
    losses = [m["loss"] for m in read_metrics(done["job_dir"]) if m.get("loss") is not None]
    assert losses and all(loss == loss for loss in losses), "finite losses reached metrics.jsonl"


def test_a_killed_worker_is_detected_and_resume_finishes_it(setup, tmp_path):
    db, new_job, _ = setup
    job_id = new_job("killed", max_steps=40, save_steps=2)
    job = start_and_wait_for_checkpoint(db, job_id)
    os.killpg(job["pid"], signal.SIGKILL)  # as if the machine's OOM killer struck
    failed = wait_for(db, job_id)
    assert failed["status"] == "failed" and "resume" in failed["error"]
    first_checkpoint = int(jobs.checkpoints(job["job_dir"])[-1].name.split("-")[1])
    jobs.resume(db, job_id)
    assert jobs.start_queued(db) == [job_id]
    done = wait_for(db, job_id)
    assert done["status"] == "succeeded", jobs.log_tail(done["job_dir"])
    steps = [m["step"] for m in read_metrics(done["job_dir"]) if m.get("loss") is not None]
    assert max(steps) == 40 and first_checkpoint >= 2
    assert (tmp_path / "models" / "killed" / "config.json").exists()


def test_cancel_a_running_job_keeps_its_checkpoint(setup):
    db, new_job, _ = setup
    job_id = new_job("cancelled", max_steps=400, save_steps=2)
    job = start_and_wait_for_checkpoint(db, job_id)
    assert jobs.cancel(db, job_id)["status"] == "cancelled"
    assert jobs.checkpoints(job["job_dir"])
    with pytest.raises(StudioError):
        jobs.resume(db, store_jobs.create_job(db, name="n", task="embedder", job_dir="x", output_dir="y"))


def test_sigterm_makes_the_worker_save_a_checkpoint_at_its_step_and_resume_continues_there(setup):
    """`kill PID` (SIGTERM: what a service manager, or the old Cancel, sends): the worker finishes its step, saves a
    checkpoint there, says cancelled and exits 3; resume continues from that step, with no step logged twice."""
    db, new_job, _ = setup
    job_id = new_job("termed", max_steps=400, save_steps=1000, save_every=0.0)  # no checkpoint but the stop's
    jobs.start_queued(db)
    job = store_jobs.get_job(db, job_id)
    deadline = time.time() + 120
    while not read_metrics(job["job_dir"]) and time.time() < deadline:
        time.sleep(0.1)
    assert read_metrics(job["job_dir"]), jobs.log_tail(job["job_dir"])
    os.kill(job["pid"], signal.SIGTERM)
    ended = wait_for(db, job_id)
    assert ended["status"] == "cancelled" and ended["exit_code"] == 3 and ended["error"] is None
    result = jobs.read_result(job["job_dir"])
    logged = [m["step"] for m in read_metrics(job["job_dir"]) if m.get("loss") is not None]
    assert result["status"] == "cancelled" and result["final"]["checkpoint_step"] == logged[-1]
    assert resume_step(job["job_dir"]) == logged[-1] and [p.name for p in jobs.checkpoints(job["job_dir"])] == [
        f"checkpoint-{logged[-1]}"]
    log = jobs.log_tail(job["job_dir"], 400)
    assert "stop requested" in log and f"resume continues from step {logged[-1]}" in log

    config = TrainConfig.load(job["job_dir"])
    config.max_steps = logged[-1] + 2
    config.save(job["job_dir"])
    jobs.resume(db, job_id)
    jobs.start_queued(db)
    done = wait_for(db, job_id)
    assert done["status"] == "succeeded", jobs.log_tail(done["job_dir"])
    steps = [json.loads(line)["step"] for line in open(os.path.join(done["job_dir"], "metrics.jsonl"))]
    assert steps == list(range(1, logged[-1] + 3)), "the curve goes on from the checkpoint"
    assert f"continues from step {logged[-1]}" in jobs.log_tail(done["job_dir"], 400)


def test_cancel_waits_however_long_the_step_takes_while_the_worker_beats(setup, monkeypatch):
    db, new_job, _ = setup
    monkeypatch.setattr(cfg, "HEARTBEAT_TIMEOUT_SECONDS", 1)  # a step may last far longer than this
    fake_worker(monkeypatch, step_seconds=3)
    job_id = new_job("slow-step")
    jobs.start_queued(db)
    wait_for_heartbeat(store_jobs.get_job(db, job_id))
    waited: list[float] = []
    began = time.time()
    job = jobs.cancel(db, job_id, on_wait=waited.append)
    assert time.time() - began >= 3 and job["status"] == "cancelled" and job["exit_code"] == 3
    assert waited and waited == sorted(waited), "the CLI is told how long it has waited"
    assert jobs.resume_point(job["job_dir"]) == 7


def test_cancel_without_waiting_returns_at_once_and_refresh_sees_the_end(setup, monkeypatch):
    db, new_job, _ = setup
    fake_worker(monkeypatch, step_seconds=2)
    job_id = new_job("no-wait")
    jobs.start_queued(db)
    wait_for_heartbeat(store_jobs.get_job(db, job_id))
    began = time.time()
    job = jobs.cancel(db, job_id, wait=False)
    assert time.time() - began < 1 and job["status"] == "running" and jobs.cancel_requested(job["job_dir"])
    assert wait_for(db, job_id)["status"] == "cancelled"


def test_a_worker_that_stops_heartbeating_is_still_found_dead(setup, monkeypatch):
    """Asked to stop, a worker that goes silent (frozen) is not waited for past the heartbeat timeout."""
    db, new_job, _ = setup
    monkeypatch.setattr(cfg, "HEARTBEAT_TIMEOUT_SECONDS", 1)
    fake_worker(monkeypatch, step_seconds=60, beating=False)
    job_id = new_job("frozen")
    jobs.start_queued(db)
    wait_for_heartbeat(store_jobs.get_job(db, job_id))
    began = time.time()
    job = jobs.cancel(db, job_id)
    assert time.time() - began < 10 and job["status"] == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(job["pid"], 0)  # stopped by force: it was ours, and silent
    assert jobs.resume_point(job["job_dir"]) is None, "it saved nothing: resume starts again from step 1"


def test_an_unwritable_models_folder_is_refused_at_once_naming_it(setup, tmp_path, monkeypatch):
    db, new_job, _ = setup
    (tmp_path / "blocked").write_text("a file where the models folder should be")
    with pytest.raises(StudioError) as err:
        new_job("nowhere", models="blocked/models")
    assert err.value.code == "models_folder_unwritable" and str(tmp_path / "blocked" / "models") in str(err.value)
    assert store_jobs.list_jobs(db) == [] and not (tmp_path / "jobs").exists()

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(preflight.tempfile, "mkstemp", denied)
    with pytest.raises(StudioError) as err:
        new_job("denied", models="models")
    assert err.value.code == "job_folder_failed" and "Permission denied" in str(err.value)
    assert store_jobs.list_jobs(db) == [] and not (tmp_path / "jobs").exists() and not (tmp_path / "models").exists()


def test_a_job_the_disk_cannot_hold_is_refused_before_it_is_recorded(setup, tmp_path, monkeypatch, tiny_reranker):
    db, new_job, _ = setup
    weights = preflight.weights_bytes(tmp_path.__class__(tiny_reranker))
    train = str(tmp_path / "train.jsonl")
    need = preflight.estimate(TrainConfig(task="reranker", base=tiny_reranker, train=train, name="n", output_dir=""))
    assert need.checkpoint == 3 * weights and need.checkpoints == 3, "weights + Adam's two moments, 2 kept + 1"
    assert need.models == weights and need.jobs == 3 * need.checkpoint + 2 * os.path.getsize(train)
    lora = preflight.estimate(TrainConfig(task="reranker", base=tiny_reranker, train=train, name="n", output_dir="",
                                          method="lora"))
    assert lora.checkpoint < need.checkpoint / 10
    free = need.jobs + need.models - 1
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: type("Usage", (), {"free": free})())
    with pytest.raises(StudioError) as err:
        new_job("too-big")
    assert err.value.code == "train_disk_full" and str(tmp_path / "jobs") in str(err.value)
    assert "3 checkpoints" in str(err.value)
    assert store_jobs.list_jobs(db) == [] and not (tmp_path / "jobs").exists()
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: type("Usage", (), {"free": free + 1})())
    assert new_job("fits") == 1
