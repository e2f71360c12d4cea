"""Serve a recipe (`studio recipe serve`): the system a recipe folder describes as an HTTP service
(:mod:`studio.serving`): OpenAI-compatible embeddings, text-embeddings-inference's rerank, and search over the
documents it holds, ranked as the studio ranks them.

A recipe carries a threshold calibrated on gold labels and serving it publishes the measured system, so it needs
an expert, as exporting it does. The service reads the recipe folder only, never the project's database.
"""

from __future__ import annotations

from pathlib import Path

from studio.actions.base import Actor, Project, action


@action("expert", cli="recipe serve")
def serve_recipe(project: Project, actor: Actor, /, folder: str | Path, *, host: str = "127.0.0.1",
                 port: int = 8080, int8: bool = False, documents: str | Path | None = None,
                 token: str | None = None, max_batch: int = 256, lang: str = "en"):
    """The service of the recipe in `folder`, checked and loaded, ready to :meth:`~studio.serving.service.Service.run`.

    Args:
        host, port: where it listens; a host other than loopback needs `token`.
        int8: serve the models dynamically quantised to int8 (refused when the recipe's ``--int8-check`` measured
            an nDCG@10 drop above 0.01; the service's ``notes`` warn when it was not measured or was slower).
        documents: a JSONL corpus (``_id``/``id``, ``title``, ``text``) or a BEIR folder, held for ``/search``.
        token: the bearer token every request but ``/health`` must carry.
        max_batch: texts per ``/v1/embeddings`` or ``/rerank`` request.

    Raises:
        StudioError: ``serve_needs_token``, ``serve_empty_token``, ``recipe_not_found``, ``recipe_bad``,
            ``int8_refused``, ``model_missing``, ``documents_not_corpus`` and the corpus reader's errors.
    """
    from studio.serving.app import Limits  # imports fastapi: 0.3 s on every `studio` verb otherwise
    from studio.serving.service import build_service  # imports fastapi (through studio.serving.app)

    return build_service(folder, host=host, port=port, int8=int8, documents=documents, token=token,
                         limits=Limits(batch=max_batch), lang=lang)
