import sqlite3

import pytest

from studio.errors import InputError, NotFoundError, RuleError, StudioError
from studio.store import connect
from studio.store import pairs as store_pairs
from studio.store.adjudication import adjudicate, disagreements, gold_counts
from studio.store.audit import history
from studio.store.imports import import_batch
from studio.store.ratings import next_pair, progress, skip_pair, submit_rating, undo_last
from tests.conftest import make_batch


def rate_next(db, who, value):
    view = next_pair(db, who)
    submit_rating(db, who, view.pair_id, value)
    return view.pair_id


def test_schema_refuses_a_second_rating_by_the_same_annotator_and_a_third_rater(project):
    pair = next_pair(project, "alice").pair_id
    submit_rating(project, "alice", pair, 2)
    with pytest.raises(sqlite3.IntegrityError):
        project.execute("INSERT INTO ratings (pair_id, annotator_id, rating) VALUES (?, 1, 1)", [pair])
    submit_rating(project, "bob", pair, 2)
    with pytest.raises(sqlite3.IntegrityError, match="two ratings"):
        project.execute("INSERT INTO ratings (pair_id, annotator_id, rating) VALUES (?, 3, 1)", [pair])


def test_two_annotators_share_a_pair_and_a_third_never_gets_it(project):
    a = next_pair(project, "alice")
    b = next_pair(project, "bob")
    c = next_pair(project, "carol")
    assert a.pair_id == b.pair_id, "the second slot of a pair goes to a second annotator"
    assert c.pair_id != a.pair_id, "a pair reserved by two annotators is not offered to a third"


def test_reload_serves_the_same_pair_again(project):
    assert next_pair(project, "alice").pair_id == next_pair(project, "alice").pair_id


def test_an_annotator_never_gets_a_pair_they_rated(project):
    seen = []
    while (view := next_pair(project, "alice")) is not None:
        assert view.pair_id not in seen
        seen.append(view.pair_id)
        submit_rating(project, "alice", view.pair_id, 1)
    assert sorted(seen) == [p["id"] for p in project.query("SELECT id FROM pairs ORDER BY id")]


def test_third_rater_is_refused(project):
    pair = rate_next(project, "alice", 2)
    submit_rating(project, "bob", pair, 1)
    with pytest.raises(RuleError) as err:
        submit_rating(project, "carol", pair, 0)
    assert err.value.code == "pair_full"


def test_blind_view_shows_nothing_of_the_other_rating(project):
    pair = rate_next(project, "alice", 2)
    view = next_pair(project, "bob")
    assert view.pair_id == pair, "half-rated pairs are completed first"
    assert view.my_rating is None and view.my_note == ""
    assert "alice" not in repr(view) and set(view.__dataclass_fields__) == {
        "pair_id", "query", "title", "document", "my_rating", "my_note"}


def test_skip_gives_the_slot_to_someone_else(project):
    a = next_pair(project, "alice")
    b = next_pair(project, "bob")
    skip_pair(project, "bob", b.pair_id)
    assert next_pair(project, "carol").pair_id == a.pair_id
    assert next_pair(project, "bob").pair_id != a.pair_id, "a skipped pair leaves my queue"


def test_undo_takes_back_the_last_rating_and_serves_that_pair_again(project):
    first = rate_next(project, "alice", 2)
    second = rate_next(project, "alice", 0)
    next_pair(project, "alice")  # a third pair is on screen
    assert undo_last(project, "alice").pair_id == second
    assert next_pair(project, "alice").pair_id == second
    assert progress(project, "alice").mine_total == 1
    entry = history(project, entity="pair", entity_id=second)[0]
    assert entry["action"] == "rating.undo" and entry["before"]["rating"] == 0 and entry["actor"] == "alice"
    assert first != second


def test_undo_after_a_skip_takes_back_the_skip_and_brings_a_ratings_note_back(project):
    rated = next_pair(project, "alice").pair_id
    submit_rating(project, "alice", rated, 1, "mentions the drug but not the dose")
    skipped = next_pair(project, "alice").pair_id
    skip_pair(project, "alice", skipped)
    undone = undo_last(project, "alice")
    assert (undone.pair_id, undone.kind) == (skipped, "skip"), "the skip was the last action, not the rating"
    assert next_pair(project, "alice").pair_id == skipped, "the skipped pair is back"
    assert progress(project, "alice").mine_total == 1, "the rating before it stays"
    undone = undo_last(project, "alice")
    assert (undone.pair_id, undone.kind, undone.rating, undone.note) == (
        rated, "rating", 1, "mentions the drug but not the dose")
    assert history(project, entity="pair", entity_id=skipped)[-1]["action"] == "skip.undo"


def test_undo_knows_a_skip_came_after_a_rating_made_in_the_same_millisecond(project):
    rated = next_pair(project, "alice").pair_id
    submit_rating(project, "alice", rated, 2)
    skipped = next_pair(project, "alice").pair_id
    skip_pair(project, "alice", skipped)
    project.execute("UPDATE ratings SET created_at = '2026-12-06T08:00:00.000Z'")
    project.execute("UPDATE skips SET created_at = '2026-12-06T08:00:00.000Z'")
    assert undo_last(project, "alice").kind == "skip"


def test_undo_with_nothing_to_undo(project):
    with pytest.raises(StudioError) as err:
        undo_last(project, "alice")
    assert err.value.code == "nothing_to_undo"


def test_rating_again_replaces_my_rating_and_is_audited(project):
    pair = rate_next(project, "alice", 2)
    submit_rating(project, "alice", pair, 1, "changed my mind")
    rows = list(project.query("SELECT rating, note FROM ratings WHERE pair_id = ?", [pair]))
    assert rows == [{"rating": 1, "note": "changed my mind"}]
    assert history(project, entity="pair", entity_id=pair)[0]["before"] == {"rating": 2, "note": ""}


def test_progress_counts(project):
    pair = rate_next(project, "alice", 2)
    submit_rating(project, "bob", pair, 2)
    p = progress(project, "alice")
    assert (p.mine_today, p.mine_total, p.double_rated, p.total_pairs) == (1, 1, 1, 6)
    assert p.queue_left == 5


def test_a_rating_is_on_disk_when_submit_returns(project, db_path):
    pair = rate_next(project, "alice", 2)
    other = connect(db_path)  # another process would see the same
    assert list(other.query("SELECT rating FROM ratings WHERE pair_id = ?", [pair])) == [{"rating": 2}]
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_rating_and_unknown_pair(project):
    with pytest.raises(StudioError):
        submit_rating(project, "alice", 1, 3)
    with pytest.raises(NotFoundError):
        submit_rating(project, "alice", 999, 1)
    with pytest.raises(NotFoundError):
        next_pair(project, "nobody")


def test_import_is_all_or_nothing(db):
    batch = make_batch(4, ratings=[(0, "alice", 2), (0, "bob", 1), (0, "carol", 0)])  # carol is a third rater
    with pytest.raises(InputError) as err:
        import_batch(db, batch)
    assert (err.value.code, err.value.file, err.value.line) == ("too_many_raters", "test.csv", 8)
    assert store_pairs.counts(db) == {"documents": 0, "queries": 0, "pairs": 0, "annotators": 0, "ratings": 0,
                                      "adjudications": 0}


def test_importing_twice_adds_nothing(db):
    first = import_batch(db, make_batch(3, ratings=[(0, "alice", 2)]))
    again = import_batch(db, make_batch(3, ratings=[(0, "alice", 2)]))
    assert (first.pairs, first.ratings, first.documents) == (3, 1, 3)
    assert (again.pairs, again.existing_pairs, again.ratings, again.documents) == (0, 3, 0, 0)


def test_same_id_with_different_text_is_refused(db):
    import_batch(db, make_batch(1))
    from studio.ingest.records import Document, ImportBatch, PairRecord, Query

    clash = ImportBatch("import", "other.csv", [PairRecord(Query("new query", "q9"), Document("other text", "d0"),
                                                           line=2)])
    with pytest.raises(InputError) as err:
        import_batch(db, clash)
    assert (err.value.code, err.value.line, err.value.field) == ("conflicting_key", 2, "doc_id")
    assert store_pairs.counts(db)["queries"] == 1


def test_a_rating_that_contradicts_the_database_is_refused_and_nothing_imported(db):
    import_batch(db, make_batch(1, ratings=[(0, "alice", 2)]))
    with pytest.raises(InputError) as err:
        import_batch(db, make_batch(2, ratings=[(0, "alice", 0)]))
    assert (err.value.code, err.value.file, err.value.line, err.value.field) == ("rating_conflict", "test.csv", 4,
                                                                                 "rating")
    assert err.value.message() == ("test.csv, line 4, field 'rating': annotator 'alice' already rated this pair 2 "
                                   "in the database; the file says 0, and an import never changes a stored rating")
    assert "twice in the file" not in err.value.message()
    counts = store_pairs.counts(db)
    assert (counts["pairs"], counts["ratings"]) == (1, 1)


def test_one_pair_rated_twice_in_a_file_under_two_names_is_a_duplicate(db):
    from studio.ingest.records import Document, ImportBatch, PairRecord, Query

    by_id = PairRecord(Query("q text", "q1"), Document("d text", "d1"), line=2, annotator="alice", rating=2)
    by_text = PairRecord(Query("q text"), Document("d text"), line=3, annotator="alice", rating=0)
    with pytest.raises(InputError) as err:
        import_batch(db, ImportBatch("ratings", "r.csv", [by_id, by_text]))
    assert (err.value.code, err.value.line) == ("duplicate_rating", 3)
    assert store_pairs.counts(db)["ratings"] == 0


def write_beir(root, corpus: str):
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "aspirin"}\n', encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text("q1\td1\t1\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("changed_id", ["d1", "d2"])  # a judged document, and one only in the corpus
def test_beir_id_conflict_names_the_corpus_file_and_line(db, tmp_path, changed_id):
    from studio.ingest import read_beir

    corpus = '{"_id": "d1", "text": "Aspirin eases pain."}\n{"_id": "d2", "text": "Sunburn care."}\n'
    import_batch(db, read_beir(write_beir(tmp_path / "a", corpus)), queue=False)
    changed = corpus.replace(f'"_id": "{changed_id}", "text": "', f'"_id": "{changed_id}", "text": "Changed: ')
    second = write_beir(tmp_path / "b", changed)
    with pytest.raises(InputError) as err:
        import_batch(db, read_beir(second), queue=False)
    line = 1 if changed_id == "d1" else 2
    assert (err.value.code, err.value.file, err.value.line, err.value.field) == (
        "conflicting_key", str(second / "corpus.jsonl"), line, "_id")
    assert err.value.message().startswith(f"{second / 'corpus.jsonl'}, line {line}, field '_id': id '{changed_id}'")


def test_adjudication_sets_gold_and_is_audited(project):
    pair = rate_next(project, "alice", 2)
    submit_rating(project, "bob", pair, 0, "wrong drug")
    agreed = rate_next(project, "alice", 1)
    submit_rating(project, "bob", agreed, 1)
    queue = disagreements(project)
    assert [(d["pair_id"], d["rating_a"], d["rating_b"], d["note_b"]) for d in queue] == [(pair, 2, 0, "wrong drug")]
    with pytest.raises(RuleError) as err:
        adjudicate(project, "carol", pair, 1)
    assert err.value.code == "not_expert"
    with pytest.raises(RuleError):
        adjudicate(project, "eve", agreed, 1)  # not a disagreement
    adjudicate(project, "eve", pair, 1, "partly answers")
    adjudicate(project, "eve", pair, 2, "on reflection")
    assert disagreements(project) == []
    entries = history(project, entity="pair", entity_id=pair)
    assert [e["action"] for e in entries] == ["adjudicate", "adjudicate"]
    assert entries[0]["before"] == {"label": 1, "expert": "eve", "note": "partly answers"}
    assert entries[0]["after"]["label"] == 2
    assert entries[1]["before"] is None and entries[1]["after"]["ratings"] == {"alice": 2, "bob": 0}
    gold = gold_counts(project)
    assert gold["by_label"] == {"0": 0, "1": 1, "2": 1}
    assert gold["by_origin"] == {"agreed": 1, "adjudicated": 1, "reference": 0}


def test_undo_is_refused_once_an_expert_decided(project):
    pair = rate_next(project, "alice", 2)
    submit_rating(project, "bob", pair, 0)
    adjudicate(project, "eve", pair, 1)
    with pytest.raises(RuleError) as err:
        undo_last(project, "bob")
    assert err.value.code == "undo_adjudicated"


def test_reference_labels_are_gold_and_stay_out_of_the_queue(db):
    from studio.ingest.records import Document, ImportBatch, PairRecord, Query

    batch = ImportBatch("beir", "dir", [PairRecord(Query("q", "q1"), Document("d", "d1"), reference_label=2)])
    import_batch(db, batch, queue=False)
    from studio.store.annotators import ensure_annotator

    ensure_annotator(db, "alice")
    assert next_pair(db, "alice") is None
    assert gold_counts(db)["by_origin"]["reference"] == 1
