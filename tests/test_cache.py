import numpy as np

from studio.retrieval import cache
from studio.retrieval.dense import cached_encode, encode


def test_cache_reuses_vectors_and_invalidates_on_corpus_or_model_change(tmp_path, monkeypatch):
    texts = ["糖尿病的并发症", "stroke warning signs", "warfarin and vitamin K"]
    calls = []
    real = encode

    def counting(texts_, model=None, batch_size=64):
        calls.append(len(texts_))
        return real(texts_, model, batch_size)

    monkeypatch.setattr("studio.retrieval.dense.encode", counting)
    first = cached_encode(texts, None, cache_dir=tmp_path)
    again = cached_encode(texts, None, cache_dir=tmp_path)
    assert calls == [3] and np.array_equal(first, again), "the second call reads the cache"
    cached_encode(texts[:2] + ["warfarin and vitamin K2"], None, cache_dir=tmp_path)
    assert calls == [3, 3], "an edited corpus is encoded again"
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


def test_model_fingerprint_changes_when_weights_change(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"x" * 10)
    before = cache.model_fingerprint(folder)
    weights.write_bytes(b"y" * 11)
    assert cache.model_fingerprint(folder) != before
    changed = cache.model_fingerprint(folder)
    (folder / "README.md").write_text("notes are not weights")
    assert cache.model_fingerprint(folder) == changed, "only weight files count"
    assert cache.model_fingerprint("BAAI/bge-m3") != cache.model_fingerprint("BAAI/bge-small-zh-v1.5")


def test_playground_scores_per_model_and_the_keyword_trap():
    from studio.retrieval.playground import KEYWORD_TRAP, score_documents, similarity

    sims = similarity("糖尿病的主要并发症有哪些？", "高血糖长期未控可能导致视网膜病变、肾衰竭等", ["default"])
    unrelated = similarity("糖尿病的主要并发症有哪些？", "The train leaves at nine.", ["default"])
    assert -1 <= sims["default"] <= 1 and sims["default"] > unrelated["default"]
    query, docs = KEYWORD_TRAP
    scores = score_documents(query, docs, ["default"])
    assert len(scores["default"]) == 3
