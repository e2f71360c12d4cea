"""CSV files the studio writes hold no spreadsheet formulas (OWASP CSV injection): a crafted query or document that
is imported comes out of the export with a leading ``'``, the JSONL training files keep it as it is."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from studio.cli import cli

CRAFTED = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)"]


def run(db_path, *args):
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_crafted_texts_imported_and_exported_start_no_csv_cell_with_a_formula(db_path, tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = {f"d{i}": text for i, text in enumerate(["=cmd|' /C calc'!A0", "-2+3", "\tTab first", "\rReturn first",
                                                    "plain one", "plain two", "plain three", "plain four"])}
    queries = {f"q{i}": text for i, text in enumerate(CRAFTED)}
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n"
                                               for k, v in docs.items()), encoding="utf-8")
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()),
                                        encoding="utf-8")
    qrels = [f"q{i}\td{i}\t1" for i in range(len(CRAFTED))] + [f"q{i}\td{i + 4}\t0" for i in range(len(CRAFTED))]
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n",
                                             encoding="utf-8")
    run(db_path, "import", "beir", str(beir))
    out = tmp_path / "exp" / "train.jsonl"
    run(db_path, "export", "triplets", str(out), "--hard-negatives", "none", "--valid-fraction", "0",
        "--test-fraction", "0")

    with open(out.with_suffix(".csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    cells = [cell for row in rows[1:] for cell in row]
    assert {row[0] for row in rows[1:]} == {"'" + q for q in CRAFTED}, "every crafted query is there, neutralised"
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3" in cells
    dangerous = [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert dangerous == []
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {line["query"] for line in lines} == set(CRAFTED), "the training data keeps the texts as they are"
