"""How a run of the worker fails, and the plain words ``result.json`` gives for it.

:class:`WorkerError` is a problem with the job that the user can act on (its message goes to ``result.json`` as
is); :class:`Cancelled` ends a run asked to stop before training began; :func:`explain` words any other exception
(out of GPU memory, a missing file...) for ``result.json``.
"""

from __future__ import annotations


class WorkerError(Exception):
    """A problem with the job the user can act on; its message goes to result.json as is."""


class Cancelled(BaseException):
    """Raised in the main thread when a stop is asked for before training has begun (nothing to save yet).

    A BaseException, as KeyboardInterrupt is, so that no library's ``except Exception`` swallows it."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain(exc: BaseException) -> str:
    """A plain-words message for result.json."""
    if isinstance(exc, WorkerError):
        return str(exc)
    text = str(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text or (
            "out of memory" in text and ("CUDA" in text or "HIP" in text or "MPS" in text)):
        return "out of GPU memory: lower the batch size or passage length"
    if isinstance(exc, MemoryError):
        return "out of memory: lower the batch size or passage length"
    if isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError)):
        return first_line(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"
