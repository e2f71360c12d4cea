"""① Collect actions: import, pool, demo, counts, BEIR folders: an admin does them, anyone else is refused."""

import json

import pytest

from studio import config
from studio.actions import Actor, Project, collect
from studio.errors import Forbidden
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
