"""The learning curve (⑧ "would more labels help?"): nested seeded samples of whole queries, the verdict rule on
hand-made runs, and one real curve (two fractions, one seed) trained by the worker on a tiny model and scored on
the demo BEIR set without the training file's queries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from actors import ADMIN
from studio import config
from studio.actions import Project, curve as curve_actions
from studio.config import DEMO_DIR
from studio.errors import InputError, StudioError
from studio.evaluation import learning_curve as lc
from studio.evaluation.learning_curve import Point, summarize

TINY = {"epochs": 2, "batch_size": 4, "group_size": 2, "query_max_len": 32, "passage_max_len": 64, "lr": 1e-3,
        "warmup_ratio": 0.0}


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def queries_of(path: Path) -> list[str]:
    return [json.loads(line)["query"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------ samples

@pytest.fixture
def twenty(tmp_path) -> Path:
    """20 queries on 24 lines: q0..q3 have a second line each (another positive)."""
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": ["n"]} for i in range(20)]
    rows += [{"query": f"q{i}", "pos": [f"p{i}b"], "neg": ["n"]} for i in range(4)]
    return write_lines(tmp_path / "train.jsonl", rows)


def test_samples_are_whole_queries_nested_for_a_seed_and_seeded(twenty, tmp_path):
    lines = twenty.read_text(encoding="utf-8").splitlines()
    kept = {}
    for fraction, expected in ((0.25, 5), (0.5, 10), (1.0, 20)):
        out = tmp_path / f"s1-{fraction}.jsonl"
        assert lc.subsample(twenty, fraction, 1, out) == expected
        sample = out.read_text(encoding="utf-8").splitlines()
        kept[fraction] = set(queries_of(out))
        assert len(kept[fraction]) == expected
        # Whole queries, in the file's order: exactly the lines of the kept queries.
        assert sample == [line for line in lines if json.loads(line)["query"] in kept[fraction]]
    assert kept[0.25] < kept[0.5] < kept[1.0], "nested: 25 % inside 50 % inside 100 %"
    assert (tmp_path / "s1-1.0.jsonl").read_text(encoding="utf-8").splitlines() == lines
    again = tmp_path / "again.jsonl"
    lc.subsample(twenty, 0.5, 1, again)
    assert again.read_bytes() == (tmp_path / "s1-0.5.jsonl").read_bytes(), "the same seed, the same sample"
    others = set()
    for seed in (2, 3, 4):
        lc.subsample(twenty, 0.5, seed, tmp_path / "other.jsonl")
        others.add(frozenset(queries_of(tmp_path / "other.jsonl")))
    assert len(others | {frozenset(kept[0.5])}) > 1, "another seed draws another sample"
    assert lc.sample_size(3, 0.25) == 1 and lc.sample_size(10, 0.25) == 3 and lc.sample_size(7, 1.0) == 7


def test_what_a_sample_refuses(twenty, tmp_path):
    for fraction in (0, 1.5, float("nan"), True):
        with pytest.raises(StudioError) as err:
            lc.subsample(twenty, fraction, 1, tmp_path / "x.jsonl")
        assert err.value.code == "curve_bad_fractions"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        lc.subsample(bad, 0.5, 1, tmp_path / "x.jsonl")
    assert err.value.line == 2


def test_a_curve_refuses_before_it_trains(twenty, tmp_path):
    evalset = None  # never reached: every refusal comes first
    cases = (({"fractions": (1.0,)}, "curve_bad_fractions"), ({"fractions": (0.5, 0.5)}, "curve_bad_fractions"),
             ({"seeds": ()}, "curve_bad_seeds"), ({"seeds": (1, 1)}, "curve_bad_seeds"),
             ({"seeds": (-1,)}, "curve_bad_seeds"), ({"options": {"task": "reranker"}}, "curve_fixed_option"),
             ({"options": {"seed": 3}}, "curve_fixed_option"), ({"options": {"speed": 3}}, "curve_unknown_option"),
             ({"options": {"batch_size": 0}}, "train_bad_count"), ({"base": str(tmp_path / "gone")}, "base_not_found"))
    for kwargs, code in cases:
        with pytest.raises(StudioError) as err:
            lc.run_curve(twenty, evalset, workdir=tmp_path / "work", **kwargs)
        assert err.value.code == code, kwargs
    two = write_lines(tmp_path / "two.jsonl", [{"query": f"q{i}", "pos": ["p"], "neg": ["n"]} for i in range(2)])
    with pytest.raises(StudioError) as err:  # 25 % and 50 % of 2 queries are both 1 query
        lc.run_curve(two, evalset, workdir=tmp_path / "work")
    assert err.value.code == "curve_too_few_queries" and err.value.params["queries"] == 2
    assert not (tmp_path / "work").exists()


# ------------------------------------------------------------------------------------------------ the verdict

def points(by_fraction: dict[float, list[float]], queries: int = 100) -> list[Point]:
    return [Point(f, math.ceil(f * queries), seed, value, value / 2, 1.0, 10)
            for f, values in by_fraction.items() for seed, value in enumerate(values)]


@pytest.mark.parametrize("by_fraction, rising, word", [
    ({0.25: [0.30], 0.5: [0.40], 1.0: [0.43]}, True, "Still rising: +0.030 nDCG@10 from 50 % to 100 %"),
    ({0.25: [0.30], 0.5: [0.40], 1.0: [0.404]}, False, "Flat: +0.004 nDCG@10 from 50 % to 100 %"),
    ({0.5: [0.40, 0.42, 0.44], 1.0: [0.40, 0.46, 0.52]}, False, "Flat: +0.040"),  # std 0.06 > gain 0.04
    ({0.5: [0.40, 0.41, 0.42], 1.0: [0.44, 0.45, 0.46]}, True, "Still rising: +0.040"),  # std 0.01 < 0.04
    ({0.5: [0.45], 1.0: [0.42]}, False, "Falling: -0.030"),
])
def test_the_verdict_rule(by_fraction, rising, word):
    curve = summarize(points(by_fraction), base_ndcg=0.2, base_recall=0.3)
    last, prev = curve.levels[-1], curve.levels[-2]
    assert curve.gain_last == pytest.approx(last.mean - prev.mean)
    assert curve.noise == pytest.approx(max(lc.MIN_GAIN, last.std, prev.std))
    assert curve.still_rising is rising
    line = lc.verdict_line(curve, "en")
    assert line.startswith(word), line
    assert ("One seed only" in line) == (last.runs == 1)
    assert curve_actions.verdict_line(curve, "zh-CN").startswith(
        "仍在上升" if rising else "正在下降" if curve.gain_last < -curve.noise else "趋于平缓")


def test_levels_the_json_and_the_figure():
    curve = summarize(points({0.25: [0.30, 0.34], 0.5: [0.40, 0.44], 1.0: [0.41, 0.47]}), base_ndcg=0.2,
                      base_recall=0.3, train_queries=100, eval_queries=12, evalset="demo/test", base="m")
    low = curve.levels[0]
    assert (low.fraction, low.queries, low.runs, low.low, low.high) == (0.25, 25, 2, 0.30, 0.34)
    assert low.mean == pytest.approx(0.32) and low.std == pytest.approx(0.02 * math.sqrt(2))
    data = json.loads(json.dumps(curve.as_dict()))
    assert data["still_rising"] is False and data["base_model"] == {"queries": 0, "ndcg@10": 0.2, "recall@10": 0.3}
    assert [lv["queries"] for lv in data["levels"]] == [25, 50, 100] and len(data["points"]) == 6
    assert set(data["points"][0]) == {"fraction", "queries", "seed", "ndcg@10", "recall@10", "train_s", "steps"}
    fig = curve_actions.figure(curve, "en")
    runs, mean, base = fig.data
    assert list(mean.x) == [25, 50, 100] and list(mean.error_y.array) == pytest.approx([0.02, 0.02, 0.03])
    assert list(base.x) == [0] and list(base.y) == [0.2] and len(runs.x) == 6
    assert fig.layout.title.text.startswith("Would more labels help?")
    assert "留出" in lc.figure(curve, "zh-CN").layout.yaxis.title.text
    one = summarize(points({0.5: [0.4], 1.0: [0.5]}), base_ndcg=0.2, base_recall=0.3)
    assert len(lc.figure(one, "en").data) == 2, "one seed: no separate dots per run"


# ------------------------------------------------------------------------------------------------ a real curve

def demo_rows(first: int, count: int) -> list[dict]:
    """Training lines for demo queries q{first+1}.. (their relevant documents as positives, irrelevant as
    negatives), as an export would write them."""
    queries = {json.loads(x)["_id"]: json.loads(x)["text"] for x in (DEMO_DIR / "queries.jsonl").read_text(
        encoding="utf-8").splitlines()}
    corpus = {d["_id"]: d["text"] for d in map(json.loads, (DEMO_DIR / "corpus.jsonl").read_text(
        encoding="utf-8").splitlines())}
    qrels: dict[str, dict[str, int]] = {}
    for line in (DEMO_DIR / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    return [{"query": queries[q], "pos": [corpus[d] for d, s in qrels[q].items() if s == 2],
             "neg": [corpus[d] for d, s in qrels[q].items() if s == 0]} for q in sorted(qrels)[first:first + count]]


def test_a_real_curve_trains_in_the_worker_and_scores_held_out_queries(tmp_path, monkeypatch, tiny_m3, db_path):
    from studio.evaluation import runner
    from studio.retrieval import cache

    for name in ("JOBS_DIR", "MODELS_DIR", "EXPORTS_DIR"):
        monkeypatch.setattr(config, name, tmp_path / name.split("_")[0].lower())
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    train = write_lines(tmp_path / "exports" / "run" / "train.jsonl", demo_rows(0, 16))
    valid = write_lines(tmp_path / "exports" / "run" / "train.valid.jsonl", demo_rows(16, 2))
    learned = set(queries_of(train)) | set(queries_of(valid))
    scored: list[set[str]] = []
    retrieve = runner.retrieve

    def spy(evalset, model, k=100):
        scored.append(set(evalset.queries.values()))
        return retrieve(evalset, model, k)

    monkeypatch.setattr(runner, "retrieve", spy)
    seen: list[tuple[float, str]] = []
    curve = curve_actions.learning_curve(Project(db_path), ADMIN, "run/train.jsonl", "beir", folder=DEMO_DIR,
                                         base=str(tiny_m3), fractions=(0.5, 1.0), options=TINY,
                                         progress=lambda share, what: seen.append((share, what)))
    assert [(p.fraction, p.queries, p.seed, p.steps) for p in curve.points] == [(0.5, 8, 42, 4), (1.0, 16, 42, 8)]
    assert all(0 <= p.ndcg <= 1 and 0 <= p.recall <= 1 and p.train_s > 0 for p in curve.points)
    assert 0 <= curve.base_ndcg <= 1 and curve.gain_last == pytest.approx(curve.points[1].ndcg - curve.points[0].ndcg)
    # Held out: the base model and both runs scored the 12 demo queries neither file holds.
    assert len(scored) == 3 and all(s == scored[0] for s in scored) and len(scored[0]) == curve.eval_queries == 12
    assert not scored[0] & learned
    assert curve.evalset == "demo/test without the queries of train.jsonl and train.valid.jsonl"
    # The runs live in a fresh folder under jobs/curves/; their models are gone, models/ never saw them.
    work = Path(curve.workdir)
    assert work.parent == (tmp_path / "jobs" / "curves").resolve()
    assert sorted(p.name for p in work.iterdir()) == ["curve.json", "seed42-100pct", "seed42-50pct"]
    assert json.loads((work / "curve.json").read_text(encoding="utf-8")) == json.loads(json.dumps(curve.as_dict()))
    for run in ("seed42-50pct", "seed42-100pct"):
        assert not (work / run / "model").exists() and not (work / run / "checkpoints").exists()
        assert json.loads((work / run / "result.json").read_text())["status"] == "succeeded"
        assert set(queries_of(work / run / "train.jsonl")) <= set(queries_of(train))
    assert set(queries_of(work / "seed42-50pct" / "train.jsonl")) < set(queries_of(work / "seed42-100pct" /
                                                                                    "train.jsonl"))
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1, "only the base model's corpus embeddings stay"
    shares = [share for share, _ in seen]
    assert shares == sorted(shares) and shares[-1] == 1.0 and seen[-1][1] == "Learning curve done"
    assert any("Run 2 of 2: training on 100 % of the labels (16 queries), seed 42" == what for _, what in seen)


def fake_worker(monkeypatch, script: str) -> None:
    """Runs replace the worker with `script` (python -c), given the run's folder as sys.argv[1]."""
    import sys

    from studio.training import jobs

    monkeypatch.setattr(jobs, "command", lambda job_dir, gpus=1: [sys.executable, "-c", script, str(job_dir)])


def test_a_failed_run_names_its_log_and_leaves_no_model(tmp_path, monkeypatch, tiny_m3):
    from studio.evaluation import runner
    from studio.retrieval import cache

    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")

    fake_worker(monkeypatch, "import json, sys, pathlib; d = pathlib.Path(sys.argv[1]); (d / 'model').mkdir(); "
                             "(d / 'result.json').write_text(json.dumps({'status': 'failed', "
                             "'error': 'out of memory'})); sys.exit(2)")
    train = write_lines(tmp_path / "train.jsonl", demo_rows(0, 4))
    evalset = runner.from_beir(DEMO_DIR, "test", runner.training_queries(train))
    with pytest.raises(StudioError) as err:
        lc.run_curve(train, evalset, base=str(tiny_m3), fractions=(0.5, 1.0), workdir=tmp_path / "work")
    run = tmp_path / "work" / "seed42-50pct"
    assert err.value.code == "curve_train_failed" and err.value.params["error"] == "out of memory"
    assert err.value.params["log"] == str(run / "log.txt") and "50 % of the labels (2 queries, seed 42)" in str(
        err.value)
    assert not (run / "model").exists() and (run / "config.json").is_file()


def test_an_interrupted_run_kills_its_worker(tmp_path, monkeypatch):
    import os

    from studio.training import metrics as training_metrics

    fake_worker(monkeypatch, "import os, sys, time, pathlib; "
                             "(pathlib.Path(sys.argv[1]) / 'pid').write_text(str(os.getpid())); time.sleep(120)")
    polls = []

    def interrupt(job_dir):
        polls.append(job_dir)
        if (Path(job_dir) / "pid").exists():
            raise KeyboardInterrupt  # Ctrl-C while the worker trains
        return []

    monkeypatch.setattr(training_metrics, "read_metrics", interrupt)
    monkeypatch.setattr(lc, "POLL_SECONDS", 0.05)
    with pytest.raises(KeyboardInterrupt):
        lc._train(tmp_path, lc._Reporter(None, 2))
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
