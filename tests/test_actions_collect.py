"""① Collect actions: import, pool, demo, counts, BEIR folders: an admin does them, anyone else is refused."""

import json

import pytest

from studio import config
from studio.actions import Actor, Project, collect
from studio.errors import Forbidden, StudioError
from studio.store import opened

ADMIN = Actor("root", "admin", signed_in=True)
BELOW_ADMIN = [Actor("alice", "annotator", signed_in=True), Actor("eve", "expert", signed_in=True)]


def rows(db_path, sql: str, params=()) -> list[dict]:
    with opened(db_path) as db:
        return list(db.query(sql, params))


def table_size(db_path, table: str) -> int:
    return rows(db_path, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def assert_refused(db_path, actor: Actor, action: str) -> None:
    """One `refused` audit entry under the real actor, naming the action and the role it needs."""
    refused = rows(db_path, "SELECT actor, after FROM audit_log WHERE action = 'refused'")
    assert [(r["actor"], json.loads(r["after"])) for r in refused] == [
        (actor.name, {"action": action, "role": actor.role, "needs": "admin"})]


def write_beir(folder):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Warfarin", "text": "Vitamin K rich foods change INR."}\n'
        '{"_id": "d2", "title": "", "text": "Statins lower LDL cholesterol."}\n', encoding="utf-8")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "warfarin diet"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    return folder


@pytest.fixture
def pairs_file(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("query,document\n糖尿病的并发症?,视网膜病变和肾病\n"
                 "stroke signs,Face drooping and arm weakness\n", encoding="utf-8")
    return f


def test_admin_imports_pairs_as_themselves(db_path, pairs_file):
    summary = collect.import_file(Project(db_path), ADMIN, "pairs", pairs_file)
    assert (summary.pairs, summary.documents, summary.queries, summary.file) == (2, 2, 2, str(pairs_file))
    assert rows(db_path, "SELECT count(*) AS n FROM pairs WHERE in_queue = 1")[0]["n"] == 2
    entry = rows(db_path, "SELECT actor, after FROM audit_log WHERE action = 'import'")
    assert [e["actor"] for e in entry] == ["root"] and json.loads(entry[0]["after"])["pairs"] == 2
    again = collect.import_file(Project(db_path), ADMIN, "pairs", pairs_file)
    assert (again.pairs, again.existing_pairs) == (0, 2), "the same file twice adds nothing"


def test_a_display_name_replaces_the_upload_path_in_errors_and_the_record(db_path, tmp_path):
    upload = tmp_path / "gradio-cache" / "abc123" / "labels.jsonl"
    upload.parent.mkdir(parents=True)
    upload.write_text('{"query": "q", "document": "d"}\n{"query": "q2"}\n', encoding="utf-8")
    with pytest.raises(Exception) as refused:
        collect.import_file(Project(db_path), ADMIN, "pairs", upload, display_name="labels.jsonl")
    message = refused.value.message("en")
    assert message.startswith("labels.jsonl, line 2") and "gradio-cache" not in message
    assert str(refused.value) == message, "str() of the error (a log line, a traceback) names the file as shown too"
    assert table_size(db_path, "pairs") == 0, "all or nothing"
    upload.write_text('{"query": "q", "document": "d"}\n', encoding="utf-8")
    summary = collect.import_file(Project(db_path), ADMIN, "pairs", upload, display_name="labels.jsonl")
    assert summary.file == "labels.jsonl"
    assert json.loads(rows(db_path, "SELECT after FROM audit_log WHERE action = 'import'")[0]["after"])["file"] \
        == "labels.jsonl"


def test_a_beir_folder_becomes_reference_labels_outside_the_queue(db_path, tmp_path):
    folder = write_beir(tmp_path / "mini-beir")
    summary = collect.import_file(Project(db_path), ADMIN, "beir", folder, display_name="mini-beir")
    assert summary.pairs == 1 and summary.documents == 2 and summary.file == "mini-beir"
    assert rows(db_path, "SELECT in_queue, reference_label FROM pairs") == [{"in_queue": 0, "reference_label": 2}]
    with pytest.raises(Exception) as missing:
        collect.import_file(Project(db_path), ADMIN, "beir", folder, split="dev", display_name="mini-beir")
    assert "mini-beir/qrels/dev.tsv" in missing.value.message("en") and str(tmp_path) not in missing.value.message("en")


def test_an_unknown_kind_is_a_studio_error(db_path, pairs_file):
    with pytest.raises(Exception) as refused:
        collect.import_file(Project(db_path), ADMIN, "excel", pairs_file)
    assert "unknown import kind 'excel'" in refused.value.message("en")


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_import_is_refused_below_admin(db_path, pairs_file, actor):
    with pytest.raises(Forbidden):
        collect.import_file(Project(db_path), actor, "pairs", pairs_file)
    assert table_size(db_path, "pairs") == 0 and table_size(db_path, "documents") == 0
    assert_refused(db_path, actor, "collect.import_file")


def test_admin_pools_bm25_candidates(db_path):
    collect.load_demo(Project(db_path), ADMIN)
    before = table_size(db_path, "pairs")
    result = collect.pool(Project(db_path), ADMIN, 5, "bm25")
    assert result["queries"] == 30 and 0 < result["added"] <= result["candidates"] <= 150
    assert result["model"] is None, "BM25 needs no model"
    assert table_size(db_path, "pairs") == before + result["added"]
    pooled = rows(db_path, "SELECT count(*) AS n FROM pairs WHERE source = 'pool:bm25' AND in_queue = 1")
    assert pooled[0]["n"] == result["added"]


def test_pooled_pairs_are_served_in_the_measured_default_order_unless_an_admin_chose_another(db_path):
    from studio.actions import queue
    from studio.store import opened
    from studio.store.queue import serving_order

    collect.load_demo(Project(db_path), ADMIN)
    result = collect.pool(Project(db_path), ADMIN, 5, "bm25")
    assert result["strategy"] == "systems" == queue.DEFAULT_STRATEGY
    made = queue.makeup(Project(db_path), ADMIN)
    assert made["strategy"] == "systems" and made["untouched_unordered"] == 0, "every untouched pair is ordered"
    audit = rows(db_path, "SELECT actor, after FROM audit_log WHERE action = 'queue.strategy'")
    assert [a["actor"] for a in audit] == [ADMIN.name] and '"systems"' in audit[0]["after"]
    with opened(db_path) as db:
        first = serving_order(db, 5)
    assert first and all(r["priority"] is not None for r in rows(
        db_path, f"SELECT priority FROM pairs WHERE id IN ({','.join(map(str, first))})"))

    queue.set_strategy(Project(db_path), ADMIN, "imported")
    result = collect.pool(Project(db_path), ADMIN, 8, "bm25")
    assert result["added"] > 0 and result["strategy"] is None, "an admin's choice stands"
    assert queue.makeup(Project(db_path), ADMIN)["strategy"] == "imported"


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_pooling_is_refused_below_admin(db_path, actor):
    collect.load_demo(Project(db_path), ADMIN)
    before = table_size(db_path, "pairs")
    with pytest.raises(Forbidden):
        collect.pool(Project(db_path), actor, 3, "bm25")
    assert table_size(db_path, "pairs") == before
    assert_refused(db_path, actor, "collect.pool")


def test_admin_loads_the_demo_once(db_path):
    summary = collect.load_demo(Project(db_path), ADMIN)
    assert (summary.pairs, summary.queries, summary.ratings) == (180, 30, 200)
    actors = rows(db_path, "SELECT DISTINCT actor FROM audit_log WHERE action IN ('import', 'annotator.create')")
    assert actors == [{"actor": "root"}], "the demo's entries name the admin who loaded it"
    with pytest.raises(Exception, match="already has data"):
        collect.load_demo(Project(db_path), ADMIN)


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_the_demo_is_refused_below_admin(db_path, actor):
    with pytest.raises(Forbidden):
        collect.load_demo(Project(db_path), actor)
    assert table_size(db_path, "pairs") == 0 and table_size(db_path, "annotators") == 0
    assert_refused(db_path, actor, "collect.load_demo")


def test_counts_are_the_tiles_of_collect(db_path, project):
    c = collect.counts(Project(db_path), ADMIN)
    assert c.tables == {"documents": 6, "queries": 6, "pairs": 6, "annotators": 4, "ratings": 0, "adjudications": 0}
    assert c.empty is False


def test_an_empty_project_is_empty(db_path):
    assert collect.counts(Project(db_path), ADMIN).empty is True


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_counts_are_refused_below_admin(db_path, project, actor):
    with pytest.raises(Forbidden):
        collect.counts(Project(db_path), actor)
    assert_refused(db_path, actor, "collect.counts")


def test_beir_folders_are_the_demo_and_the_folders_in_datasets(db_path, tmp_path, monkeypatch):
    datasets = tmp_path / "datasets"
    monkeypatch.setattr(config, "DATASETS_DIR", datasets)
    assert collect.beir_folders(Project(db_path), ADMIN) == ["demo"]
    assert not datasets.exists(), "listing creates nothing"
    for name in ("scifact", "nfcorpus", ".hidden", "not-beir"):
        (datasets / name).mkdir(parents=True)
        if name != "not-beir":
            (datasets / name / "corpus.jsonl").write_text("", encoding="utf-8")
    (datasets / "notes.txt").write_text("x", encoding="utf-8")
    assert collect.beir_folders(Project(db_path), ADMIN) == ["demo", "nfcorpus", "scifact"]


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_beir_folders_are_refused_below_admin(db_path, actor):
    with pytest.raises(Forbidden):
        collect.beir_folders(Project(db_path), actor)
    assert_refused(db_path, actor, "collect.beir_folders")


# ------------------------------------------------------------------------------------------- judge the holes

def top_pairs_of_trec(path, depth: int) -> set[tuple[str, str]]:
    """(query, document) of each query's first `depth` ranks in a TREC run file, read by its rank column."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, _, doc, rank, _, _ = line.split()
        if int(rank) <= depth:
            found.add((qid, doc))
    return found


def project_pairs(db_path) -> dict[tuple[str, str], dict]:
    return {(r["q"], r["d"]): r for r in rows(db_path, (
        "SELECT q.key AS q, d.key AS d, p.source, p.id, g.label FROM pairs p JOIN queries q ON q.id = p.query_id "
        "JOIN documents d ON d.id = p.document_id LEFT JOIN gold g ON g.pair_id = p.id"))}


def test_pool_unjudged_queues_exactly_the_holes_of_a_systems_top_10_served_first(demo, tmp_path):
    from click.testing import CliRunner

    from studio.cli import cli
    from studio.store.annotators import ensure_annotator
    from studio.store.ratings import next_pair, submit_rating

    def studio(*args):
        result = CliRunner().invoke(cli, ["--db", str(demo.db_path), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    studio("eval", "--db", "--system", "default", "--run-out", str(tmp_path / "runs"))
    top = top_pairs_of_trec(tmp_path / "runs" / "default.trec", 10)
    before = project_pairs(demo.db_path)
    holes = {pair for pair in top if before.get(pair, {}).get("label") is None}
    new = {pair for pair in holes if pair not in before}
    assert new and holes - new, "the demo's top 10 holds new pairs and queued unlabelled ones"

    found = json.loads(studio("pool", "--system", "default", "--depth", "10", "--unjudged", "--json").stdout)
    assert (found["added"], found["already_queued"], found["depth"]) == (len(new), len(holes - new), 10)
    assert found["queries"] == len({q for q, _ in top}) and found["source"] == "holes"
    assert found["systems"]["default"]["unjudged"] == len(holes) and found["systems"]["default"]["ran"]
    after = project_pairs(demo.db_path)
    assert {pair for pair, row in after.items() if row["source"] == "holes"} == new

    with opened(demo.db_path) as db:
        ensure_annotator(db, "newcomer")
        served = next_pair(db, "newcomer")
    served_pair = next(pair for pair, row in after.items() if row["id"] == served.pair_id)
    assert served_pair in holes, "a hole comes before the demo's other untouched pairs"

    again = json.loads(studio("pool", "--system", "default", "--depth", "10", "--unjudged", "--json").stdout)
    assert (again["added"], again["already_queued"]) == (0, len(holes))
    text = studio("pool", "--system", "default", "--unjudged").stdout
    assert text.startswith("no new pair: every unjudged pair in the top 10") and "default: " in text
    entries = rows(demo.db_path, "SELECT actor, after FROM audit_log WHERE action = 'pool' ORDER BY id")
    assert json.loads(entries[0]["after"])["source"] == "holes" and json.loads(entries[0]["after"])["added"] == len(new)

    with opened(demo.db_path) as db:  # two people agree on the hole served first: it is gold now
        ensure_annotator(db, "second")
        submit_rating(db, "newcomer", served.pair_id, 2)
        submit_rating(db, "second", served.pair_id, 2)
    last = json.loads(studio("pool", "--system", "default", "--unjudged", "--json").stdout)
    assert last["systems"]["default"]["unjudged"] == len(holes) - 1 and last["added"] == 0


def test_pool_unjudged_takes_the_rankings_an_evaluation_already_made(demo):
    from studio.store.gold import gold_set

    with opened(demo.db_path) as db:
        gold = gold_set(db)
    query = next(q for q, labels in gold.labels.items() if any(v > 0 for v in labels.values()))
    judged = sorted(gold.labels[query])
    run = {query: {judged[0]: 3.0, "d095": 2.0, "d094": 1.0, judged[-1]: 0.5}}
    strategy = rows(demo.db_path, "SELECT count(*) AS n FROM settings")[0]["n"]
    found = collect.pool_unjudged(demo, ADMIN, [], depth=3, runs={"prod": run})
    holes = {(query, d) for d in ("d095", "d094") if d not in gold.labels[query]}
    assert found["systems"]["prod"]["unjudged"] == len(holes) and not found["systems"]["prod"]["ran"]
    assert found["added"] + found["already_queued"] == len(holes) and found["candidates"] == len(holes)
    assert found["systems"]["prod"]["missing_queries"] == found["queries"] - 1
    assert rows(demo.db_path, "SELECT count(*) AS n FROM settings")[0]["n"] == strategy, "the strategy is kept"


def test_pool_unjudged_refuses_what_it_cannot_do(demo):
    from click.testing import CliRunner

    from studio.cli import cli

    def studio(*args):
        return CliRunner().invoke(cli, ["--db", str(demo.db_path), "pool", *args])

    for args, says in ((["--unjudged"], "name them with --system"),
                       (["--unjudged", "--system", "bm25", "--k", "5"], "--k pool candidates"),
                       (["--system", "bm25"], "--system go with --unjudged"),
                       (["--depth", "5"], "--depth go with --unjudged")):
        result = studio(*args)
        assert result.exit_code == 2 and says in result.output, args
    with pytest.raises(StudioError) as caught:
        collect.pool_unjudged(demo, ADMIN, [])
    assert caught.value.code == "pool_no_systems"
    with pytest.raises(StudioError) as caught:
        collect.pool_unjudged(demo, ADMIN, ["bm25"], depth=0)
    assert caught.value.code == "bad_pool_depth"


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_pool_unjudged_is_refused_below_admin(demo, actor):
    pairs = table_size(demo.db_path, "pairs")
    with pytest.raises(Forbidden):
        collect.pool_unjudged(demo, actor, ["bm25"])
    assert table_size(demo.db_path, "pairs") == pairs
    assert_refused(demo.db_path, actor, "collect.pool_unjudged")


def test_holes_are_counted_per_system_and_pooled_by_rank():
    from studio.evaluation.holes import count_unjudged, holes

    qrels = {"q1": {"a": 2, "b": 0}, "q2": {"c": 1}}
    runs = {"A": {"q1": {"a": 3, "x": 2, "b": 1}, "q2": {"y": 5, "c": 4}},
            "B": {"q1": {"x": 9, "z": 8, "a": 7}, "q9": {"w": 1}}}
    counts = count_unjudged(runs, qrels, depth=2)
    assert counts["A"] == {"pairs": 4, "judged": 2, "unjudged": 2, "judged_share": 0.5, "queries": 2,
                           "missing_queries": 0}
    assert counts["B"] == {"pairs": 2, "judged": 0, "unjudged": 2, "judged_share": 0.0, "queries": 2,
                           "missing_queries": 1}
    # rank 1: (q1, x) by B, (q2, y) by A; rank 2: (q1, z) by B — (q1, x) is also A's rank 2, so two votes
    assert holes(runs, qrels, depth=2) == [("q1", "x"), ("q2", "y"), ("q1", "z")]
