"""Load a FlagEmbedding inference model (BGEM3FlagModel, FlagReranker) the one way the studio does."""

from __future__ import annotations

from studio.errors import StudioError


def load_flag_model(class_name: str, path: str):
    """`FlagEmbedding.<class_name>(path)` in fp32, on the GPU when there is one, else the CPU.

    Raises:
        StudioError: ``model_missing`` (with the library's first line) when it cannot be loaded.
    """
    try:
        import FlagEmbedding
        import torch

        factory = getattr(FlagEmbedding, class_name)
        return factory(path, use_fp16=False, devices=None if torch.cuda.is_available() else "cpu")
    except Exception as exc:  # the library raises many kinds; the user needs one message
        raise StudioError("model_missing", model=path, detail=str(exc).splitlines()[0][:200]) from exc
