import getpass
import json

from click.testing import CliRunner

from studio.cli import cli
from studio.store import connect
from studio.store import pairs as store_pairs


def run(db_path, *args):
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)


def test_import_pairs_then_again_dedupes(db_path, tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("query,document\n糖尿病的并发症?,视网膜病变和肾病\nstroke signs,Face drooping and arm weakness\n",
                 encoding="utf-8")
    first = run(db_path, "import", "pairs", str(f))
    assert first.exit_code == 0 and "2 new pairs" in first.output
    second = run(db_path, "import", "pairs", str(f))
    assert "0 new pairs (2 already there)" in second.output


def test_bad_row_names_file_line_and_field_and_writes_nothing(db_path, tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_text("query,document,annotator,rating\nq1,d1,alice,2\nq2,d2,bob,5\n", encoding="utf-8")
    result = run(db_path, "import", "ratings", str(f))
    assert result.exit_code == 1
    assert "ratings.csv, line 3, field 'rating': rating must be 0, 1 or 2, got '5'" in result.output
    assert "Traceback" not in result.output
    assert store_pairs.counts(connect(db_path))["pairs"] == 0


def test_demo_agreement_and_gold(db_path):
    assert run(db_path, "demo").exit_code == 0
    again = run(db_path, "demo")
    assert again.exit_code == 1 and "already has data" in again.output
    report = json.loads(run(db_path, "agreement", "--json").stdout)
    assert report["double_rated"] == 100 and 0.6 <= report["pooled"]["kappa"] <= 0.8
    assert len(report["disagreements"]) == 20
    assert "PASSES" in run(db_path, "agreement").output
    gold = json.loads(run(db_path, "gold", "--json").stdout)
    assert gold["total"] == 80 and gold["by_origin"]["agreed"] == 80


def test_annotators_add_and_role_change(db_path):
    assert "Dr. Wu: expert" in run(db_path, "annotators", "add", "Dr. Wu", "--role", "expert").output
    assert "Dr. Wu: admin" in run(db_path, "annotators", "add", "Dr. Wu", "--role", "admin").output
    listing = json.loads(run(db_path, "annotators", "--json").stdout)
    assert [(r["name"], r["role"]) for r in listing] == [("Dr. Wu", "admin")]


def test_import_beir_reference_labels(db_path, tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Warfarin", "text": "Vitamin K rich foods change INR."}\n'
        '{"_id": "d2", "title": "", "text": "Statins lower LDL cholesterol."}\n', encoding="utf-8")
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "warfarin diet"}\n', encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    result = run(db_path, "import", "beir", str(beir))
    assert result.exit_code == 0, result.output
    gold = json.loads(run(db_path, "gold", "--json").stdout)
    assert gold["by_origin"]["reference"] == 1 and gold["by_label"]["2"] == 1
    assert store_pairs.counts(connect(db_path))["documents"] == 2, "the whole corpus is imported, not only qrels"


def test_pool_bm25_adds_candidates(db_path):
    run(db_path, "demo")
    before = store_pairs.counts(connect(db_path))["pairs"]
    result = run(db_path, "pool", "--k", "5", "--retriever", "bm25", "--json")
    data = json.loads(result.stdout)
    assert data["queries"] == 30 and data["added"] > 0
    assert store_pairs.counts(connect(db_path))["pairs"] == before + data["added"]


def test_pool_dense_with_embedded_model(db_path):
    run(db_path, "demo")
    data = json.loads(run(db_path, "pool", "--k", "3", "--retriever", "hybrid", "--json").stdout)
    assert data["candidates"] > 0 and data["retriever"] == "hybrid"


def test_quality_and_export_triplets(db_path, tmp_path):
    run(db_path, "demo")
    report = json.loads(run(db_path, "quality", "--json").stdout)
    assert report["counts"]["positives"] == 23 and report["gate_passed"] is True
    assert [f["code"] for f in report["findings"]] == ["few_triplets"]
    out = tmp_path / "exp" / "train.jsonl"
    manifest = json.loads(run(db_path, "export", "triplets", str(out), "--hard-negatives", "bm25", "--json").stdout)
    assert manifest["counts"]["train_lines"] + manifest["counts"]["valid_lines"] + manifest["test"]["queries"] == 20
    assert manifest["test"]["queries"] == len(manifest["test"]["query_keys"]) > 0, "kept back for evaluation"
    assert (tmp_path / "exp" / "train.valid.jsonl").exists() and (tmp_path / "exp" / "train.csv").exists()
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"query", "pos", "neg"} and len(first["neg"]) == 7


def test_export_refuses_bad_options_in_one_line(db_path, tmp_path):
    run(db_path, "demo")
    result = run(db_path, "export", "triplets", str(tmp_path / "t.jsonl"), "--rank-window", "50-10")
    assert result.exit_code == 1 and "rank window" in result.output and "Traceback" not in result.output
    result = run(db_path, "export", "triplets", str(tmp_path / "t.txt"))
    assert result.exit_code == 1 and "must be a .jsonl file" in result.output


def test_eval_on_a_beir_folder_compares_two_models(db_path, tmp_path):
    from studio.config import PROJECT_ROOT

    demo = PROJECT_ROOT / "assets" / "demo"
    result = run(db_path, "eval", "--model", "default", "--model", "default", "--beir", str(demo),
                 "--k", "1,10", "--run-out", str(tmp_path / "runs"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 30 and report["documents"] == 95
    metrics = report["models"][0]["metrics"]
    assert {"ndcg@10", "mrr@10", "recall@10", "p@1"} <= set(metrics) and 0 < metrics["ndcg@10"] <= 1
    rows = report["comparisons"][0]["rows"]
    assert all(r["delta"] == 0 and r["p_value"] == 1.0 and not r["significant"] for r in rows), "a model vs itself"
    trec = (tmp_path / "runs" / "default.trec").read_text().splitlines()
    assert trec[0].split()[1] == "Q0" and trec[0].split()[3] == "1"


def test_eval_needs_one_source(db_path):
    result = run(db_path, "eval", "--model", "default")
    assert result.exit_code != 0 and "--beir DIR or --db" in result.output


def test_train_in_the_foreground_registers_the_model(db_path, tmp_path, monkeypatch):
    from studio import config as cfg
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(cfg, "JOBS_DIR", tmp_path / "jobs")
    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "models")
    base = build_tiny_reranker(tmp_path / "tiny")
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"query": f"q{i}", "pos": [f"answer {i}"], "neg": [f"other {i}"]}) + "\n"
                            for i in range(4)), encoding="utf-8")
    result = run(db_path, "train", "--task", "reranker", "--base", str(base), "--train", str(data), "--name", "rr",
                 "--max-steps", "3", "--batch-size", "4", "--group-size", "2", "--query-max-len", "16",
                 "--passage-max-len", "32", "--freeze-embeddings", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "model saved to" in result.stdout and (tmp_path / "models" / "rr" / "studio_model.json").exists()
    assert "warning: only 3 training step(s) (--max-steps 3)" in result.stderr, "announced, and blamed on the cap"
    config = json.loads(next((tmp_path / "jobs").glob("*/config.json")).read_text(encoding="utf-8"))
    assert config["seed"] == 7  # the job trains with the seed asked for
    jobs_listed = json.loads(run(db_path, "jobs", "--json").stdout)
    assert [(j["name"], j["status"]) for j in jobs_listed] == [("rr", "succeeded")]
    again = run(db_path, "train", "--task", "reranker", "--base", str(base), "--train", str(data), "--name", "rr")
    assert again.exit_code == 1 and "already exists" in again.output


def test_the_starred_model_is_the_one_used_where_none_is_named(db_path, tmp_path, monkeypatch):
    """`studio models default NAME` (★) decides which embedder pools candidates and prepares training data."""
    from studio import config as cfg
    from studio.config import embedded_model_path

    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mini").symlink_to(embedded_model_path(), target_is_directory=True)
    run(db_path, "demo")
    pooled = json.loads(run(db_path, "pool", "--k", "2", "--retriever", "dense", "--json").stdout)
    assert pooled["model"] == "all-MiniLM-L6-v2", "no ★ set: the embedded model, by its name"
    starred = run(db_path, "models", "default", "mini")
    assert starred.exit_code == 0 and "default model: mini" in starred.stdout
    pooled = run(db_path, "pool", "--k", "2", "--retriever", "dense")
    assert pooled.exit_code == 0 and "model mini" in pooled.stdout
    report = json.loads(run(db_path, "quality", "--json").stdout)
    assert report["lengths"]["model"].endswith("/models/mini"), "lengths measured with the ★ model's tokenizer"
    manifest = json.loads(run(db_path, "export", "triplets", str(tmp_path / "e" / "train.jsonl"), "--json").stdout)
    assert manifest["options"]["model"] == "mini"
    listing = json.loads(run(db_path, "models", "--json").stdout)
    assert [(m["name"], m["is_default"]) for m in listing] == [("all-MiniLM-L6-v2", False), ("mini", True)]
    back = run(db_path, "models", "default", "all-MiniLM-L6-v2")
    assert back.exit_code == 0 and "default model: all-MiniLM-L6-v2" in back.stdout
    assert not (tmp_path / "models" / ".default").exists()
    from studio.store import opened
    from studio.store.audit import history

    with opened(db_path) as db:
        changes = [r["after"]["default"] for r in reversed(history(db, entity="model")) if r["action"] == "model.default"]
    assert changes == ["mini", "all-MiniLM-L6-v2"], "each change of the ★ is audited"


def test_annotators_add_without_role_keeps_the_role(db_path):
    """Adding a colleague again (say, from a team list) must not demote an expert."""
    run(db_path, "annotators", "add", "Dr. New", "--role", "expert")
    again = run(db_path, "annotators", "add", "Dr. New")
    assert "Dr. New: expert" in again.stdout and "already on the team" in again.stderr
    assert "Carol: annotator" in run(db_path, "annotators", "add", "Carol").stdout


def test_reading_verbs_refuse_a_database_that_does_not_exist(db_path, tmp_path):
    """A mistyped --db used to create an empty database and report zeros as if all were well."""
    missing = tmp_path / "typo.db"
    for verb in (["agreement"], ["gold"], ["quality"], ["jobs"], ["annotators"], ["export", "triplets", "x.jsonl"]):
        result = run(missing, *verb)
        assert result.exit_code == 1, verb
        assert f"no database at {missing}" in result.output and "studio --db FILE " + verb[0] in result.output
    assert not missing.exists()


def test_range_checks_are_one_line_errors(db_path, tmp_path):
    run(db_path, "demo")
    for args in (["pool", "--k", "-1"], ["pool", "--k", "0"], ["eval", "--model", "default", "--db", "--k", "0"],
                 ["eval", "--model", "default", "--db", "--k", "abc"]):
        result = run(db_path, *args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args
        assert "Invalid value for '--k'" in result.output, args


def test_a_reranker_is_refused_where_an_embedder_is_needed(db_path, tmp_path, monkeypatch):
    from studio import config as cfg
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "models")
    build_tiny_reranker(tmp_path / "models" / "rr")
    run(db_path, "demo")
    default = run(db_path, "models", "default", "rr")
    assert default.exit_code == 1 and "'rr' is a reranker" in default.output
    pooled = run(db_path, "pool", "--retriever", "dense", "--model", "rr")
    assert pooled.exit_code == 1 and "--reranker" in pooled.output


def test_cancelling_an_ended_job_says_so(db_path, tmp_path):
    from studio.store import jobs as store_jobs

    db = connect(db_path)
    job_id = store_jobs.create_job(db, name="x", task="embedder", job_dir=str(tmp_path / "j"), output_dir="")
    store_jobs.mark_ended(db, job_id, "succeeded")
    result = run(db_path, "jobs", "cancel", str(job_id))
    assert result.exit_code == 1 and "already ended (succeeded)" in result.output


def test_ratings_by_ids_for_pairs_already_imported(db_path, tmp_path):
    """Ratings exported by id from another tool (the demo's ratings.jsonl has this shape) attach to imported pairs."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"query_id": "q1", "query": "糖尿病的并发症?", "doc_id": "d1", "document": "视网膜病变和肾病"},
        {"query_id": "q1", "query": "糖尿病的并发症?", "doc_id": "d2", "document": "Statins lower LDL."}]),
        encoding="utf-8")
    assert run(db_path, "import", "pairs", str(pairs)).exit_code == 0
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("query_id,doc_id,annotator,rating\nq1,d1,alice,2\nq1,d2,alice,0\nq1,d1,bob,2\n",
                       encoding="utf-8")
    result = run(db_path, "import", "ratings", str(ratings))
    assert result.exit_code == 0 and "0 new pairs (2 already there)" in result.output and "3 ratings" in result.output
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"query_id": "q1", "doc_id": "d2", "annotator": "carol", "rating": 1}\n'
                       '{"query_id": "q1", "doc_id": "d9", "annotator": "carol", "rating": 1}\n', encoding="utf-8")
    refused = run(db_path, "import", "ratings", str(unknown))
    assert refused.exit_code == 1 and "line 2, field 'doc_id': id 'd9' is not in the database" in refused.output
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 3, "nothing of the refused file was kept"


def test_import_prints_json_on_request(db_path, tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text('query\tdocument\nwhat is "HbA1c"?\tAverage blood glucose over three months\n', encoding="utf-8")
    summary = json.loads(run(db_path, "import", "pairs", str(f), "--json").stdout)
    assert summary["pairs"] == 1 and summary["documents"] == 1 and summary["file"] == str(f)
    db = connect(db_path)
    assert db.execute("SELECT text FROM queries").fetchone()[0] == 'what is "HbA1c"?', "TSV keeps its quotes"


def test_export_triplets_without_a_file_writes_into_exports(db_path, tmp_path, monkeypatch):
    from studio import config as cfg

    monkeypatch.setattr(cfg, "EXPORTS_DIR", tmp_path / "exports")
    run(db_path, "demo")
    manifest = json.loads(run(db_path, "export", "triplets", "--hard-negatives", "none", "--json").stdout)
    written = sorted((tmp_path / "exports").glob("*/train.jsonl"))
    assert len(written) == 1 and manifest["files"]["train"] == "train.jsonl"
    entry = connect(db_path).execute("SELECT actor, after FROM audit_log WHERE action = 'export'").fetchall()
    assert [(actor, json.loads(after)["path"]) for actor, after in entry] == [(f"cli:{getpass.getuser()}",
                                                                               str(written[0]))]


def test_models_check_and_delete_by_name(db_path, tmp_path, monkeypatch):
    from studio import config as cfg
    from studio.config import embedded_model_path

    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mini").symlink_to(embedded_model_path(), target_is_directory=True)
    checked = run(db_path, "models", "check", "mini", "--json")
    assert checked.exit_code == 0 and json.loads(checked.stdout)["loads_with"] == ["sentence-transformers"]
    assert run(db_path, "models", "check", "ghost").exit_code == 1
    refused = run(db_path, "models", "delete", "default", "--yes")
    assert refused.exit_code == 1 and "cannot be deleted" in refused.output
    deleted = run(db_path, "models", "delete", "mini", "--yes")
    assert deleted.exit_code == 0 and not (tmp_path / "models" / "mini").exists()
    assert embedded_model_path().is_dir(), "a linked-in model: only the link goes"


def test_search_shows_the_top_documents_with_gold_labels(db_path):
    from studio.actions import Actor, Project, search

    run(db_path, "demo")
    query = search.example_queries(Project(db_path), Actor.local())[0]  # a query with gold labels
    found = json.loads(run(db_path, "search", query, "--k", "3", "--json").stdout)
    assert found["model"] == "default" and [r["rank"] for r in found["results"]] == [1, 2, 3]
    assert any(r["gold"] is not None for r in found["results"]), "the demo query has gold labels"
    text = run(db_path, "search", "糖尿病", "--k", "2", "--model", "all-MiniLM-L6-v2")
    assert text.exit_code == 0 and text.stdout.startswith("all-MiniLM-L6-v2: 2 results")
    empty = run(db_path.with_name("empty.db"), "search", "x")
    assert empty.exit_code == 1 and "corpus is empty" in empty.output
