"""Fine-tuning worker: real few-step CPU runs through FlagEmbedding, export that loads as is, cancel, resume, errors.

Every run overfits 8 bilingual queries (1 positive + 3 unrelated negatives each) with the whole set in one batch,
so each step sees the same data and the loss must go down. Tiny random models (tests/tiny_models.py) keep the M3
and reranker runs to a second or two; the MiniLM runs use the embedded all-MiniLM-L6-v2.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from studio.config import PROJECT_ROOT, embedded_model_path
from studio.errors import InputError, StudioError
from studio.training import planning, worker
from studio.training.base_model import base_label, check_base, passage_max_len, resolve_architecture
from studio.training.checkpoints import latest_checkpoint
from studio.training.config import TrainConfig
from studio.training.failures import WorkerError
from studio.training.job_folder import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from studio.training.metrics import METRIC_FIELDS, read_metrics
from studio.training.train_file import check_train_file

ROWS = [
    ("what are the symptoms of diabetes", "Frequent urination, thirst and fatigue are common symptoms of diabetes.",
     ["The Eiffel Tower was completed in 1889.", "Bananas are rich in potassium.",
      "The stock market closed higher on Friday."]),
    ("how is high blood pressure treated", "Hypertension is treated with lifestyle changes and ACE inhibitors.",
     ["Football is played by two teams of eleven.", "Mount Everest is the highest mountain.",
      "Python is a programming language."]),
    ("what causes asthma attacks", "Asthma attacks are triggered by allergens, cold air, exercise and infections.",
     ["The train to Paris leaves at noon.", "Chocolate cake needs cocoa and sugar.", "Jupiter is the largest planet."]),
    ("how long does a cold last", "A common cold usually lasts seven to ten days.",
     ["The museum opens on Sundays.", "Guitars usually have six strings.", "Rice grows in flooded fields."]),
    ("糖尿病有哪些症状", "糖尿病的常见症状包括多尿、口渴和疲劳。", ["长城是中国古代的防御工程。", "今天的股市小幅上涨。", "熊猫主要吃竹子。"]),
    ("高血压如何治疗", "高血压的治疗包括改变生活方式和服用降压药。", ["足球比赛每队有十一名球员。", "北京是中国的首都。", "咖啡含有咖啡因。"]),
    ("哮喘发作的原因是什么", "过敏原、冷空气和运动都可能引发哮喘发作。", ["火车将在中午出发。", "月饼是中秋节的传统食品。", "长江是中国最长的河流。"]),
    ("感冒一般持续多久", "普通感冒通常持续七到十天。", ["博物馆周日开放。", "吉他通常有六根弦。", "水稻生长在水田里。"]),
]
PROBE = [ROWS[0][0], ROWS[0][1], ROWS[4][0], ROWS[4][1]]
PAIRS = [[q, p] for q, p, _ in ROWS[:2]] + [[ROWS[4][0], ROWS[4][2][0]]]
FINGERPRINT = "feedc0ffee"


def write_jsonl(path: Path, rows=ROWS, scores: bool = False) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for query, pos, neg in rows:
            record = {"query": query, "pos": [pos], "neg": list(neg)}
            if scores:
                record.update(pos_scores=[1.0], neg_scores=[0.0] * len(neg))
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    train = write_jsonl(root / "train.jsonl")
    (root / "train.manifest.json").write_text(json.dumps({
        "format": "flagembedding-jsonl", "source_fingerprint": FINGERPRINT, "created": "2024-01-01T00:00:00+00:00",
        "counts": {"train_queries": 8, "valid_queries": 2}}))
    return {"train": train, "valid": write_jsonl(root / "train.valid.jsonl", ROWS[:2] + ROWS[4:6]),
            "scored": write_jsonl(root / "scored.jsonl", scores=True)}


def make_job(tmp_path: Path, data: dict, **overrides) -> tuple[Path, TrainConfig]:
    """A job folder with config.json: 12 steps over the whole set per batch, short lengths, no warmup."""
    job = tmp_path / "job"
    job.mkdir()
    settings = dict(task="embedder", base="default", train=str(data["train"]), name="tuned",
                    output_dir=str(tmp_path / "models" / "tuned"), max_steps=12, batch_size=8, group_size=4,
                    query_max_len=32, passage_max_len=48, warmup_ratio=0.0, save_steps=100, logging_steps=1)
    settings.update(overrides)
    config = TrainConfig(**settings)
    config.save(job)
    return job, config


def result(job: Path) -> dict:
    return json.loads((job / "result.json").read_text(encoding="utf-8"))


def assert_trained(job: Path, code: int, config: TrainConfig) -> Path:
    """Exit 0, succeeded, finite decreasing losses, and a model folder with card and studio_model.json."""
    assert code == EXIT_OK, (job / "result.json").read_text() if (job / "result.json").exists() else code
    res = result(job)
    assert res["status"] == "succeeded" and res["error"] is None
    out = Path(res["model_dir"])
    assert out == Path(config.output_dir).resolve()
    losses = [row["loss"] for row in read_metrics(job) if "loss" in row]
    assert len(losses) == config.max_steps and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    rows = read_metrics(job)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, config.max_steps + 1))
    assert all(r["total_steps"] == config.max_steps and "time" in r and "lr" in r for r in rows)
    assert all(r["samples_per_s"] > 0 and r["eta_s"] >= 0 and "grad_norm" in r for r in rows)
    assert set().union(*rows) <= set(METRIC_FIELDS)
    assert res["final"]["step"] == config.max_steps and res["final"]["loss"] == losses[-1]
    info = json.loads((out / "studio_model.json").read_text(encoding="utf-8"))
    assert {"task", "architecture", "base", "method", "job_dir", "created", "final_loss", "train_manifest"} <= set(info)
    assert info["task"] == config.task and info["method"] == config.method and info["final_loss"] == losses[-1]
    assert info["job_dir"] == str(job.resolve())
    card = (out / "README.md").read_text(encoding="utf-8")
    named = base_label(config.base)  # "default" (the embedded model) by its name, not its folder in .venv
    assert info["base"] == named and f"`{named}`" in card and config.method in card and config.task in card
    if config.base == "default":
        assert named == "all-MiniLM-L6-v2"
    if Path(config.train).with_name("train.manifest.json").exists() and Path(config.train).name == "train.jsonl":
        assert info["train_manifest"]["source_fingerprint"] == FINGERPRINT and FINGERPRINT in card
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not any(out.glob("adapter_*")), "LoRA must be merged, not shipped as an adapter"
    return out


def st_encode(folder: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(PROBE, convert_to_numpy=True)


def rerank(folder: Path) -> np.ndarray:
    from FlagEmbedding import FlagReranker

    return np.array(FlagReranker(str(folder), use_fp16=False, devices="cpu").compute_score(PAIRS))


# --- helpers -------------------------------------------------------------------------------------------------------
def test_pooling_architecture_and_jsonl_checks(tmp_path, tiny_m3):
    from studio.training.embedder import base_pooling

    assert base_pooling(embedded_model_path()) == "mean"
    assert base_pooling(tiny_m3) == "cls" and base_pooling(tmp_path) == "cls"
    config = TrainConfig(task="embedder", base="x", train="t.jsonl", name="n", output_dir="o")
    assert resolve_architecture(config, tiny_m3) == "m3"
    assert resolve_architecture(config, embedded_model_path()) == "encoder"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n{"query": "q", "pos": ["p"], "neg": []}\n')
    with pytest.raises(WorkerError, match=r"not valid FlagEmbedding JSONL: .*bad.jsonl, line 2, field 'neg'"):
        planning.check_jsonl(bad)
    bad.write_text('{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1, 2], "neg_scores": [0]}\n')
    with pytest.raises(WorkerError, match="pos_scores"):
        planning.check_jsonl(bad)
    assert latest_checkpoint(tmp_path / "none") is None


def test_validate_refuses_what_the_worker_refuses(tmp_path, data):
    config = TrainConfig(task="embedder", base="default", train=str(data["train"]), name="n", output_dir="",
                         group_size=1, passage_max_len=None, valid=str(data["valid"]))
    config.validate()  # an embedder may train on in-batch negatives alone; None: the base's own passage length
    for field, value, code in (("batch_size", 0, "train_bad_count"), ("query_max_len", 2.5, "train_bad_count"),
                               ("epochs", float("nan"), "train_no_steps"), ("lr", 0.0, "train_not_positive"),
                               ("temperature", 0, "train_not_positive"), ("task", "ranker", "train_bad_choice"),
                               ("distill", "yes", "train_bad_choice")):
        with pytest.raises(StudioError) as err:
            TrainConfig(**{**config.__dict__, field: value}).validate()
        assert err.value.code == code and (err.value.params.get("field") in (field, None)), (field, err.value)
    TrainConfig(**{**config.__dict__, "epochs": 0, "max_steps": 5}).validate()  # max_steps alone is enough


def test_training_file_checks_are_bounded_and_name_the_line(tmp_path):
    rows = [json.dumps({"query": f"q{i}", "pos": ["p"], "neg": ["n"]}) for i in range(150)]
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(rows[:120] + ["not json"] + rows[120:]) + "\n", encoding="utf-8")
    assert check_train_file(big).lines == 100  # line 121 is the worker's to find: big files stay fast
    with pytest.raises(InputError) as err:
        check_train_file(big, limit=200)
    assert err.value.code == "train_line_not_json" and err.value.line == 121
    scored = tmp_path / "scored.jsonl"
    scored.write_text(json.dumps({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1], "neg_scores": [0]})
                      + "\n" + rows[0] + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        check_train_file(scored)  # distill auto: the first line has scores, so every line needs them
    assert err.value.code == "train_no_scores" and err.value.line == 2
    assert check_train_file(scored, distill="off").lines == 2
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no data rows"):
        check_train_file(tmp_path / "empty.jsonl")
    (tmp_path / "list.jsonl").write_text('["q", "p"]\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1: each line must be a JSON object"):
        check_train_file(tmp_path / "list.jsonl")


def test_base_resolves_like_the_worker_without_downloading(tmp_path, monkeypatch, tiny_m3):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert check_base("default") == "default"
    models = tmp_path / "models"
    (models / "mine").mkdir(parents=True)
    assert check_base("mine", models) == str(models / "mine") and check_base(str(tiny_m3)) == str(tiny_m3)
    with pytest.raises(StudioError) as err:
        check_base("org/model")
    assert err.value.code == "base_not_available"
    snapshot = tmp_path / "hub" / "models--org--model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    assert check_base("org/model") == "org/model"  # in the cache: the worker finds it offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert check_base("org/other") == "org/other"  # the worker may fetch it
    (tmp_path / "file.bin").write_text("x")
    for base, code in ((str(tmp_path / "file.bin"), "base_is_file"), (str(tmp_path / "gone"), "base_not_found"),
                       ("a/b/c", "base_not_found"), ("", "base_not_found")):
        with pytest.raises(StudioError) as err:
            check_base(base)
        assert err.value.code == code, base


# --- embedders -----------------------------------------------------------------------------------------------------
def test_minilm_dense_full_subprocess(tmp_path, data):
    """Through `python -m studio.training.worker` as the app launches it; mean pooling kept, normalised."""
    job, config = make_job(tmp_path, data, lr=1e-4)
    with open(job / "log.txt", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "studio.training.worker", str(job)], cwd=PROJECT_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        proc.wait(timeout=300)
    log_text = (job / "log.txt").read_text(encoding="utf-8")
    assert "step 12/12" in log_text and "model written to" in log_text, log_text[-3000:]
    pid, beat = (job / "heartbeat").read_text().split()
    assert int(pid) == proc.pid and int(beat) > 0
    out = assert_trained(job, proc.returncode, config)
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert json.loads((out / "studio_model.json").read_text())["architecture"] == "encoder"
    tuned, base = st_encode(out), st_encode(embedded_model_path())
    assert tuned.shape == base.shape and np.allclose(np.linalg.norm(tuned, axis=1), 1, atol=1e-4)
    assert np.abs(tuned - base).max() > 1e-3
    # save_steps 100 > 12 steps: only the Trainer's end-of-training checkpoint.
    assert [p.name for p in (job / "checkpoints").glob("checkpoint-*")] == ["checkpoint-12"]


def test_minilm_dense_lora_merged(tmp_path, data):
    job, config = make_job(tmp_path, data, method="lora", lr=1e-3)
    out = assert_trained(job, worker.main([str(job)]), config)
    assert not (out / "adapter_config.json").exists()
    from safetensors.torch import load_file

    keys = load_file(str(out / "model.safetensors")).keys()
    assert not any("lora" in k for k in keys)
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(out))  # a plain BertModel: no peft involved
    assert type(model).__name__ == "BertModel"
    assert np.abs(st_encode(out) - st_encode(embedded_model_path())).max() > 1e-3


def test_tiny_m3_unified_with_validation(tmp_path, data, tiny_m3):
    from FlagEmbedding import BGEM3FlagModel

    job, config = make_job(tmp_path, data, base=str(tiny_m3), lr=1e-3, valid=str(data["valid"]),
                           extra={"eval_steps": 5})
    out = assert_trained(job, worker.main([str(job)]), config)
    evals = [(r["step"], r["eval_loss"]) for r in read_metrics(job) if "eval_loss" in r]
    assert [s for s, _ in evals] == [5, 10, 12] and all(math.isfinite(v) for _, v in evals)
    assert evals[-1][1] < evals[0][1]  # the validation queries are among the training ones: it must drop too
    assert result(job)["final"]["eval_loss"] == evals[-1][1]
    assert {"colbert_linear.pt", "sparse_linear.pt", "modules.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "studio_model.json").read_text())["architecture"] == "m3"

    def encode(folder):
        model = BGEM3FlagModel(str(folder), use_fp16=False, devices="cpu")
        return model.encode(PROBE, return_dense=True, return_sparse=True, return_colbert_vecs=True)

    tuned, base = encode(out), encode(tiny_m3)
    assert np.abs(tuned["dense_vecs"] - base["dense_vecs"]).max() > 1e-3
    assert np.abs(tuned["colbert_vecs"][0] - base["colbert_vecs"][0]).max() > 1e-3
    assert tuned["lexical_weights"] != base["lexical_weights"]
    # The sentence-transformers view of the same folder is M3's dense part (CLS, normalised).
    assert np.allclose(st_encode(out), tuned["dense_vecs"], atol=1e-4)


# --- rerankers -----------------------------------------------------------------------------------------------------
def test_tiny_reranker_full(tmp_path, data, tiny_reranker):
    from transformers import AutoModelForSequenceClassification

    job, config = make_job(tmp_path, data, task="reranker", base=str(tiny_reranker), lr=1e-2)
    out = assert_trained(job, worker.main([str(job)]), config)
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert model.config.num_labels == 1
    assert np.abs(rerank(out) - rerank(tiny_reranker)).max() > 1e-3


def test_default_reranker_gets_a_new_head(tmp_path, data):
    """all-MiniLM-L6-v2 has no classification head: it is created (num_labels=1) and trained."""
    from transformers import AutoModelForSequenceClassification, set_seed

    job, config = make_job(tmp_path, data, task="reranker", base="default", lr=1e-4)
    out = assert_trained(job, worker.main([str(job)]), config)
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_labels == 1
    set_seed(config.seed)  # the worker's seed: the same new head before training
    base = AutoModelForSequenceClassification.from_pretrained(str(embedded_model_path()), num_labels=1)
    tokenizer_inputs = _pair_inputs(out)
    with torch.no_grad():
        tuned, untuned = model(**tokenizer_inputs).logits, base.eval()(**tokenizer_inputs).logits
    assert (tuned - untuned).abs().max() > 1e-3
    assert np.isfinite(rerank(out)).all()
    # Scored later at the pair length it trained on: query_max_len + passage_max_len.
    from studio.retrieval.flag import load_cross_encoder

    assert json.loads((out / "studio_model.json").read_text())["max_seq_length"] == 32 + 48
    assert load_cross_encoder(str(out)).max_length == 32 + 48


def _pair_inputs(folder: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return tokenizer([q for q, _ in PAIRS], [p for _, p in PAIRS], padding=True, return_tensors="pt")


def test_tiny_reranker_lora_with_distillation(tmp_path, data, tiny_reranker, capsys):
    """LoRA keeps the head trainable (modules_to_save) and merges; auto distillation uses the scores."""
    from safetensors.torch import load_file

    job, config = make_job(tmp_path, data, task="reranker", base=str(tiny_reranker), method="lora", lr=5e-2,
                           train=str(data["scored"]), lora_r=4, lora_alpha=8)
    out = assert_trained(job, worker.main([str(job)]), config)
    assert "(8 lines, knowledge distillation)" in capsys.readouterr().out
    tuned, base = load_file(str(out / "model.safetensors")), load_file(str(tiny_reranker / "model.safetensors"))
    assert set(tuned) == set(base)
    assert not torch.equal(tuned["classifier.weight"], base["classifier.weight"])
    assert not torch.equal(tuned["bert.encoder.layer.0.attention.self.query.weight"],
                           base["bert.encoder.layer.0.attention.self.query.weight"])  # LoRA merged in
    assert torch.equal(tuned["bert.encoder.layer.0.intermediate.dense.weight"],
                       base["bert.encoder.layer.0.intermediate.dense.weight"])  # not a LoRA target
    assert np.abs(rerank(out) - rerank(tiny_reranker)).max() > 1e-3


def test_freezing(tmp_path, data, tiny_reranker):
    from safetensors.torch import load_file

    job, config = make_job(tmp_path, data, task="reranker", base=str(tiny_reranker), lr=1e-2, max_steps=4,
                           freeze_embeddings=True, freeze_layers=1)
    assert worker.main([str(job)]) == EXIT_OK
    tuned = load_file(str(Path(result(job)["model_dir"]) / "model.safetensors"))
    base = load_file(str(tiny_reranker / "model.safetensors"))
    for key in ("bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.output.dense.weight"):
        assert torch.equal(tuned[key], base[key]), key
    assert not torch.equal(tuned["bert.encoder.layer.1.attention.self.query.weight"],
                           base["bert.encoder.layer.1.attention.self.query.weight"])


# --- cancel, resume, errors ----------------------------------------------------------------------------------------
def test_cancel_keeps_a_checkpoint(tmp_path, data, tiny_reranker):
    job, config = make_job(tmp_path, data, task="reranker", base=str(tiny_reranker), lr=1e-2)
    assert worker.main([str(job)], callbacks=[CancelAt(job, 1)]) == EXIT_CANCELLED
    res = result(job)
    assert res["status"] == "cancelled" and res["model_dir"] is None and res["final"]["step"] == 1
    assert res["final"]["checkpoint_step"] == 1
    assert (job / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file()
    assert not Path(config.output_dir).exists()  # no export when cancelled
    assert [r["step"] for r in read_metrics(job)] == [1]
    assert (job / "phase").read_text().strip() == "stopping"


def test_a_cancel_before_training_began_stops_at_once(tmp_path, data, tiny_reranker, capsys):
    """Asked to stop while loading, the worker has no step to finish and nothing to save: it stops there."""
    job, config = make_job(tmp_path, data, task="reranker", base=str(tiny_reranker), lr=1e-2)
    (job / "cancel").touch()
    assert worker.main([str(job)]) == EXIT_CANCELLED
    res = result(job)
    assert res["status"] == "cancelled" and res["final"] == {"step": 0, "checkpoint_step": None}
    assert not (job / "checkpoints").exists() and read_metrics(job) == [] and not Path(config.output_dir).exists()
    assert "no checkpoint yet: resume starts again from step 1" in capsys.readouterr().out


class CancelAt(TrainerCallback):
    """What the app does mid-run: create the cancel file once step `step` is done."""

    def __init__(self, job: Path, step: int):
        self.job, self.step = job, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            (self.job / "cancel").touch()


def test_resume_continues_from_the_checkpoint(tmp_path, data, tiny_m3, capsys):
    job, config = make_job(tmp_path, data, base=str(tiny_m3), lr=1e-3, max_steps=6, save_steps=3)
    assert worker.main([str(job)], callbacks=[CancelAt(job, 3)]) == EXIT_CANCELLED
    assert result(job)["status"] == "cancelled"
    checkpoint = job / "checkpoints" / "checkpoint-3"
    assert {"model.safetensors", "colbert_linear.pt", "sparse_linear.pt", "trainer_state.json"} <= {
        p.name for p in checkpoint.iterdir()}
    assert [r["step"] for r in read_metrics(job)] == [1, 2, 3]

    (job / "cancel").unlink()  # the app removes it before relaunching
    config.resume = True
    config.save(job)
    capsys.readouterr()
    assert worker.main([str(job)]) == EXIT_OK
    assert f"resumed weights from {checkpoint}" in capsys.readouterr().out
    rows = read_metrics(job)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert result(job)["status"] == "succeeded" and result(job)["final"]["step"] == 6

    # The same 6 steps without the interruption end with the same weights: the checkpoint was really loaded.
    straight = tmp_path / "straight"
    straight.mkdir()
    job2, _ = make_job(straight, data, base=str(tiny_m3), lr=1e-3, max_steps=6, save_steps=3)
    assert worker.main([str(job2)]) == EXIT_OK
    losses = [r["loss"] for r in read_metrics(job2)]
    assert np.allclose(losses, [r["loss"] for r in rows], rtol=1e-4)


def test_invalid_utf8_in_a_training_file_names_the_line(tmp_path, data):
    """Before the job is recorded (the first 100 lines) and in the worker (all of them): the file and the line."""
    good = json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]})
    bad = json.dumps({"query": "naïve", "pos": ["p"], "neg": ["n"]}, ensure_ascii=False).encode("latin-1")
    early = tmp_path / "early.jsonl"
    early.write_bytes(f"{good}\n{good}\n".encode() + bad + b"\n")
    with pytest.raises(InputError) as err:
        check_train_file(early)
    assert err.value.code == "invalid_utf8" and err.value.line == 3
    assert str(err.value) == f"{early}, line 3: not valid UTF-8 text (save the file as UTF-8)"
    assert "第 3 行" in err.value.message("zh-CN")
    late = tmp_path / "late.jsonl"
    late.write_bytes((f"{good}\n" * 149).encode() + bad + b"\n")
    assert check_train_file(late).lines == 100
    with pytest.raises(WorkerError, match=rf"{late}, line 150: not valid UTF-8"):
        planning.check_jsonl(late)


def test_bad_training_file_fails_in_plain_words(tmp_path, data):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\nnot json\n', encoding="utf-8")
    job, _ = make_job(tmp_path, data, train=str(bad))
    assert worker.main([str(job)]) == EXIT_FAILED
    res = result(job)
    assert res["status"] == "failed" and res["model_dir"] is None
    assert res["error"].startswith(f"the training file is not valid FlagEmbedding JSONL: {bad}, line 2: not JSON")
    assert "Traceback" not in res["error"]


def test_missing_distillation_scores_and_bad_base(tmp_path, data):
    job, _ = make_job(tmp_path, data, distill="on")
    assert worker.main([str(job)]) == EXIT_FAILED
    assert "pos_scores" in result(job)["error"]
    other = tmp_path / "other"
    other.mkdir()
    job2, _ = make_job(other, data, base=str(tmp_path / "no-such-model"))
    assert worker.main([str(job2)]) == EXIT_FAILED
    assert result(job2)["error"] == f"base model folder {tmp_path / 'no-such-model'} does not exist"


def test_export_replaces_only_studio_models(tmp_path, tiny_reranker):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from studio.training.model_export import export_model

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_reranker))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_reranker))
    train = write_jsonl(tmp_path / "other.jsonl")  # no manifest beside it
    config = TrainConfig(task="reranker", base=str(tiny_reranker), train=str(train), name="r",
                         output_dir=str(tmp_path / "models" / "r"))
    kwargs = dict(architecture="encoder", base_path=tiny_reranker)
    out = export_model(model, tokenizer, config, **kwargs)
    assert json.loads((out / "studio_model.json").read_text())["train_manifest"] is None
    (out / "stale.txt").write_text("from the earlier model")
    assert export_model(model, tokenizer, config, **kwargs) == out and not (out / "stale.txt").exists()
    foreign = tmp_path / "models" / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a model")
    with pytest.raises(FileExistsError, match="not a Relevance Studio model"):
        export_model(model, tokenizer, config, foreign, **kwargs)
    assert (foreign / "notes.txt").exists() and sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "foreign", "r"]


def test_passages_are_trained_at_the_length_the_model_reads(tmp_path, tiny_m3):
    """all-MiniLM-L6-v2 encodes 256 tokens: training it on 512 would double each step's cost for nothing."""
    config = TrainConfig(task="embedder", base="default", train="x", name="n", output_dir="")
    assert passage_max_len(config, embedded_model_path()) == 256
    assert passage_max_len(config, tiny_m3) == 512  # no sentence_bert_config.json: the cap
    config.passage_max_len = 64
    assert passage_max_len(config, embedded_model_path()) == 64


def test_cli_and_train_tab_start_from_the_recipe(db_path):
    """`studio train` and the Train tab show TrainConfig's defaults (the recipe measured by bench/quality.py)."""
    from click.testing import CliRunner

    from studio.cli import cli

    help_text = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    for option, name in (("--epochs", "epochs"), ("--batch-size", "batch_size"), ("--group-size", "group_size"),
                         ("--temperature", "temperature"), ("--warmup", "warmup_ratio"),
                         ("--save-every", "save_every")):
        line = next(line for line in help_text.splitlines() if line.strip().startswith(option))
        assert f"[default: {TrainConfig.recipe(name)}]" in line, line
    from studio.ui.app import build_app

    demo, _ = build_app(db_path)  # the ⑥ form as the page receives it: each number field's starting value
    shown = {}
    for component in demo.blocks.values():
        label = str(getattr(component, "label", ""))
        if type(component).__name__ == "Number" and '"key": "train.' in label:
            shown[label.split('"key": "')[1].split('"')[0]] = component.value
    for key, name in (("train.epochs", "epochs"), ("train.batch_size", "batch_size"),
                      ("train.group_size", "group_size"), ("train.temperature", "temperature"),
                      ("train.warmup", "warmup_ratio"), ("train.save_every", "save_every")):
        assert shown.get(key) == TrainConfig.recipe(name), (key, shown)


def test_a_one_step_job_still_changes_the_model(tmp_path, data):
    """A ratio warmup rounds up to every step of a one-step run, whose learning rate would then be 0."""
    job, config = make_job(tmp_path, data, max_steps=1, warmup_ratio=0.1, lr=1e-3)
    assert worker.main([str(job)]) == EXIT_OK
    assert np.abs(st_encode(Path(result(job)["model_dir"])) - st_encode(embedded_model_path())).max() > 1e-4


def test_metrics_of_a_resumed_job_read_as_one_run(tmp_path):
    """A worker killed at step 6 resumes from checkpoint 4: steps 5-6 of the dead run are gone from the curve."""
    lines = [{"step": s, "loss": 1.0 / s} for s in range(1, 7)]
    lines.insert(4, {"step": 4, "eval_loss": 0.6})  # an evaluation logged at the same step as its loss stays
    lines += [{"step": s, "loss": 2.0 / s} for s in range(5, 8)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 8, "lo',
                                            encoding="utf-8")
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 4, 5, 6, 7]
    assert rows[5]["loss"] == 2.0 / 5, "the resumed run's step 5, not the dead run's"
