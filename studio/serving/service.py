"""`studio recipe serve`: one recipe folder as an HTTP service (:mod:`studio.serving.app`), checked before it starts.

Before anything loads: a host that other machines can reach needs a token (the same rule as the app's
``--auth``), the folder must hold a recipe this runtime runs, and ``--int8`` is refused for a recipe whose
``--int8-check`` measured an nDCG@10 drop above :data:`studio.serving.int8.MAX_DROP` (warned about when it was not
measured, or measured slower). Then the models load and the documents (``--documents``) are embedded and indexed,
so the first request does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.config import is_loopback
from studio.errors import StudioError
from studio.i18n import t
from studio.recipe_runtime import FILE_NAME, Index, Runtime, load_recipe
from studio.serving.app import Limits, create_app
from studio.serving.documents import read_documents
from studio.serving.int8 import MAX_DROP

DEFAULT_PORT = 8080


def check_host(host: str, token: str | None) -> None:
    """Refuse to serve on a host other machines reach without a token.

    Raises:
        StudioError: ``serve_needs_token``; ``serve_empty_token`` for a blank token.
    """
    if token is not None and not token.strip():
        raise StudioError("serve_empty_token")
    if token is None and not is_loopback(host):
        raise StudioError("serve_needs_token", host=host)


def int8_notes(recipe: dict, lang: str = "en") -> list[str]:
    """Warnings about serving `recipe` in int8 (unmeasured, or measured slower).

    Raises:
        StudioError: ``int8_refused`` when ``--int8-check`` measured an nDCG@10 drop above the limit.
    """
    measured = recipe.get("int8")
    if not measured:
        return [t("serve.int8_unmeasured", lang)]
    if measured["ndcg_delta"] < -MAX_DROP:
        raise StudioError("int8_refused", delta=f"{measured['ndcg_delta']:+.4f}", queries=measured["queries"],
                          limit=MAX_DROP)
    if measured["speedup"] <= 1.0:
        return [t("serve.int8_slower", lang, speedup=f"{measured['speedup']:.2f}")]
    return []


@dataclass
class Service:
    """A recipe ready to serve: the app, what it runs and holds, and the warnings to show before it starts."""

    app: object
    runtime: Runtime
    index: Index
    host: str
    port: int
    notes: list[str] = field(default_factory=list)

    def server(self, log_level: str = "info"):
        """A uvicorn server of the app (``.run()`` blocks until ``.should_exit`` is set or Ctrl+C)."""
        import uvicorn  # ~0.2 s to import: only when serving

        return uvicorn.Server(uvicorn.Config(self.app, host=self.host, port=self.port, log_level=log_level))

    def run(self) -> None:
        """Serve until interrupted (uvicorn, one process)."""
        self.server().run()


def open_recipe(folder: str | Path, *, int8: bool = False) -> Runtime:
    """The recipe in `folder`, ready to run.

    Raises:
        StudioError: ``recipe_not_found``; ``recipe_bad`` (not a recipe of this version, or a stage this runtime
            cannot run).
    """
    path = Path(folder)
    file = path / FILE_NAME if path.is_dir() else path
    if not file.is_file():
        raise StudioError("recipe_not_found", path=str(path))
    try:
        return load_recipe(file, int8=int8)
    except (ValueError, KeyError) as exc:
        raise StudioError("recipe_bad", path=str(file), detail=str(exc)) from exc


def build_service(folder: str | Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, int8: bool = False,
                  documents: str | Path | None = None, token: str | None = None, limits: Limits = Limits(),
                  lang: str = "en") -> Service:
    """The service of the recipe in `folder`: checked (host and token, the recipe, int8), models loaded and
    `documents` (a JSONL corpus or BEIR folder) indexed.

    Raises:
        StudioError: as :func:`check_host`, :func:`open_recipe`, :func:`int8_notes`; ``model_missing`` when a model
            cannot be loaded; the corpus reader's errors (:func:`studio.serving.documents.read_documents`).
    """
    check_host(host, token)
    runtime = open_recipe(folder, int8=int8)
    notes = int8_notes(runtime.data, lang) if int8 else []
    docs = read_documents(documents) if documents else []
    try:
        if runtime.dense_model:
            runtime.embed(["warm up"])
        if runtime.reranker_model:
            runtime.rerank("warm up", ["warm up"])
        index = runtime.index(docs)
    except (OSError, ValueError) as exc:
        model = runtime.reranker_model if runtime.dense_model is None else runtime.dense_model
        raise StudioError("model_missing", model=str(model), detail=str(exc).splitlines()[0][:200]) from exc
    return Service(create_app(runtime, index, token=token, limits=limits), runtime, index, host, port, notes)
