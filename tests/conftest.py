from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from studio import config  # noqa: E402
from studio.ingest.records import Document, ImportBatch, PairRecord, Query  # noqa: E402
from studio.store import connect  # noqa: E402
from studio.store.annotators import ensure_annotator  # noqa: E402
from studio.store.imports import import_batch  # noqa: E402
from tiny_models import build_tiny_m3, build_tiny_reranker  # noqa: E402


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "studio.db"


@pytest.fixture
def db(db_path):
    database = connect(db_path)
    yield database
    database.close()


def make_batch(n_pairs: int, *, source: str = "import", ratings: list[tuple[int, str, int]] = ()) -> ImportBatch:
    """`n_pairs` pairs over distinct queries/documents; `ratings` = (pair index, annotator, rating)."""
    records = [PairRecord(Query(f"query {i} about diabetes", f"q{i}"), Document(f"document {i} text", f"d{i}"),
                          line=i + 2) for i in range(n_pairs)]
    for index, annotator, rating in ratings:
        base = records[index]
        records.append(PairRecord(base.query, base.document, line=len(records) + 2, annotator=annotator,
                                  rating=rating))
    return ImportBatch(source, "test.csv", records)


@pytest.fixture
def project(db):
    """A database with 6 pairs and annotators alice, bob, carol (annotators) and eve (expert)."""
    import_batch(db, make_batch(6))
    for name in ("alice", "bob", "carol"):
        ensure_annotator(db, name)
    ensure_annotator(db, "eve", "expert")
    return db


# Tiny random models with BGE-M3's and bge-reranker's layouts (tests/tiny_models.py), one per test module.
@pytest.fixture(scope="module")
def tiny_m3(tmp_path_factory) -> Path:
    return build_tiny_m3(tmp_path_factory.mktemp("tiny") / "m3")


@pytest.fixture(scope="module")
def tiny_reranker(tmp_path_factory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("tiny") / "reranker")


@pytest.fixture(scope="module")
def split_demo(tmp_path_factory) -> Path:
    """The bundled demo as a BEIR folder with a train and a test split (alternate queries)."""
    folder = tmp_path_factory.mktemp("demo-split")
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(config.DEMO_DIR / name, folder / name)
    lines = (config.DEMO_DIR / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    queries = sorted({line.split("\t")[0] for line in lines[1:]})
    train = set(queries[::2])
    (folder / "qrels").mkdir()
    for split, keep in (("train", lambda q: q in train), ("test", lambda q: q not in train)):
        rows = [lines[0]] + [line for line in lines[1:] if keep(line.split("\t")[0])]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def demo(db_path):
    """The demo project (studio.actions.Project): 80 gold labels over 20 queries — 23 relevant, 41 irrelevant, 16
    partially relevant — agreed by its raters."""
    from studio.actions import Project
    from studio.demo import load_demo
    from studio.store import opened

    with opened(db_path) as db:
        load_demo(db)
    return Project(db_path)
