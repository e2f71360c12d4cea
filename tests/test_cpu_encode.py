"""The bfloat16, length-bucketed CPU encoder (studio/retrieval/cpu_encode.py) behind dense.encode."""

import json
import os

import numpy as np
import pytest

from studio.config import embedded_model_path
from studio.retrieval import cache, cpu_encode, dense

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CORPUS = [
    "grep searches the named input files for lines containing a match to the given patterns.",
    "tar saves many files together into a single tape or disk archive, and can restore individual files.",
    "chmod changes the file mode bits of each given file according to mode, which can be symbolic or octal.",
    "ssh is a program for logging into a remote machine and for executing commands on a remote machine. "
    "It is intended to provide secure encrypted communications between two untrusted hosts over an insecure "
    "network. X11 connections, arbitrary TCP ports and UNIX-domain sockets can also be forwarded over the "
    "secure channel, and the user's identity is proven with public key or password authentication.",
    "ls lists directory contents.",
    "cron is a daemon that executes scheduled commands, reading crontab files from the spool directory.",
]
QUERIES = ["search text in files for a pattern", "log in to a remote computer securely",
           "run jobs on a schedule", "list the files of a directory"]
EXPECTED_TOP1 = [0, 3, 5, 4]


@pytest.fixture(autouse=True)
def fast_on(monkeypatch):
    monkeypatch.delenv(cpu_encode.ENV, raising=False)
    if cpu_encode._cuda() or not cpu_encode.bf16_hardware():
        pytest.skip("the fast path needs a CPU with bfloat16 arithmetic; elsewhere sentence-transformers' encode")


@pytest.fixture(scope="module")
def model():
    return dense.resolve_model(None)


def st_vectors(model, texts):
    return dense.load_embedder(model).encode(texts, batch_size=64, normalize_embeddings=True,
                                             convert_to_numpy=True, show_progress_bar=False)


def test_fast_vectors_agree_with_sentence_transformers(model):
    assert cpu_encode.variant(model).startswith(cpu_encode.VARIANT), "the embedded MiniLM is a describable model"
    fast, ref = dense.encode(CORPUS + QUERIES, model), st_vectors(model, CORPUS + QUERIES)
    assert fast.shape == ref.shape and fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-5)
    assert not np.array_equal(fast, ref), "bfloat16 changes the arithmetic: the fast path really ran"
    assert (np.sum(fast * ref, axis=1) > 0.999).all(), "every vector stays where fp32 puts it"
    docs, queries = fast[:len(CORPUS)], fast[len(CORPUS):]
    assert (queries @ docs.T).argmax(axis=1).tolist() == EXPECTED_TOP1
    ref_docs, ref_queries = ref[:len(CORPUS)], ref[len(CORPUS):]
    assert (ref_queries @ ref_docs.T).argmax(axis=1).tolist() == EXPECTED_TOP1


def test_rows_follow_input_order_after_length_bucketing(model):
    texts = CORPUS[::-1] + ["x"] + CORPUS[:3]  # mixed lengths, so batches reorder them
    together = dense.encode(texts, model)
    alone = np.stack([dense.encode([t], model)[0] for t in texts])
    # each row is its own text's vector, whatever it was batched with (no per-batch scales: a text's vector does
    # not depend on its neighbours)
    assert (np.sum(together * alone, axis=1) > 0.9999).all()
    unique = [0, 1, 2, 3, 4, 5, 6]  # CORPUS reversed and "x": each its own text's row, not a neighbour's
    assert ((together[unique] @ alone[unique].T).argmax(axis=1) == np.arange(len(unique))).all()
    assert np.allclose(together[len(CORPUS) - 1], together[len(CORPUS) + 1], atol=1e-3), "CORPUS[0] twice"


def test_batches_cover_every_text_once_longest_first_within_budget():
    lengths = [5, 256, 12, 256, 40, 1, 300]
    out = cpu_encode.batches(lengths, budget=512, most=3)
    flat = [i for batch in out for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(len(b) == 1 or len(b) * lengths[b[0]] <= 512 for b in out) and max(map(len, out)) <= 3


def test_empty_input_gives_no_rows(model):
    assert dense.encode([], model).shape == (0, 384)
    assert dense.encode([], model, progress=lambda done, total: None).shape == (0, 384)


def test_switch_off_gives_sentence_transformers_exact_vectors(model, monkeypatch):
    fast_key = cache.model_fingerprint(model)
    monkeypatch.setenv(cpu_encode.ENV, "0")
    assert cpu_encode.variant(model) == ""
    assert np.array_equal(dense.encode(CORPUS, model), st_vectors(model, CORPUS))
    assert cache.model_fingerprint(model) != fast_key, "vectors of the two encoders never share a cache key"


def test_unsupported_model_falls_back_to_sentence_transformers(tmp_path):
    source = embedded_model_path()
    folder = tmp_path / "max-pooled"
    for file in source.rglob("*"):
        if file.is_file():
            target = folder / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.unlink()
    pooling.write_text(json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}))
    name = str(folder)
    assert cpu_encode.variant(name) == "" and cpu_encode.describe_folder(str(source))
    assert np.array_equal(dense.encode(CORPUS[:3], name), st_vectors(name, CORPUS[:3]))
    assert cpu_encode.fast_encoder("any", dense.load_embedder(name)) is None, "the loaded model is refused too"
