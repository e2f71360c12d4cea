"""Check the negatives (queue strategy ``negatives``): the mined hard negatives closest to their query's positives
are added as pairs and served first; the team's ratings turn them into positives or confirmed negatives, and the
export's manifest counts both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from actors import ADMIN
from studio.actions import Actor, Project, annotate, data, queue
from studio.errors import StudioError
from studio.store import opened

SOURCE = "check-negatives"
LI = Actor("Dr. Li (李医生)", "annotator", signed_in=True)
WANG = Actor("Nurse Wang (王护士)", "annotator", signed_in=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """The demo project before and after choosing ``negatives`` once (mining takes seconds: done once)."""
    from studio.demo import load_demo

    folder = tmp_path_factory.mktemp("negatives")
    before = folder / "before.db"
    with opened(before) as db:
        load_demo(db)
    after = folder / "after.db"
    shutil.copy(before, after)
    makeup = queue.set_strategy(Project(after), ADMIN, "negatives")
    return {"before": before, "after": after, "makeup": makeup}


def copy_of(template: dict, which: str, tmp_path: Path) -> Project:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "studio.db"
    shutil.copy(template[which], path)
    return Project(path)


def checked_pairs(p: Project) -> list[dict]:
    with opened(p.db_path) as db:
        return list(db.query(
            "SELECT p.id, q.key AS q, d.key AS d, p.ratings_n, g.label FROM pairs p "
            "JOIN queries q ON q.id = p.query_id JOIN documents d ON d.id = p.document_id "
            "JOIN gold g ON g.pair_id = p.id WHERE p.source = ? ORDER BY p.id",
            [SOURCE]))


def expected_picks(p: Project, per_query: int = 2) -> tuple[dict[str, set[str]], dict[tuple[str, str], float]]:
    """The rule, computed here from the export's mining and the dense model: per query with a positive, the
    `per_query` unjudged window candidates with the highest cosine; and every candidate's margin to the weakest
    positive."""
    from studio.dataset.mining import mine
    from studio.retrieval.dense import encode
    from studio.store.gold import gold_set

    with opened(p.db_path) as db:
        gold = gold_set(db)
        existing = {(r["q"], r["d"]) for r in db.query(
            "SELECT q.key AS q, d.key AS d FROM pairs p JOIN queries q ON q.id = p.query_id "
            "JOIN documents d ON d.id = p.document_id")}
    queries = sorted(q for q in gold.labels if gold.positives(q))
    mined = mine(gold, queries, method="hybrid", model=None, rank_window=(10, 100))
    keys = sorted(gold.corpus)
    docs = encode([gold.corpus[k] for k in keys])
    at = {k: i for i, k in enumerate(keys)}
    picks, margins = {}, {}
    for q, qv in zip(queries, encode([gold.queries[q] for q in queries])):
        open_ = [d for d in mined.candidates[q] if d not in gold.labels[q] and (q, d) not in existing]
        scores = docs[[at[d] for d in open_]] @ qv
        weakest = min(float(docs[at[d]] @ qv) for d in gold.positives(q))
        picks[q] = {open_[i] for i in np.argsort(-scores, kind="stable")[:per_query]}
        margins.update({(q, d): float(s) - weakest for d, s in zip(open_, scores)})
    return picks, margins


def test_choosing_negatives_queues_the_mined_negatives_closest_to_the_positives_and_serves_them_first(template,
                                                                                                    tmp_path):
    before = copy_of(template, "before", tmp_path)
    picks, margins = expected_picks(before)
    p = copy_of(template, "after", tmp_path / "after")
    m = template["makeup"]
    assert m["strategy"] == "negatives" and m["by_source"][SOURCE] == 2 * len(picks) == 40
    assert m["check_negatives"]["added"] == 40 and m["check_negatives"]["queries"] == 20
    rows = checked_pairs(p)
    got: dict[str, set[str]] = {}
    for r in rows:
        got.setdefault(r["q"], set()).add(r["d"])
        assert r["ratings_n"] == 0 and r["label"] is None, "none of them was judged"
    assert got == picks, "per query, the unjudged mined candidates that score closest to the positives"

    from studio.store.queue import serving_order

    with opened(p.db_path) as db:
        first = serving_order(db, 40)
    by_id = {r["id"]: (r["q"], r["d"]) for r in rows}
    assert sorted(first) == sorted(by_id), "served before every other untouched pair"
    served = [margins[by_id[i]] for i in first]
    assert all(a >= b - 1e-4 for a, b in zip(served, served[1:])), "closest to a positive first, across queries"
    # Half-taken pairs still come first: Dr. Li rates an untouched demo pair; Nurse Wang is served it first.
    from studio.store.ratings import submit_rating

    with opened(p.db_path) as db:
        demo_pair = next(db.query("SELECT id FROM pairs WHERE source = 'demo' AND ratings_n = 0"))["id"]
        submit_rating(db, LI.name, demo_pair, 1)
    assert annotate.start(p, WANG).pair.pair_id == demo_pair
    assert annotate.rate(p, WANG, demo_pair, 1).pair.pair_id == first[0]


def test_choosing_it_twice_adds_nothing_new_and_both_are_audited(template, tmp_path):
    p = copy_of(template, "after", tmp_path)
    before = checked_pairs(p)
    m = queue.check_negatives(p, ADMIN)
    assert m["check_negatives"]["added"] == 0 and m["check_negatives"]["candidates"] == 40
    assert checked_pairs(p) == before and m["by_source"] == template["makeup"]["by_source"]
    with opened(p.db_path) as db:
        entries = [(r["actor"], json.loads(r["after"])) for r in db.query(
            "SELECT actor, after FROM audit_log WHERE action = 'queue.strategy' ORDER BY id")]
    assert [(who, e["strategy"], e["added"], e["source"]) for who, e in entries] == [
        ("root", "negatives", 40, SOURCE), ("root", "negatives", 0, SOURCE)]
    assert entries[-1][1]["per_query"] == 2 and entries[-1][1]["hard_negatives"] == "hybrid"


def test_bad_per_query_and_a_project_without_positives_are_refused(template, tmp_path):
    p = copy_of(template, "after", tmp_path / "demo")
    db_path = tmp_path / "plain.db"
    with pytest.raises(StudioError) as info:
        queue.check_negatives(p, ADMIN, per_query=0)
    assert info.value.code == "bad_per_query"
    from conftest import make_batch
    from studio.store.imports import import_batch

    with opened(db_path) as db:
        import_batch(db, make_batch(3))
    with pytest.raises(StudioError) as info:
        queue.set_strategy(Project(db_path), ADMIN, "negatives")
    assert info.value.code == "no_positives_to_check"


def rate_twice(p: Project, pair_id: int, first: int, second: int) -> None:
    annotate.rate(p, LI, pair_id, first)
    annotate.rate(p, WANG, pair_id, second)


def test_ratings_flip_or_confirm_and_the_export_counts_and_uses_them(template, tmp_path):
    p = copy_of(template, "after", tmp_path)
    rows = checked_pairs(p)
    flipped, confirmed, partial, disputed = rows[0], rows[1], rows[2], rows[3]
    rate_twice(p, flipped["id"], 2, 2)
    rate_twice(p, confirmed["id"], 0, 0)
    rate_twice(p, partial["id"], 1, 1)
    rate_twice(p, disputed["id"], 2, 0)  # no gold label until an expert decides
    result = data.export_triplets(p, ADMIN, tmp_path / "out" / "train.jsonl", hard_negatives="none",
                                  valid_fraction=0.0, test_fraction=0.0, negatives=64)
    assert result.manifest["checked_negatives"] == {"queued": 40, "rated": 3, "flipped_to_positive": 1,
                                                    "confirmed_negative": 1, "partial": 1}
    saved = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert saved["checked_negatives"] == result.manifest["checked_negatives"]
    from studio.store.gold import gold_set

    with opened(p.db_path) as db:
        gold = gold_set(db)
    lines = {json.loads(line)["query"]: json.loads(line) for line in result.train_path.read_text(
        encoding="utf-8").splitlines()}
    assert gold.corpus[flipped["d"]] in lines[gold.queries[flipped["q"]]]["pos"], "rated relevant: a positive"
    assert gold.corpus[confirmed["d"]] in lines[gold.queries[confirmed["q"]]]["neg"], "confirmed: a negative"
    line = lines[gold.queries[partial["q"]]]
    assert gold.corpus[partial["d"]] not in line["pos"] + line["neg"], "partial, dropped: neither"
    as_positive = data.export_triplets(p, ADMIN, tmp_path / "out2" / "train.jsonl", hard_negatives="none",
                                       valid_fraction=0.0, test_fraction=0.0, partial="positive")
    assert as_positive.manifest["checked_negatives"] == {"queued": 40, "rated": 3, "flipped_to_positive": 2,
                                                         "confirmed_negative": 1, "partial": 0}
    # Choosing it again: the judged ones are settled, so their queries get fresh candidates; nothing is duplicated.
    m = queue.check_negatives(p, ADMIN)
    assert m["check_negatives"]["added"] >= 3 and len(checked_pairs(p)) == 40 + m["check_negatives"]["added"]


def run_cli(p: Project, *args):
    from studio.cli import cli

    return CliRunner().invoke(cli, ["--db", str(p.db_path), *args], catch_exceptions=False)


def test_the_cli_verb_checks_the_negatives_and_the_export_summary_mentions_them(template, tmp_path):
    help_text = run_cli(Project(tmp_path / "none.db"), "queue", "strategy", "--help").output
    assert "negatives" in help_text and "--per-query" in help_text
    p = copy_of(template, "before", tmp_path)
    out = run_cli(p, "queue", "strategy", "negatives", "--per-query", "1")
    assert out.exit_code == 0 and "check the negatives: 20 mined negatives of 20 queries" in out.output
    again = json.loads(run_cli(p, "queue", "strategy", "negatives", "--per-query", "1", "--json").stdout)
    assert again["strategy"] == "negatives" and again["check_negatives"]["added"] == 0
    rows = checked_pairs(p)
    rate_twice(p, rows[0]["id"], 2, 2)
    exported = run_cli(p, "export", "triplets", str(tmp_path / "x" / "train.jsonl"), "--hard-negatives", "none")
    assert exported.exit_code == 0
    assert "checked negatives: 20 queued, 1 rated: 1 flipped to positive, 0 confirmed negative" in exported.output


def test_the_collect_tab_offers_it_and_says_what_it_queued(template, tmp_path):
    from studio.actions import queue as queue_actions
    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import import_

    assert "negatives" in queue_actions.STRATEGIES, "① lists the registry's strategies"
    p = copy_of(template, "before", tmp_path)
    ctx = UIContext(p.db_path, make_i18n())
    message, makeup = import_.run_strategy(ctx, "negatives", "zh-CN", per_query=1)
    assert "核查负例" in message and "20" in makeup
    *_, strategy, _ = import_.refresh(ctx, "en")
    assert strategy["value"] == "negatives"
