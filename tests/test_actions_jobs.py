"""Training-job actions (⑥): an admin's, with the real worker on a tiny reranker; lower roles refused and audited."""

import json
import os
import shutil
import time

import click
import pytest

from studio import config as cfg
from studio.actions import Actor, Project
from studio.actions import jobs
from studio.errors import Forbidden, StudioError
from studio.models.registry import resolve
from studio.store import opened
from studio.store.annotators import ensure_annotator
from studio.training.config import CLI_FLAGS, TrainConfig

ADMIN, EXPERT, ANNOTATOR = Actor("ada", "admin", True), Actor("eve", "expert", True), Actor("alice", "annotator", True)
LINES = [{"query": f"q{i}", "pos": [f"answer {i}"], "neg": [f"other {i}", "noise"]} for i in range(4)]


@pytest.fixture
def project(db_path, tmp_path, monkeypatch):
    """A project whose jobs/, models/ and exports/ are in tmp_path, with a training file and its .valid twin."""
    for name, folder in (("JOBS_DIR", "jobs"), ("MODELS_DIR", "models"), ("EXPORTS_DIR", "exports")):
        monkeypatch.setattr(cfg, name, tmp_path / folder)
    run = tmp_path / "exports" / "run"
    run.mkdir(parents=True)
    for name in ("train.jsonl", "train.valid.jsonl"):
        (run / name).write_text("".join(json.dumps(line) + "\n" for line in LINES), encoding="utf-8")
    with opened(db_path) as db:
        for actor in (ADMIN, EXPERT, ANNOTATOR):
            ensure_annotator(db, actor.name, actor.role)
    return Project(db_path)


@pytest.fixture
def recipe(tmp_path, tiny_reranker) -> dict:
    """Options of a job that trains a tiny reranker in seconds."""
    return {"task": "reranker", "base": str(tiny_reranker), "train": str(tmp_path / "exports" / "run" / "train.jsonl"),
            "name": "tiny-rr", "max_steps": 4, "batch_size": 2, "group_size": 2, "query_max_len": 16,
            "passage_max_len": 32, "save_steps": 2, "lr": 1e-3}


def audit_rows(project: Project, action: str) -> list[dict]:
    with opened(project.db_path) as db:
        return list(db.query("SELECT actor, action, entity_id, after FROM audit_log WHERE action = ? ORDER BY id",
                             [action]))


def job_rows(project: Project) -> list[dict]:
    with opened(project.db_path) as db:
        return list(db.query("SELECT id, status FROM jobs ORDER BY id"))


def wait_until_ended(project: Project, job_id: int, timeout: float = 180) -> jobs.JobSnapshot:
    deadline = time.time() + timeout
    while time.time() < deadline:
        snapshot = jobs.watch(project, ADMIN, job_id)
        if not snapshot.active:
            return snapshot
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {snapshot.status}")


def test_an_admin_starts_a_job_that_trains_and_watches_it(project, recipe, tmp_path):
    job = jobs.start(project, ADMIN, recipe)
    assert job["status"] == "running" and job["created_by"] == "ada"
    config = json.loads((tmp_path / "jobs" / "00001-tiny-rr" / "config.json").read_text(encoding="utf-8"))
    assert config["valid"] == str(tmp_path / "exports" / "run" / "train.valid.jsonl"), "the twin beside the file"
    done = wait_until_ended(project, job["id"])
    assert done.status == "succeeded", done.log
    assert [m["step"] for m in done.metrics if m.get("loss") is not None] == [1, 2, 3, 4]
    assert done.last_loss["step"] == 4 and "tiny-rr" in done.job["output_dir"] and not done.worker_died
    assert (tmp_path / "models" / "tiny-rr" / "config.json").exists()
    assert jobs.watch(project, ADMIN, job["id"], log_lines=0).log == ""
    assert [(r["actor"], r["entity_id"]) for r in audit_rows(project, "job.create")] == [("ada", 1)]
    assert [r["id"] for r in jobs.list_jobs(project, ADMIN)] == [1]


def test_start_resolves_the_base_name_and_the_validation_file_in_one_place(project, recipe, tmp_path,
                                                                           tiny_reranker, monkeypatch):
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)  # nothing starts: these jobs stay queued
    shutil.copytree(tiny_reranker, tmp_path / "models" / "tiny")
    alone = tmp_path / "exports" / "alone.jsonl"
    shutil.copy(tmp_path / "exports" / "run" / "train.jsonl", alone)
    named = jobs.start(project, ADMIN, {**recipe, "base": "tiny", "name": "a"})
    default = jobs.start(project, ADMIN, TrainConfig(**{**recipe, "base": "default", "name": "b", "output_dir": "",
                                                       "train": str(alone)}))
    explicit = jobs.start(project, ADMIN, {**recipe, "name": "c", "valid": str(alone)})
    configs = [TrainConfig.load(job["job_dir"]) for job in (named, default, explicit)]
    assert configs[0].base == str(tmp_path / "models" / "tiny"), "a name in models/ is that folder"
    assert configs[1].base == resolve("default"), "'default' is what the models registry says it is"
    assert configs[0].valid.endswith("train.valid.jsonl") and configs[1].valid is None
    assert configs[2].valid == str(alone), "a validation file named is kept"
    assert [job["status"] for job in (named, default, explicit)] == ["queued"] * 3


def test_cancel_resume_and_supervision(project, recipe, monkeypatch):
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)
    job_id = jobs.start(project, ADMIN, recipe)["id"]
    assert jobs.cancel(project, ADMIN, job_id)["status"] == "cancelled"
    with pytest.raises(StudioError) as err:
        jobs.cancel(project, ADMIN, job_id)
    assert err.value.code == "job_ended" and "already ended (cancelled)" in str(err.value)
    assert jobs.resume(project, ADMIN, job_id)["status"] == "queued", "no room yet"
    assert jobs.supervise(project, max_running=1) == [job_id]
    assert jobs.supervise(project, max_running=1) == [], "started once"
    assert wait_until_ended(project, job_id).status == "succeeded"
    for action in ("job.cancel", "job.cancelled", "job.resume"):
        assert [r["actor"] for r in audit_rows(project, action)] == ["ada"], action


def test_list_jobs_refuses_a_database_that_is_not_there(tmp_path):
    with pytest.raises(StudioError) as err:
        jobs.list_jobs(Project(tmp_path / "typo.db"), ADMIN, existing=True)
    assert err.value.code == "no_database" and not (tmp_path / "typo.db").exists()


def test_training_files_are_names_inside_exports_newest_first(project, tmp_path):
    exports = tmp_path / "exports"
    (exports / "old.jsonl").write_text("{}\n", encoding="utf-8")
    (exports / "notes.txt").write_text("not a training file", encoding="utf-8")
    now = time.time()
    for age, name in ((300, "old.jsonl"), (100, "run/train.jsonl")):
        stamp = now - age
        os.utime(exports / name, (stamp, stamp))
    assert jobs.training_files(project, ADMIN) == ["run/train.jsonl", "old.jsonl"]
    shutil.rmtree(exports)
    assert jobs.training_files(project, ADMIN) == []


def test_base_models_start_with_the_default(project, tmp_path, tiny_reranker):
    shutil.copytree(tiny_reranker, tmp_path / "models" / "tiny")
    (tmp_path / "models" / "half-written").mkdir()
    names = jobs.base_models(project, ADMIN)
    assert names[0] == "default" and names.count("default") == 1, "the ★ model, by the word that means it"
    assert "tiny" in names and "half-written" not in names


def test_form_advice_counts_lines_of_a_file_named_inside_exports_only(project, tmp_path):
    advice = jobs.form_advice(project, ADMIN, task="embedder", base="default", train="run/train.jsonl",
                              batch_size=4, epochs=1, max_steps=-1)
    assert advice == jobs.FormAdvice(False, (1, 4), ("epochs", 20, 20)), "4 lines at 4 a step: 1 step, 20 epochs fix it"
    for typed in (str(tmp_path / "exports" / "run" / "train.jsonl"), "../exports/run/train.jsonl", "/etc/passwd"):
        assert jobs.form_advice(project, ADMIN, task="embedder", base="/etc", train=typed, batch_size=4, epochs=1,
                                max_steps=-1) == jobs.FormAdvice(), f"{typed}: a server path is not read"


def test_command_preview_shows_the_training_file_relative_to_the_project(project, tmp_path):
    options = {"task": "reranker", "base": "tiny", "train": "run/train.jsonl", "name": "tiny-rr", "max_steps": 4}
    command = jobs.command_preview(project, ADMIN, options)
    assert command.startswith("studio --db ") and " train " in command
    assert "--train exports/run/train.jsonl" in command
    assert str(tmp_path) not in command
    assert "--train '<exports/…/train.jsonl>'" in jobs.command_preview(project, ADMIN, {**options, "train": ""})
    for typed in ("/etc/passwd", "../x.jsonl", "~/x.jsonl"):
        with pytest.raises(StudioError, match="must be a name inside exports/"):
            jobs.command_preview(project, ADMIN, {**options, "train": typed})
    with pytest.raises(StudioError, match="must be a name inside models/"):
        jobs.command_preview(project, ADMIN, {**options, "base": str(tmp_path / "models" / "tiny")})


CALLS = {
    "form_advice": lambda project, actor, recipe: jobs.form_advice(project, actor, task="embedder", base="default",
                                                                   train="run/train.jsonl", batch_size=4, epochs=1),
    "command_preview": lambda project, actor, recipe: jobs.command_preview(project, actor, {"task": "embedder",
                                                                           "train": "run/train.jsonl", "name": "x"}),
    "start": lambda project, actor, recipe: jobs.start(project, actor, {**recipe, "name": "other"}),
    "cancel": lambda project, actor, recipe: jobs.cancel(project, actor, 1),
    "resume": lambda project, actor, recipe: jobs.resume(project, actor, 1),
    "list_jobs": lambda project, actor, recipe: jobs.list_jobs(project, actor),
    "watch": lambda project, actor, recipe: jobs.watch(project, actor, 1),
    "training_files": lambda project, actor, recipe: jobs.training_files(project, actor),
    "base_models": lambda project, actor, recipe: jobs.base_models(project, actor),
}


@pytest.mark.parametrize("actor", [EXPERT, ANNOTATOR], ids=lambda a: a.role)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_only_an_admin_may(project, recipe, tmp_path, monkeypatch, actor, name):
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)
    job = jobs.start(project, ADMIN, recipe)  # a queued job the refused action must leave alone
    with pytest.raises(Forbidden):
        CALLS[name](project, actor, recipe)
    assert job_rows(project) == [{"id": job["id"], "status": "queued"}]
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == ["00001-tiny-rr"]
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []
    refused = audit_rows(project, "refused")
    assert [(r["actor"], json.loads(r["after"])["action"]) for r in refused] == [(actor.name, f"jobs.{name}")]
    assert [r["actor"] for r in audit_rows(project, "job.cancel") + audit_rows(project, "job.resume")] == []


def test_a_config_reads_back_the_same_from_its_command_line(tmp_path, monkeypatch):
    """TrainConfig.to_argv gives flags the real `studio train` parses back into the same settings."""
    from studio.cli import cli

    train, valid = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    for path in (train, valid):
        path.write_text("{}\n", encoding="utf-8")
    config = TrainConfig(task="reranker", base="BAAI/bge-m3", train=str(train), valid=str(valid), name="m v1",
                         output_dir="", method="lora", epochs=2.5, max_steps=7, batch_size=3, lr=0.000123,
                         group_size=4, query_max_len=17, passage_max_len=33, temperature=0.07, warmup_ratio=0.25,
                         precision="bf16", gradient_checkpointing=True, lora_r=8, lora_alpha=12, lora_dropout=0.1,
                         lora_targets=["q", "v"], freeze_embeddings=True, freeze_layers=2, seed=7, save_every=2.5)
    argv = config.to_argv()
    assert set(CLI_FLAGS.values()) <= set(argv), "every setting differs from the recipe, so every flag is there"
    recipe_only = TrainConfig(task="embedder", base="default", train="x.jsonl", name="n", output_dir="")
    assert recipe_only.to_argv() == ["--task", "embedder", "--base", "default", "--train", "x.jsonl", "--name", "n"]

    class Parsed(Exception):
        pass

    def capture(project, actor, options, **kwargs):
        raise Parsed(options)

    monkeypatch.setattr(jobs, "start", capture)
    for wanted in (config, TrainConfig(**{**vars(recipe_only), "train": str(train)})):
        with pytest.raises(Parsed) as parsed:
            cli.main(["--db", str(tmp_path / "x.db"), "train", *wanted.to_argv()], standalone_mode=False)
        assert jobs.make_config(parsed.value.args[0]) == wanted
    with pytest.raises(click.UsageError):  # the flags are the CLI's own: a misspelt one would not parse
        cli.main(["--db", str(tmp_path / "x.db"), "train", *argv, "--no-such-flag"], standalone_mode=False)


def test_the_cli_cancel_waits_for_the_step_and_says_where_resume_continues(project, recipe, monkeypatch):
    """`studio jobs cancel` waits while the worker finishes its (slow) step and saves, showing the seconds; every
    message then says where a resume continues, from the checkpoints on disk."""
    from click.testing import CliRunner

    from studio.cli import cli
    from tests.test_jobs import fake_worker

    fake_worker(monkeypatch, step_seconds=2)
    job = jobs.start(project, ADMIN, recipe)
    assert job["status"] == "running"
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(job["job_dir"], "heartbeat")) and time.time() < deadline:
        time.sleep(0.05)
    runner = CliRunner()
    db = ["--db", str(project.db_path)]
    out = runner.invoke(cli, [*db, "jobs", "cancel", "1"])
    assert out.exit_code == 0, out.output
    assert "stopping after the current step, then saving a checkpoint" in out.output
    assert "job 1: cancelled. Resume continues from step 7 (its last checkpoint)." in out.output
    listing = runner.invoke(cli, [*db, "jobs"]).output
    assert "cancelled" in listing and "Resume continues from step 7" in listing
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)
    out = runner.invoke(cli, [*db, "jobs", "resume", "1"])
    assert out.exit_code == 0 and "job 1: queued; continues from step 7" in out.output, out.output
    out = runner.invoke(cli, [*db, "jobs", "cancel", "--no-wait", "1"])
    assert "job 1: cancelled. Resume continues from step 7" in out.output, out.output
    for folder in (os.path.join(job["job_dir"], "checkpoints"),):
        shutil.rmtree(folder)
    out = runner.invoke(cli, [*db, "jobs", "resume", "1"])
    assert "job 1: queued; no checkpoint yet: starts again from step 1" in out.output, out.output


def test_a_second_job_with_the_name_of_a_queued_or_running_one_is_refused_naming_it(project, recipe, monkeypatch):
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)
    first = jobs.start(project, ADMIN, recipe)
    with pytest.raises(StudioError) as err:
        jobs.start(project, ADMIN, recipe)
    assert err.value.code == "job_name_queued" and f"job {first['id']} named 'tiny-rr'" in str(err.value)
    assert "任务 1" in err.value.message("zh-CN")
    with opened(project.db_path) as db:
        db.execute("UPDATE jobs SET status = 'running' WHERE id = ?", [first["id"]])
    with pytest.raises(StudioError, match="is running now"):
        jobs.start(project, ADMIN, {**recipe, "name": " tiny-rr "})
    assert job_rows(project) == [{"id": first["id"], "status": "running"}], "nothing recorded"
    assert jobs.start(project, ADMIN, {**recipe, "name": "tiny-rr-2"})["status"] == "queued"


@pytest.mark.parametrize("status, en, zh", [
    ("succeeded", "job 1 has finished: nothing to resume", "任务 1 已完成：没有可继续的内容"),
    ("queued", "job 1 is already waiting to start: nothing to resume", "任务 1 已在排队等待启动：没有可继续的内容"),
    ("running", "job 1 is still running: nothing to resume", "任务 1 仍在运行：没有可继续的内容")])
def test_resume_of_a_job_that_cannot_resume_says_why_in_words(project, recipe, monkeypatch, status, en, zh):
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)
    job_id = jobs.start(project, ADMIN, recipe)["id"]
    with opened(project.db_path) as db:
        db.execute("UPDATE jobs SET status = ? WHERE id = ?", [status, job_id])
    with pytest.raises(StudioError) as err:
        jobs.resume(project, ADMIN, job_id)
    assert (err.value.message("en"), err.value.message("zh-CN")) == (en, zh)


def test_the_command_preview_names_the_database_and_prints_whole_numbers_as_integers(project, monkeypatch,
                                                                                     tmp_path):
    monkeypatch.chdir(tmp_path)
    options = {"task": "embedder", "train": "run/train.jsonl", "name": "m", "epochs": 20.0, "lr": 2e-5}
    command = jobs.command_preview(project, ADMIN, options)
    assert command.startswith(f"studio --db {project.db_path.relative_to(tmp_path)} train ")
    assert "--epochs 20 " in command + " " and "20.0" not in command and "--lr 2e-05" in command
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert jobs.command_preview(project, ADMIN, options).startswith(f"studio --db {project.db_path.name} train "), \
        "a database outside the working folder is named, never shown as the server's path"
