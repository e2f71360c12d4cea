"""Load the inference models the studio scores with: BGE-M3 encoders and cross-encoder rerankers.

By default these are the studio's own :class:`~studio.retrieval.fast_encode.M3Encoder` and
:class:`~studio.retrieval.fast_encode.CrossEncoderScorer`: the same results as FlagEmbedding's ``BGEM3FlagModel``
and ``FlagReranker`` (tests/test_fast_paths.py) in less time (bench/encode_throughput.py). ``STUDIO_FAST_M3=0``
loads FlagEmbedding's classes instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.config import fast_paths_enabled
from studio.errors import StudioError

DEFAULT_RERANK_LENGTH = 512  # FlagReranker's default max_length


def _missing(path: str, exc: Exception) -> StudioError:
    return StudioError("model_missing", model=path, detail=str(exc).splitlines()[0][:200] if str(exc) else
                       type(exc).__name__)


def load_flag_model(class_name: str, path: str, **kwargs):
    """`FlagEmbedding.<class_name>(path, **kwargs)` in fp32, on the GPU when there is one, else the CPU.

    Raises:
        StudioError: ``model_missing`` (with the library's first line) when it cannot be loaded.
    """
    try:
        import FlagEmbedding
        import torch

        factory = getattr(FlagEmbedding, class_name)
        return factory(path, use_fp16=False, devices=None if torch.cuda.is_available() else "cpu", **kwargs)
    except Exception as exc:  # the library raises many kinds; the user needs one message
        raise _missing(path, exc) from exc


def trained_length(path: str | Path) -> int | None:
    """The pair length a studio-trained reranker was fine-tuned on (``studio_model.json``), else None."""
    try:
        info = json.loads((Path(path) / "studio_model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    length = info.get("max_seq_length") if isinstance(info, dict) and info.get("task") == "reranker" else None
    return length if isinstance(length, int) and length > 0 else None


def load_m3_encoder(path: str):
    """A BGE-M3 encoder for the folder `path` with ``BGEM3FlagModel``'s ``encode_queries`` / ``encode_corpus``.

    Raises:
        StudioError: ``model_missing`` when it cannot be loaded.
    """
    if not fast_paths_enabled():
        return load_flag_model("BGEM3FlagModel", path)
    try:
        from studio.retrieval.fast_encode import M3Encoder  # imports torch

        return M3Encoder(path, use_fp16=False)
    except Exception as exc:  # noqa: BLE001 - as load_flag_model: one message for every way loading fails
        raise _missing(path, exc) from exc


def load_cross_encoder(path: str):
    """A reranker for `path` (folder or hub id) with ``FlagReranker.compute_score``.

    Pairs are cut to the length a studio-trained reranker was fine-tuned on, else to FlagReranker's 512 tokens.

    Raises:
        StudioError: ``model_missing`` when it cannot be loaded.
    """
    max_length = trained_length(path) or DEFAULT_RERANK_LENGTH
    if not fast_paths_enabled():
        return load_flag_model("FlagReranker", path, max_length=max_length)
    try:
        from studio.retrieval.fast_encode import CrossEncoderScorer  # imports torch

        return CrossEncoderScorer(path, use_fp16=False, max_length=max_length)
    except Exception as exc:  # noqa: BLE001
        raise _missing(path, exc) from exc
