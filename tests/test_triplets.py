"""Triplet export: FlagEmbedding format, leak-free split, hard-negative mining, determinism, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from studio.records import GoldSet, fingerprint
from studio.dataset.mining import mine, mine_negatives
from studio.dataset.split import split_by_query
from studio.dataset.triplets import ExportOptions, export_triplets
from studio.errors import StudioError

TOPICS = {
    "diabetes": ["Type 2 diabetes is managed with diet, exercise and metformin.",
                 "High blood sugar over years damages the eyes, kidneys and nerves in diabetes.",
                 "Insulin injections are needed when diabetes is type 1.",
                 "糖尿病患者应定期监测血糖并控制饮食。"],
    "hypertension": ["High blood pressure often has no symptoms and is found at a check-up.",
                     "Reducing salt lowers blood pressure in hypertension.",
                     "高血压患者应减少盐的摄入并规律服药。",
                     "Home blood pressure monitors help track hypertension."],
    "influenza": ["Influenza spreads by droplets; the flu vaccine is given every autumn.",
                  "Flu symptoms include fever, cough and muscle aches.",
                  "流感疫苗每年秋季接种可以预防流行性感冒。",
                  "Antiviral drugs shorten the flu when started early."],
    "asthma": ["Asthma inhalers open the airways during an attack.",
               "哮喘患者应随身携带吸入剂。",
               "Allergens and cold air can trigger asthma.",
               "Peak flow meters measure asthma control."],
    "sleep": ["Adults need seven to nine hours of sleep a night.",
              "失眠患者应保持规律的作息时间。",
              "Caffeine late in the day disturbs sleep.",
              "Sleep apnea causes loud snoring and daytime tiredness."],
    "fracture": ["A broken bone is immobilised with a cast for several weeks.",
                 "骨折后应及时就医并固定患肢。",
                 "Calcium and vitamin D keep bones strong after a fracture.",
                 "An X-ray confirms whether a bone is fractured."],
}
QUERIES = {
    "q1": "how is type 2 diabetes treated",
    "q2": "diabetes complications eyes kidneys",
    "q3": "how to lower high blood pressure",
    "q4": "流感疫苗什么时候接种",
    "q5": "what triggers an asthma attack",
    "q6": "how many hours of sleep do adults need",
    "q7": "骨折后怎么办",
    "q8": "is there a cure for the common cold",
}
COPY = "Type 2 diabetes is managed with diet, exercise and metformin tablets."  # near-copy of q1's positive


def make_gold(labels: dict[str, dict[str, int]] | None = None, *, extra_docs: dict[str, str] | None = None) -> GoldSet:
    """A small bilingual gold set: 24 topic documents plus filler, 8 queries (q8 has no positive)."""
    corpus = {f"{topic[:3]}{i}": text for topic, texts in TOPICS.items() for i, text in enumerate(texts)}
    corpus.update({f"x{i:02d}": f"General health note {i} about walking, water and fruit." for i in range(12)})
    corpus.update(extra_docs or {})
    if labels is None:
        labels = {
            "q1": {"dia0": 2, "dia2": 1, "dia3": 0, "hyp0": 0},
            "q2": {"dia1": 2, "dia0": 2, "sle2": 0},       # shares dia0 with q1: same side of the split
            "q3": {"hyp1": 2, "hyp2": 2, "hyp3": 1, "hyp0": 0},
            "q4": {"inf2": 2, "inf0": 1, "inf1": 0},
            "q5": {"ast2": 2, "ast0": 0},
            "q6": {"sle0": 2, "sle1": 1},
            "q7": {"fra1": 2, "fra0": 2, "fra2": 0},
            "q8": {"inf1": 0, "x01": 0},
        }
    queries = {q: QUERIES[q] for q in labels}
    return GoldSet(queries, corpus, labels, fingerprint(queries, corpus, labels))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def gold() -> GoldSet:
    return make_gold()


# --- split ---------------------------------------------------------------------------------------------------

def test_split_keeps_queries_and_positives_on_one_side(gold):
    for seed in range(20):
        train, valid = split_by_query(gold, 0.4, seed, partial_as_positive=True)
        assert train and valid and train == sorted(train) and valid == sorted(valid)
        assert not set(train) & set(valid)
        assert set(train) | set(valid) == {f"q{i}" for i in range(1, 8)}  # q8 has no positive
        assert ({"q1", "q2"} <= set(train)) or ({"q1", "q2"} <= set(valid))
        train_pos = {d for q in train for d in gold.positives(q, True)}
        valid_pos = {d for q in valid for d in gold.positives(q, True)}
        assert not train_pos & valid_pos


def test_split_groups_by_partial_positives_when_they_count():
    gold = make_gold({"q1": {"dia0": 2, "dia2": 1}, "q2": {"dia1": 2, "dia2": 2},
                      "q3": {"hyp1": 2}, "q4": {"inf2": 2}, "q5": {"ast2": 2}})
    for seed in range(20):
        train, valid = split_by_query(gold, 0.4, seed, partial_as_positive=True)
        assert ({"q1", "q2"} <= set(train)) or ({"q1", "q2"} <= set(valid))


def test_split_is_deterministic_and_seed_dependent(gold):
    splits = {seed: split_by_query(gold, 0.3, seed, False) for seed in range(10)}
    assert all(split_by_query(gold, 0.3, seed, False) == splits[seed] for seed in splits)
    assert len({tuple(valid) for _, valid in splits.values()}) > 1


def test_split_edge_cases(gold):
    assert split_by_query(gold, 0.0, 1, False)[1] == []
    one = make_gold({"q1": {"dia0": 2}, "q2": {"dia0": 2, "dia1": 2}})  # a single group
    assert split_by_query(one, 0.4, 1, False) == (["q1", "q2"], [])


# --- mining --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["bm25", "dense"])
def test_mining_excludes_labelled_and_near_copies(method):
    gold = make_gold(extra_docs={"copy": COPY})
    keys = sorted(q for q in gold.labels if gold.positives(q))
    mined = mine_negatives(gold, keys, method=method, model=None, rank_window=(0, 40))
    assert sum(bool(docs) for docs in mined.values()) >= 5  # BM25 leaves out documents sharing no term
    for qid, docs in mined.items():
        relevant = {d for d, label in gold.labels[qid].items() if label >= 1}
        assert not relevant & set(docs)
    assert "copy" not in mined["q1"]
    # Without the guard the near-copy is a top candidate, so the exclusion above is the guard's doing.
    unguarded = mine(gold, ["q1"], method=method, model=None, rank_window=(0, 40), max_similarity=1.01)
    assert "copy" in unguarded.candidates["q1"]


def test_mining_window_skips_the_top_ranks(gold):
    full = mine_negatives(gold, ["q3"], method="bm25", model=None, rank_window=(0, 50))["q3"]
    later = mine(gold, ["q3"], method="bm25", model=None, rank_window=(2, 50))
    assert later.candidates["q3"] == [d for d in full if d not in later.avoid["q3"]]
    assert len(later.avoid["q3"]) >= 1


# --- export --------------------------------------------------------------------------------------------------

def test_export_files_and_format(gold, tmp_path):
    stages = []
    result = export_triplets(gold, tmp_path / "out" / "train.jsonl",
                             ExportOptions(test_fraction=0.0, valid_fraction=0.3, hard_negatives="bm25", negatives=4, seed=3,
                                           rank_window=(2, 40)),
                             progress=lambda f, stage: stages.append(stage))
    assert stages[0] == "split" and "mining" in stages and "writing" in stages and stages[-1] == "done"
    assert result.train_path == tmp_path / "out" / "train.jsonl"
    assert result.valid_path == tmp_path / "out" / "train.valid.jsonl"
    train, valid = read_jsonl(result.train_path), read_jsonl(result.valid_path)
    text_to_key = {text: key for key, text in gold.corpus.items()}
    query_to_key = {text: key for key, text in gold.queries.items()}
    train_keys = [query_to_key[line["query"]] for line in train]
    assert train_keys == sorted(train_keys)
    lines = train + valid
    assert len(lines) == 7  # q8 has no positive
    for line in lines:
        assert set(line) == {"query", "pos", "neg"}
        qid = query_to_key[line["query"]]
        assert [text_to_key[t] for t in line["pos"]] == gold.positives(qid)
        neg = [text_to_key[t] for t in line["neg"]]
        assert 1 <= len(neg) <= 4 and len(set(neg)) == len(neg)
        assert all(gold.labels[qid].get(d, 0) == 0 for d in neg)
        annotated = set(gold.negatives(qid))
        assert set(neg[:len(annotated)]) == annotated  # annotated negatives come first
    counts = result.counts
    assert counts["skipped_queries"] == 1
    assert counts["train_lines"] == len(train) and counts["valid_lines"] == len(valid)
    assert counts["positives"] == sum(len(line["pos"]) for line in lines)
    assert (counts["annotated_negatives"] + counts["mined_negatives"] + counts["random_negatives"]
            == sum(len(line["neg"]) for line in lines))
    assert counts["mined_negatives"] > 0

    rows = list(csv.reader(result.csv_path.open(encoding="utf-8", newline="")))
    assert rows[0] == ["query", "positive", "negative"]
    assert len(rows) - 1 == sum(len(line["pos"]) * len(line["neg"]) for line in train)
    assert rows[1] == [train[0]["query"], train[0]["pos"][0], train[0]["neg"][0]]

    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["source_fingerprint"] == gold.fingerprint and manifest["counts"] == counts
    assert manifest["format"] == "flagembedding-jsonl" and manifest["seed"] == 3
    assert manifest["options"]["negatives"] == 4 and manifest["options"]["rank_window"] == [2, 40]
    assert manifest["files"] == {"train": "train.jsonl", "valid": "train.valid.jsonl", "csv": "train.csv",
                                 "manifest": "train.manifest.json"}
    assert sorted(p.name for p in result.train_path.parent.iterdir()) == sorted(manifest["files"].values())


def test_export_no_validation_and_stale_valid_removed(gold, tmp_path):
    out = tmp_path / "train.jsonl"
    assert export_triplets(gold, out, ExportOptions(test_fraction=0.0, valid_fraction=0.3, hard_negatives="none")).valid_path
    result = export_triplets(gold, out, ExportOptions(test_fraction=0.0, valid_fraction=0.0, hard_negatives="none"))
    assert result.valid_path is None and result.manifest["files"]["valid"] is None
    assert not (tmp_path / "train.valid.jsonl").exists()
    assert result.counts["valid_queries"] == 0 and result.counts["train_lines"] == 7


def test_export_mined_negatives_skip_near_copy_and_partials(tmp_path):
    gold = make_gold(extra_docs={"copy": COPY})
    result = export_triplets(gold, tmp_path / "t.jsonl", ExportOptions(
        test_fraction=0.0, valid_fraction=0.0, hard_negatives="bm25", negatives=6, rank_window=(0, 40)))
    line = next(x for x in read_jsonl(result.train_path) if x["query"] == QUERIES["q1"])
    assert COPY not in line["neg"]
    assert gold.corpus["dia2"] not in line["neg"] + line["pos"]  # a partial is neither positive nor negative
    assert line["neg"][:2] == [gold.corpus["dia3"], gold.corpus["hyp0"]] or \
        line["neg"][:2] == [gold.corpus["hyp0"], gold.corpus["dia3"]]


def test_partial_as_positive_and_rating_scores(gold, tmp_path):
    result = export_triplets(gold, tmp_path / "t.jsonl", ExportOptions(
        test_fraction=0.0, valid_fraction=0.0, hard_negatives="none", partial="positive", scores="ratings", prompt="Represent: "))
    lines = {x["query"]: x for x in read_jsonl(result.train_path)}
    q1 = lines[QUERIES["q1"]]
    assert q1["pos"] == [gold.corpus["dia0"], gold.corpus["dia2"]] and q1["pos_scores"] == [1.0, 0.5]
    for line in lines.values():
        assert len(line["pos_scores"]) == len(line["pos"]) and len(line["neg_scores"]) == len(line["neg"])
        assert set(line["neg_scores"]) == {0.0} and line["prompt"] == "Represent: "
    assert result.counts["positives"] == sum(len(x["pos"]) for x in lines.values())


def test_export_is_byte_identical_for_a_seed(gold, tmp_path):
    def files(folder: str, seed: int) -> tuple[bytes, bytes, bytes]:
        r = export_triplets(gold, tmp_path / folder / "train.jsonl",
                            ExportOptions(test_fraction=0.0, valid_fraction=0.3, hard_negatives="bm25", negatives=5, seed=seed,
                                          rank_window=(1, 30)))
        return r.train_path.read_bytes(), r.valid_path.read_bytes(), r.csv_path.read_bytes()

    assert files("a", 7) == files("b", 7)
    assert any(files(f"s{seed}", seed) != files("a", 7) for seed in (1, 2, 3))


@pytest.mark.parametrize("options, code", [
    (ExportOptions(test_fraction=0.0, valid_fraction=0.5), "bad_valid_fraction"),
    (ExportOptions(test_fraction=0.0, valid_fraction=-0.1), "bad_valid_fraction"),
    (ExportOptions(hard_negatives="colbert"), "bad_hard_negatives"),
    (ExportOptions(negatives=0), "bad_negatives"),
    (ExportOptions(negatives=65), "bad_negatives"),
    (ExportOptions(negatives=True), "bad_negatives"),
    (ExportOptions(partial="half"), "bad_partial"),
    (ExportOptions(rank_window=(10, 10)), "bad_rank_window"),
    (ExportOptions(rank_window=(-1, 10)), "bad_rank_window"),
    (ExportOptions(rank_window=(0, 10, 20)), "bad_rank_window"),
    (ExportOptions(rank_window=(0.5, 10)), "bad_rank_window"),
    (ExportOptions(scores="logits"), "bad_scores"),
])
def test_bad_options(gold, tmp_path, options, code):
    with pytest.raises(StudioError) as err:
        export_triplets(gold, tmp_path / "t.jsonl", options)
    assert err.value.code == code
    assert not list(tmp_path.iterdir())


def test_bad_output_no_positives_empty_gold(gold, tmp_path):
    with pytest.raises(StudioError) as err:
        export_triplets(gold, tmp_path / "train.csv")
    assert err.value.code == "bad_output"
    negatives_only = make_gold({"q8": {"inf1": 0}, "q1": {"dia2": 1, "dia0": 0}})
    with pytest.raises(StudioError) as err:
        export_triplets(negatives_only, tmp_path / "t.jsonl")
    assert err.value.code == "no_positives"
    with pytest.raises(StudioError) as err:
        export_triplets(GoldSet({}, dict(gold.corpus), {}), tmp_path / "t.jsonl")
    assert err.value.code == "no_gold"
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_nothing(gold, tmp_path, monkeypatch):
    import studio.dataset.triplets as triplets

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(triplets, "_write_csv", broken)
    with pytest.raises(OSError):
        export_triplets(gold, tmp_path / "train.jsonl", ExportOptions(hard_negatives="none"))
    assert not list(tmp_path.iterdir())


# --- small corpora: fallback negatives, skipped queries, nothing to write -----------------------------------------

def tiny_gold(labels: dict[str, dict[str, int]] | None = None, extra_docs: dict[str, str] | None = None) -> GoldSet:
    """Eight documents, fewer than the default rank window's start (10): mining's window is empty."""
    corpus = {f"{topic[:3]}{i}": text for topic in ("diabetes", "hypertension") for i, text in
              enumerate(TOPICS[topic])}
    corpus.update(extra_docs or {})
    labels = labels or {"q1": {"dia0": 2, "dia2": 1}, "q2": {"dia1": 2}, "q3": {"hyp1": 2, "hyp2": 2, "hyp0": 0}}
    queries = {q: QUERIES[q] for q in labels}
    return GoldSet(queries, corpus, labels, fingerprint(queries, corpus, labels))


def negative_keys(gold: GoldSet, result) -> dict[str, list[str]]:
    """Query key → negative document keys of every written line (train and validation)."""
    text_to_key = {text: key for key, text in gold.corpus.items()}
    query_to_key = {text: key for key, text in gold.queries.items()}
    lines = read_jsonl(result.train_path) + (read_jsonl(result.valid_path) if result.valid_path else [])
    return {query_to_key[x["query"]]: [text_to_key[t] for t in x["neg"]] for x in lines}


@pytest.mark.parametrize("method", ["dense", "hybrid"])
def test_tiny_corpus_falls_back_to_documents_above_the_window(tmp_path, method):
    gold = tiny_gold()
    options = ExportOptions(test_fraction=0.0, valid_fraction=0.0, hard_negatives=method, negatives=7, seed=5)
    result = export_triplets(gold, tmp_path / "a" / "train.jsonl", options)
    counts = result.counts
    assert counts["train_lines"] == 3 and counts["skipped_no_negatives"] == 0 and not result.warnings
    assert counts["above_window_negatives"] == counts["mined_negatives"] > 0 and counts["random_negatives"] == 0
    negatives = negative_keys(gold, result)
    for qid, neg in negatives.items():
        relevant = {d for d, label in gold.labels[qid].items() if label >= 1}
        assert neg and len(set(neg)) == len(neg) and not relevant & set(neg)
        assert set(neg) == set(gold.corpus) - relevant  # seven negatives wanted, all the rest is fewer
    assert negatives["q3"][0] == "hyp0"  # the annotated negative still comes first
    assert (counts["annotated_negatives"] + counts["mined_negatives"] + counts["random_negatives"]
            == sum(len(neg) for neg in negatives.values()))
    again = export_triplets(gold, tmp_path / "b" / "train.jsonl", options)
    assert again.train_path.read_bytes() == result.train_path.read_bytes()
    assert again.csv_path.read_bytes() == result.csv_path.read_bytes()


def test_fallback_prefers_the_window_then_random_then_nearest_the_window(tmp_path):
    gold = make_gold()
    full = mine_negatives(gold, ["q3"], method="bm25", model=None, rank_window=(0, 50))["q3"]
    later = mine(gold, ["q3"], method="bm25", model=None, rank_window=(5, 50))
    above = later.above["q3"]
    assert above == [d for d in reversed(full) if d in later.avoid["q3"]]  # guarded, nearest the window first
    unlabelled = [d for d in above if d not in gold.labels["q3"]]
    assert unlabelled

    def negatives(n: int) -> list[str]:
        result = export_triplets(gold, tmp_path / f"n{n}" / "t.jsonl", ExportOptions(
            test_fraction=0.0, valid_fraction=0.0, hard_negatives="bm25", negatives=n, rank_window=(5, 50)))
        return negative_keys(gold, result)["q3"]

    assert not set(negatives(20)) & set(unlabelled)  # enough window and random documents
    every = negatives(64)  # more than the rest of the corpus: the last resort fills up, at the end
    assert every[-len(unlabelled):] == unlabelled
    assert set(every) == set(gold.corpus) - {d for d, label in gold.labels["q3"].items() if label >= 1}


@pytest.mark.parametrize("method", ["none", "bm25", "dense", "hybrid"])
@pytest.mark.parametrize("partial", ["drop", "positive"])
def test_no_negative_is_ever_a_positive(tmp_path, method, partial):
    gold = tiny_gold(extra_docs={"copy": COPY})
    result = export_triplets(gold, tmp_path / "t.jsonl", ExportOptions(
        test_fraction=0.0, valid_fraction=0.0, hard_negatives=method, negatives=9, partial=partial))
    lines = read_jsonl(result.train_path)
    assert len(lines) == 3
    for line in lines:
        assert not set(line["pos"]) & set(line["neg"])
    for qid, neg in negative_keys(gold, result).items():
        assert all(gold.labels[qid].get(d, 0) == 0 for d in neg)
        if method != "none":
            assert qid != "q1" or "copy" not in neg  # the guard holds for the last resort too


def test_query_without_any_negative_is_skipped_with_a_warning(tmp_path):
    everything = {d: 2 for d in tiny_gold().corpus}
    gold = tiny_gold({"q1": {"dia0": 2, "hyp0": 0}, "q2": everything})
    result = export_triplets(gold, tmp_path / "t.jsonl", ExportOptions(test_fraction=0.0, valid_fraction=0.0))
    assert result.counts["train_lines"] == 1 and result.counts["skipped_no_negatives"] == 1
    assert result.warnings == [("data.warn_no_negatives_one", {"count": 1})]
    assert "skipped_no_negatives" in result.warning_texts("en")[0]
    assert "跳过" in result.warning_texts("zh-CN")[0]


@pytest.mark.parametrize("method", ["none", "hybrid"])
def test_no_training_line_raises_and_writes_nothing(gold, tmp_path, method):
    out = tmp_path / "train.jsonl"
    export_triplets(gold, out, ExportOptions(test_fraction=0.0, valid_fraction=0.3, hard_negatives="none"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "train.valid.jsonl" in before
    corpus = tiny_gold().corpus
    all_relevant = tiny_gold({"q1": {d: 2 for d in corpus}, "q2": {d: 1 if d == "dia0" else 2 for d in corpus}})
    with pytest.raises(StudioError) as err:
        export_triplets(all_relevant, out, ExportOptions(test_fraction=0.0, valid_fraction=0.0, hard_negatives=method))
    assert err.value.code == "no_negatives" and err.value.params == {"queries": 2}
    assert "negative" in str(err.value) and "import more documents" in str(err.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, nothing removed


# --- FlagEmbedding and the demo ------------------------------------------------------------------------------

def flag_dataset(path: Path, cache: Path, distill: bool = False):
    from transformers import AutoTokenizer
    from FlagEmbedding.abc.finetune.embedder import AbsEmbedderDataArguments, AbsEmbedderTrainDataset

    from studio.config import embedded_model_path

    args = AbsEmbedderDataArguments(train_data=[str(path)], train_group_size=4, query_max_len=32,
                                    passage_max_len=64, knowledge_distillation=distill, cache_path=str(cache))
    return AbsEmbedderTrainDataset(args, AutoTokenizer.from_pretrained(str(embedded_model_path())))


@pytest.mark.parametrize("scores", ["none", "ratings"])
def test_flagembedding_loads_the_export(gold, tmp_path, scores):
    result = export_triplets(gold, tmp_path / "train.jsonl",
                             ExportOptions(hard_negatives="none", negatives=2, scores=scores, partial="positive"))
    dataset = flag_dataset(result.train_path, tmp_path / "cache", distill=scores == "ratings")
    assert len(dataset) == result.counts["train_lines"] == len(result.train_path.read_text().splitlines())
    query, passages, teacher = dataset[0]
    assert isinstance(query, str) and len(passages) == 4
    if scores == "ratings":
        assert len(teacher) == 4 and teacher[0] in (1.0, 0.5) and teacher[1:] == [0.0, 0.0, 0.0]
    else:
        assert teacher is None


@pytest.fixture(scope="module")
def demo_gold(tmp_path_factory) -> GoldSet:
    from studio.demo import load_demo
    from studio.store import connect
    from studio.store.gold import gold_set

    db = connect(tmp_path_factory.mktemp("demo") / "studio.db")
    load_demo(db)
    gold = gold_set(db)
    db.close()
    return gold


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_demo_export(demo_gold, tmp_path, method):
    result = export_triplets(demo_gold, tmp_path / "train.jsonl", ExportOptions(hard_negatives=method))
    counts = result.counts
    assert counts["train_lines"] > 10 and counts["valid_lines"] >= 1 and counts["mined_negatives"] > 0
    text_to_key = {text: key for key, text in demo_gold.corpus.items()}
    query_to_key = {text: key for key, text in demo_gold.queries.items()}
    lines = read_jsonl(result.train_path) + read_jsonl(result.valid_path)
    for line in lines:
        qid = query_to_key[line["query"]]
        assert len(line["neg"]) == 7
        assert all(demo_gold.labels[qid].get(text_to_key[t], 0) == 0 for t in line["neg"])
    if method == "hybrid":
        dataset = flag_dataset(result.train_path, tmp_path / "cache")
        assert len(dataset) == counts["train_lines"] and len(dataset[0][1]) == 4
