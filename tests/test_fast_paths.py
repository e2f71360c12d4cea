"""The studio's fast M3 training model, M3 encoder and reranker scorer give FlagEmbedding's numbers (CPU, fp32).

Reference = FlagEmbedding's own code on the same tiny random models (tests/tiny_models.py), with dropout off (the
model's and LoRA's) so that training runs can be compared step by step: dropout masks are drawn per element, so
paths that pad differently draw different ones. The M3 training model is checked in both of its layouts: packed
(one pass over the real tokens, the default on CPUs) and length chunks (token budgets set small so every batch is
split into several): the paths that differ from FlagEmbedding's are the ones exercised.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from FlagEmbedding.abc.finetune.embedder import AbsEmbedderCollator
from FlagEmbedding.finetune.embedder.encoder_only.base import BiEncoderOnlyEmbedderModel, EncoderOnlyEmbedderRunner
from FlagEmbedding.finetune.embedder.encoder_only.m3 import (
    EncoderOnlyEmbedderM3Model,
    EncoderOnlyEmbedderM3Runner,
)
from tiny_models import build_tiny_m3, build_tiny_reranker
from transformers import AutoTokenizer, TrainerCallback

from studio.training import planning, surgery, worker
from studio.training.config import TrainConfig
from studio.training.fast_models import (
    StudioEncoderModel,
    StudioM3Model,
    length_chunks,
    should_compile,
    sparse_max,
    speed_up,
)
from studio.training.hook import PrepareHook

WORDS = ("diabetes insulin glucose kidney retina stroke warfarin vitamin statin cholesterol asthma inhaler fever "
         "child vaccine influenza antibiotic pregnancy pain migraine sleep thyroid dose tablet diet 糖尿病 高血压")


def sentence(rng: random.Random, low: int, high: int) -> str:
    words = WORDS.split()
    return " ".join(rng.choice(words) for _ in range(rng.randint(low, high)))


def rows(n: int, seed: int = 0) -> list[tuple[str, list[str], list[str]]]:
    """(query, positives, negatives) with a wide length spread: 1 to 60 words per passage."""
    rng = random.Random(seed)
    return [(sentence(rng, 2, 12), [sentence(rng, 1, 60)], [sentence(rng, 1, 60) for _ in range(5)])
            for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_m3(tmp_path_factory) -> Path:
    """The tiny M3 model with dropout off (dropout masks would differ between paths that pad differently)."""
    folder = build_tiny_m3(tmp_path_factory.mktemp("fast") / "m3")
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def tiny_reranker(tmp_path_factory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("fast") / "reranker")


def flag_model(folder: Path, **settings) -> EncoderOnlyEmbedderM3Model:
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    options = {"temperature": 0.02, "normalize_embeddings": True, "unified_finetuning": True,
               "use_self_distill": True, "kd_loss_type": "kl_div"}
    options.update(settings)
    return EncoderOnlyEmbedderM3Model(EncoderOnlyEmbedderM3Runner.get_model(str(folder)), tokenizer=tokenizer,
                                      **options)


class ForwardCalls:
    """Counts the transformer's forward calls: the length-chunked path makes more of them than FlagEmbedding's."""

    def __init__(self, model):
        self.count = 0
        model.model.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.count += 1


def collate(model, data, group: int, teacher: bool = False) -> dict:
    collator = AbsEmbedderCollator(tokenizer=model.tokenizer, query_max_len=24, passage_max_len=48, padding=True,
                                   return_tensors="pt")
    rng = random.Random(1)
    features = [(query, (pos + neg)[:group], [rng.random() for _ in range(group)] if teacher else None)
                for query, pos, neg in data]
    return collator(features)


def test_length_chunks_cover_every_row_within_the_budget():
    lengths = [5, 48, 12, 48, 7, 30, 2, 19, 60]
    chunks = length_chunks(lengths, 64)
    assert sorted(i for index, _ in chunks for i in index) == list(range(len(lengths)))
    for index, padded in chunks:
        assert padded == max(lengths[i] for i in index)
        assert len(index) * padded <= 64 or len(index) == 1
    assert sum(len(index) * padded for index, padded in chunks) < len(lengths) * max(lengths)


def test_sparse_max_equals_flagembedding_values_and_gradient():
    """Ties (same token, same weight: common in bf16) send the gradient to the first position, as torch.max does."""
    torch.manual_seed(0)
    n, length, vocab = 4, 12, 30
    ids = torch.randint(0, 10, (n, length))
    ids[0, 2] = ids[0, 7] = ids[0, 9] = 20  # no other position holds id 20
    logits = torch.randn(n, length)
    logits[0, 2], logits[0, 7], logits[0, 9] = 0.7, 0.7, 0.2
    unused = torch.tensor([0, 1, 3])
    grad = torch.randn(n, vocab)

    def flagembedding(weights):
        embedding = torch.zeros(n, length, vocab).scatter(-1, ids.unsqueeze(-1), weights.unsqueeze(-1))
        embedding = embedding.max(dim=1).values
        embedding[:, unused] *= 0.0
        return embedding

    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    expected, got = flagembedding(torch.relu(a)), sparse_max(torch.relu(b), ids, vocab, unused)
    (expected * grad).sum().backward()
    (got * grad).sum().backward()
    assert torch.equal(expected, got)
    assert torch.equal(a.grad, b.grad) and a.grad[0, 2] != 0 and a.grad[0, 7] == 0
    with torch.no_grad():
        assert torch.equal(sparse_max(torch.relu(logits), ids, vocab, unused), expected)


def test_batched_score_helpers_equal_flagembedding_loops():
    torch.manual_seed(0)
    queries, group = 3, 4
    scores = torch.randn(queries, queries * group)
    teacher = torch.softmax(torch.randn(queries, group), dim=-1)
    q, p = torch.zeros(queries, 1), torch.zeros(queries * group, 1)
    assert torch.equal(StudioM3Model.get_local_score(None, q, p, scores),
                       EncoderOnlyEmbedderM3Model.get_local_score(None, q, p, scores))
    expected = EncoderOnlyEmbedderM3Model.distill_loss("m3_kd_loss", teacher, scores, group)
    assert torch.allclose(StudioM3Model.distill_loss("m3_kd_loss", teacher, scores, group), expected, rtol=1e-6)
    assert torch.equal(StudioM3Model.distill_loss("kl_div", teacher, scores[:, :group]),
                       EncoderOnlyEmbedderM3Model.distill_loss("kl_div", teacher, scores[:, :group]))


CASES = {
    "unified+self-distill": {"settings": {}, "teacher": False},
    "distill kl_div": {"settings": {}, "teacher": True},
    "distill m3_kd_loss": {"settings": {"kd_loss_type": "m3_kd_loss"}, "teacher": True},
    "dense only, mean pooling": {"settings": {"unified_finetuning": False, "sentence_pooling_method": "mean"},
                                 "teacher": False},
    "no in-batch negatives": {"settings": {}, "teacher": True, "no_in_batch": True},
}


@pytest.fixture(params=["packed", "chunks"])
def layout(request, monkeypatch) -> str:
    """The M3 model's two ways of encoding a batch; each test using this runs once with each."""
    monkeypatch.setenv("STUDIO_PACKED", "1" if request.param == "packed" else "0")
    return request.param


def assert_same_training_step(reference, fast, batch: dict, grad_atol: float, passes=None) -> None:
    """One forward and backward of each model with the same loss and grads; the fast one made `passes` transformer
    passes (default: more than FlagEmbedding's 2, i.e. length chunks)."""
    losses, calls = [], []
    for model in (reference, fast):
        model.train()
        counter = ForwardCalls(model)
        loss = model(**copy.deepcopy(batch)).loss
        loss.backward()
        losses.append(loss.item())
        calls.append(counter.count)
    assert calls[0] == 2  # FlagEmbedding: queries, then passages
    assert calls[1] > 2 if passes is None else calls[1] == passes
    assert losses[1] == pytest.approx(losses[0], rel=1e-5, abs=1e-6)
    grads = dict(reference.named_parameters())
    for name, param in fast.named_parameters():
        if param.grad is None:
            assert grads[name].grad is None or not grads[name].grad.any(), name
            continue
        difference, scale = (param.grad - grads[name].grad).abs().max(), grads[name].grad.abs().max()
        assert difference <= 1e-4 * scale + grad_atol, (name, difference, scale)  # float rounding only


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_forward_loss_and_gradients_equal_flagembedding(tiny_m3, case, layout):
    spec = CASES[case]
    reference = flag_model(tiny_m3, **spec["settings"])
    fast = speed_up(copy.deepcopy(reference))
    assert type(fast) is StudioM3Model
    fast.token_budget = 96  # 4 queries and 16 passages of up to 48 tokens: several chunks each
    batch = collate(reference, rows(4), group=4, teacher=spec["teacher"])
    if spec.get("no_in_batch"):
        batch["no_in_batch_neg_flag"] = True
    assert len(length_chunks(batch["passages"]["attention_mask"].sum(1).tolist(), 96)) > 2

    # Packed: queries and passages in one pass over their real tokens.
    assert_same_training_step(reference, fast, batch, grad_atol=1e-8, passes=1 if layout == "packed" else None)

    reference.eval()
    fast.eval()
    with torch.no_grad():
        for expected, got in zip(reference.encode(batch["passages"]), fast.encode(batch["passages"])):
            if expected is None:
                assert got is None
                continue
            assert got.shape == expected.shape
            assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_queries_ride_with_the_passages_in_one_chunked_pass(tiny_m3, monkeypatch):
    """On a GPU the step is bound by kernel launches: a pass of their own for a few short queries cost a whole
    encoder's worth of them. The training forward encodes queries and passages in one set of length chunks."""
    monkeypatch.setenv("STUDIO_PACKED", "0")
    reference = flag_model(tiny_m3)
    fast = speed_up(copy.deepcopy(reference))
    fast.token_budget = budget = 296  # the passages fill 3 chunks with room in the last one for the 4 queries
    batch = collate(reference, rows(4), group=4)
    q, p = (batch[k]["attention_mask"].sum(1).tolist() for k in ("queries", "passages"))
    joint, separate = len(length_chunks(q + p, budget)), len(length_chunks(q, budget)) + len(length_chunks(p, budget))
    assert (joint, separate) == (3, 4)
    fast.train()
    counter = ForwardCalls(fast)
    fast(**copy.deepcopy(batch)).loss.backward()
    assert counter.count == joint
    assert fast._joint is None, "nothing of this step is kept for the next"


@pytest.mark.parametrize("pooling", ["cls", "mean", "last_token"])
def test_dense_model_loss_and_gradients_equal_flagembedding(tiny_m3, pooling):
    """The dense (encoder-only) model, used for sentence-transformers bases such as the default all-MiniLM-L6-v2."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_m3))
    reference = BiEncoderOnlyEmbedderModel(_plain_encoder(tiny_m3), tokenizer=tokenizer, temperature=0.05,
                                           sentence_pooling_method=pooling, normalize_embeddings=True)
    fast = speed_up(copy.deepcopy(reference))
    assert type(fast) is StudioEncoderModel
    fast.token_budget = 96
    batch = collate(reference, rows(4), group=4)
    assert len(length_chunks(batch["passages"]["attention_mask"].sum(1).tolist(), 96)) > 2
    assert_same_training_step(reference, fast, batch, grad_atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(fast.encode(batch["passages"]), reference.encode(batch["passages"]), atol=1e-5)


def _plain_encoder(folder: Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder))


def test_compile_only_where_measured(monkeypatch, tiny_m3):
    """Compiling layers is for GPUs with Triton, full fine-tunes, no checkpointing; STUDIO_COMPILE=0 turns it off."""
    encoder = _plain_encoder(tiny_m3)
    monkeypatch.setattr("torch.utils._triton.has_triton", lambda: True)
    assert should_compile(encoder)
    monkeypatch.setenv("STUDIO_COMPILE", "0")
    assert not should_compile(encoder)
    monkeypatch.delenv("STUDIO_COMPILE")
    encoder.gradient_checkpointing_enable()
    assert not should_compile(encoder)


def test_sparse_embedding_in_training_mode_equals_flagembedding(tiny_m3):
    """The (batch, vocab) path gives FlagEmbedding's (batch, length, vocab) result, train mode and eval mode."""
    reference = flag_model(tiny_m3)
    fast = speed_up(copy.deepcopy(reference))
    batch = collate(reference, rows(3), group=2)["passages"]
    hidden = torch.randn(*batch["input_ids"].shape, reference.config.hidden_size)
    for training in (True, False):
        reference.train(training)
        fast.train(training)
        expected = reference._sparse_embedding(hidden, batch["input_ids"])
        assert torch.allclose(fast._sparse_embedding(hidden, batch["input_ids"]), expected, atol=1e-6)


# --- training through the worker -----------------------------------------------------------------------------------
class Losses(TrainerCallback):
    def __init__(self):
        self.losses: dict[int, float] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]


def write_rows(path: Path, data) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"query": q, "pos": p, "neg": n}, ensure_ascii=False) + "\n" for q, p, n in data)
    return path


class FlagRunner(PrepareHook, EncoderOnlyEmbedderM3Runner):
    """FlagEmbedding's M3 runner with the studio's LoRA/freezing hook and nothing else: the reference."""


def train_both(tmp_path: Path, base: Path, train: Path, classes: tuple, **settings) -> tuple[dict, dict]:
    """5 steps through the worker's runner and through FlagEmbedding's (the reference runner class), same seed.

    Args:
        classes: (the studio's model class, FlagEmbedding's, the reference runner class).

    Returns:
        ({name: (losses by step, checkpoint-5 folder)}, {name: transformer forward calls}).
    """
    studio_cls, flag_cls, reference_runner = classes
    runs, calls = {}, {}
    for name in ("studio", "flagembedding"):
        folder = tmp_path / name
        folder.mkdir()
        config = TrainConfig(task="embedder", base=str(base), train=str(train), name=name,
                             output_dir=str(tmp_path / "models" / name), max_steps=5, batch_size=4, group_size=4,
                             query_max_len=24, passage_max_len=48, lr=1e-3, warmup_ratio=0.0, save_steps=100,
                             **settings)
        plan = planning.make_plan(folder, config)
        if name == "studio":
            runner = worker.build_runner(folder, config, plan)
            assert type(runner.model) is studio_cls  # the worker picks the fast model up by itself
        else:
            kwargs = planning.argument_kwargs(folder, config, plan)
            runner = reference_runner(*(cls(**kw) for cls, kw in zip(planning.argument_classes(config, plan), kwargs)),
                                      surgery.make_prepare(config, plan.architecture))
            assert type(runner.model) is flag_cls
        losses, counter = Losses(), ForwardCalls(runner.model)
        runner.trainer.add_callback(losses)
        runner.trainer.train()
        runs[name] = (losses.losses, folder / "checkpoints" / "checkpoint-5")
        calls[name] = counter.count
    return runs, calls


JOBS = {"full": {}, "lora": {"method": "lora", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0},
        "activation checkpointing": {"gradient_checkpointing": True}}


@pytest.mark.parametrize("job", JOBS, ids=list(JOBS))
def test_worker_trains_like_flagembedding(tmp_path, tiny_m3, monkeypatch, job, layout):
    """5 steps through the worker's runner and through FlagEmbedding's, same seed: same losses, same saved files."""
    monkeypatch.setattr(StudioM3Model, "token_budget", 96)
    train = write_rows(tmp_path / "train.jsonl", rows(12))
    runs, calls = train_both(tmp_path, tiny_m3, train, (StudioM3Model, EncoderOnlyEmbedderM3Model, FlagRunner),
                             **JOBS[job])
    if layout == "packed":  # one pass a step where FlagEmbedding makes two (LoRA and checkpointing included)
        assert calls["studio"] * 2 == calls["flagembedding"]
    else:  # the length-chunked path was the one trained
        assert calls["studio"] > calls["flagembedding"]

    (studio, studio_dir), (flag, flag_dir) = runs["studio"], runs["flagembedding"]
    assert sorted(studio) == [1, 2, 3, 4, 5]
    assert np.allclose([studio[s] for s in sorted(studio)], [flag[s] for s in sorted(studio)], rtol=1e-4, atol=0)
    assert studio[5] < studio[1]
    files = sorted(p.name for p in studio_dir.iterdir())
    assert files == sorted(p.name for p in flag_dir.iterdir())
    assert {"colbert_linear.pt", "sparse_linear.pt"} <= set(files)
    from safetensors.torch import load_file

    weights = "adapter_model.safetensors" if job == "lora" else "model.safetensors"
    ours, theirs = load_file(str(studio_dir / weights)), load_file(str(flag_dir / weights))
    assert ours.keys() == theirs.keys()
    assert max((ours[k] - theirs[k]).abs().max().item() for k in ours) < 1e-4
    for head in ("colbert_linear.pt", "sparse_linear.pt"):
        a, b = (torch.load(d / head, weights_only=True) for d in (studio_dir, flag_dir))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


def test_kill_switch_keeps_flagembedding_model(monkeypatch, tiny_m3):
    monkeypatch.setenv("STUDIO_FAST_M3", "0")
    assert type(speed_up(flag_model(tiny_m3))) is EncoderOnlyEmbedderM3Model


class FlagDenseRunner(PrepareHook, EncoderOnlyEmbedderRunner):
    """FlagEmbedding's dense runner with the studio's hook and nothing else: the reference."""


def test_worker_trains_dense_like_flagembedding(tmp_path, tiny_m3, monkeypatch):
    """The dense path (the default model's): 5 steps through the worker and through FlagEmbedding, same losses."""
    monkeypatch.setattr(StudioEncoderModel, "token_budget", 96)
    train = write_rows(tmp_path / "train.jsonl", rows(12))
    runs, calls = train_both(tmp_path, tiny_m3, train,
                             (StudioEncoderModel, BiEncoderOnlyEmbedderModel, FlagDenseRunner), architecture="encoder")
    assert calls["studio"] > calls["flagembedding"]
    studio, flag = runs["studio"][0], runs["flagembedding"][0]
    assert sorted(studio) == [1, 2, 3, 4, 5]
    assert np.allclose([studio[s] for s in sorted(studio)], [flag[s] for s in sorted(studio)], rtol=1e-4, atol=0)
    assert studio[5] < studio[1]


# --- inference -----------------------------------------------------------------------------------------------------
def texts() -> list[str]:
    rng = random.Random(3)
    return ([sentence(rng, 1, 80) for _ in range(11)]
            + ["", "fever fever fever fever child fever", "糖尿病的常见症状包括多尿、口渴和疲劳。" * 6])


def test_m3_encoder_equals_bgem3flagmodel(tiny_m3, layout, monkeypatch):
    from FlagEmbedding import BGEM3FlagModel

    from studio.retrieval import fast_encode
    from studio.retrieval.fast_encode import M3Encoder

    monkeypatch.setattr(fast_encode, "FIRST_SLICE", 3)  # tokenized in slices of 3, 5, 5 on the background thread
    monkeypatch.setattr(fast_encode, "SLICE", 5)
    corpus = texts()
    options = {"max_length": 48, "return_dense": True, "return_sparse": True, "return_colbert_vecs": True}
    expected = BGEM3FlagModel(str(tiny_m3), use_fp16=False, devices="cpu").encode(corpus, batch_size=4, **options)
    encoder = M3Encoder(tiny_m3, use_fp16=False, device="cpu", token_budget=100)
    got = encoder.encode(corpus, **options)

    assert got["dense_vecs"].dtype == expected["dense_vecs"].dtype
    assert np.allclose(got["dense_vecs"], expected["dense_vecs"], atol=1e-5)
    for ours, theirs in zip(got["lexical_weights"], expected["lexical_weights"]):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)  # same ids, same order
        assert all(type(ours[k]) is type(theirs[k]) for k in ours)
        assert np.allclose([ours[k] for k in ours], [theirs[k] for k in ours], atol=1e-5)
    assert any(len(w) > 3 for w in got["lexical_weights"])
    for ours, theirs in zip(got["colbert_vecs"], expected["colbert_vecs"]):
        assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-5)

    one = encoder.encode(corpus[1], **options)
    assert one["dense_vecs"].shape == expected["dense_vecs"][1].shape
    assert np.allclose(one["dense_vecs"], expected["dense_vecs"][1], atol=1e-5)
    assert encoder.encode(corpus, max_length=48)["lexical_weights"] is None


def test_tokenized_batches_cover_every_text_once_within_the_budget(tiny_m3, monkeypatch):
    from studio.retrieval import fast_encode

    monkeypatch.setattr(fast_encode, "FIRST_SLICE", 4)
    monkeypatch.setattr(fast_encode, "SLICE", 6)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_m3))
    corpus = texts() * 2
    batches = list(fast_encode.tokenized_batches(tokenizer, corpus, 48, budget=60))
    assert sorted(i for rows, _, _ in batches for i in rows) == list(range(len(corpus)))
    for rows, ids, length in batches:
        assert ids == tokenizer([corpus[i] for i in rows], truncation=True, max_length=48)["input_ids"]
        assert length == max(map(len, ids)) and (len(rows) * length <= 60 or len(rows) == 1)
    assert len(batches) > 4


def test_scorer_equals_flagreranker(tiny_reranker):
    from FlagEmbedding import FlagReranker

    from studio.retrieval.fast_encode import CrossEncoderScorer

    corpus = texts()
    rng = random.Random(5)
    pairs = [[sentence(rng, 1, 40), doc] for doc in corpus]  # queries up to 40 words: cut at 3/4 of max_length
    reference = FlagReranker(str(tiny_reranker), use_fp16=False, devices="cpu")
    scorer = CrossEncoderScorer(tiny_reranker, device="cpu", token_budget=120)
    for normalize in (False, True):
        expected = reference.compute_score(pairs, max_length=40, normalize=normalize)
        got = scorer.compute_score(pairs, max_length=40, normalize=normalize)
        assert np.allclose(got, expected, atol=1e-5), np.abs(np.array(got) - expected).max()
    assert np.allclose(scorer.compute_score(pairs[0], max_length=40),
                       reference.compute_score(pairs[0], max_length=40), atol=1e-5)


# --- what the app loads --------------------------------------------------------------------------------------------
def test_app_scores_with_the_fast_models_and_flagembeddings_results(tiny_m3, tiny_reranker, monkeypatch):
    """Search, evaluation and the demo load the studio's encoders; STUDIO_FAST_M3=0 brings back FlagEmbedding's."""
    from FlagEmbedding import BGEM3FlagModel, FlagReranker

    from studio.retrieval.fast_encode import CrossEncoderScorer, M3Encoder
    from studio.retrieval.flag import load_cross_encoder, load_m3_encoder

    assert isinstance(load_m3_encoder(str(tiny_m3)), M3Encoder)
    scorer = load_cross_encoder(str(tiny_reranker))
    assert isinstance(scorer, CrossEncoderScorer) and scorer.max_length == 512  # FlagReranker's default
    pairs = [["fever in children", doc] for doc in texts()]
    expected = FlagReranker(str(tiny_reranker), use_fp16=False, devices="cpu").compute_score(pairs, batch_size=4)
    got = scorer.compute_score(pairs, batch_size=4)
    assert np.allclose(got, expected, atol=1e-5), np.abs(np.array(got) - expected).max()

    monkeypatch.setenv("STUDIO_FAST_M3", "0")
    assert isinstance(load_m3_encoder(str(tiny_m3)), BGEM3FlagModel)
    assert isinstance(load_cross_encoder(str(tiny_reranker)), FlagReranker)


def test_a_studio_reranker_is_scored_at_the_length_it_was_trained_on(tiny_reranker, tmp_path, monkeypatch):
    """Pairs longer than the fine-tune's query + passage length are cut there, as in training, by both loaders."""
    import shutil

    from FlagEmbedding import FlagReranker

    from studio.retrieval.flag import load_cross_encoder, trained_length

    folder = tmp_path / "reranker"
    shutil.copytree(tiny_reranker, folder)
    (folder / "studio_model.json").write_text(json.dumps({"task": "reranker", "max_seq_length": 24}))
    assert trained_length(folder) == 24 and trained_length(tiny_reranker) is None
    pairs = [["fever in children", doc] for doc in texts()]
    reference = FlagReranker(str(folder), use_fp16=False, devices="cpu")
    at_24 = reference.compute_score(pairs, max_length=24)
    at_512 = reference.compute_score(pairs, max_length=512)
    # A random tiny head scores everything near 0.0118: the cut moves long documents' scores by ~5e-5.
    assert np.abs(np.array(at_24) - at_512).max() > 2e-5
    assert np.abs(np.array(load_cross_encoder(str(folder)).compute_score(pairs)) - at_24).max() < 1e-6
    monkeypatch.setenv("STUDIO_FAST_M3", "0")
    assert np.abs(np.array(load_cross_encoder(str(folder)).compute_score(pairs)) - at_24).max() < 1e-6
