"""The documents a served recipe searches: a JSON Lines corpus (``_id`` or ``id``, ``title``, ``text``: the bundled
demo's assets/demo/corpus.jsonl, a BEIR corpus.jsonl) or a BEIR folder holding one.

Rows are read as the studio imports a BEIR corpus (:mod:`studio.ingest.beir`): an id is required and unique, a
document needs a title or a text; a bad row stops the load with its file, line and field named. The text a model
sees is formed by the recipe's ``document_text`` (:func:`studio.recipe_runtime.document_text`), not here.
"""

from __future__ import annotations

from pathlib import Path

from studio.errors import InputError, StudioError
from studio.ingest.fields import Where, get_id, get_text
from studio.ingest.json_files import iter_jsonl


def corpus_file(path: str | Path) -> Path:
    """The JSONL file `path` names: itself, or a BEIR folder's corpus.jsonl.

    Raises:
        StudioError: ``documents_not_corpus`` when `path` is neither.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if not path.is_file():
        raise StudioError("documents_not_corpus", path=str(path))
    return path


def read_documents(path: str | Path) -> list[dict]:
    """Every document of the corpus at `path` as ``{"id", "title", "text"}``, in file order.

    Raises:
        StudioError: ``documents_not_corpus``.
        InputError: ``bad_json``, ``missing_field`` (no ``_id``/``id``), ``bad_type``, ``duplicate_id``,
            ``empty_text`` (neither a title nor a text), ``no_rows``; each naming the file and line.
    """
    file = corpus_file(path)
    documents: list[dict] = []
    seen: set[str] = set()
    for line, obj in iter_jsonl(file):
        at = Where(str(file), line)
        name = "_id" if "_id" in obj else "id"
        key = get_id(obj, name, at, field="_id" if name == "_id" else "id", required=True)
        if key in seen:
            raise at.error("duplicate_id", name, key=key)
        seen.add(key)
        title = get_text(obj, "title", at, required=False)
        text = get_text(obj, "text", at, required=False)
        if not (title or text):
            raise at.error("empty_text", "text")
        documents.append({"id": key, "title": title, "text": text})
    if not documents:
        raise InputError("no_rows", file=str(file))
    return documents
