"""The model registry: which models there are, what a model's name means, which one is the ★ default, and whether a
model fits its place in a system.

A model is a folder. The embedded all-MiniLM-L6-v2 (:func:`studio.config.embedded_model_path`) is always
listed first under its own name, :data:`EMBEDDED_NAME` (``all-MiniLM-L6-v2``; ``embedded`` names it too);
every sub-folder of ``models/`` with a ``config.json`` or a ``modules.json`` follows, sorted by name. The
folder name is the model's name.

**What "default" means.** There is one default model, the ★ of ``studio models`` and ⑦: the name stored in
``models/.default`` (one line), or the embedded model when that file is absent or names a folder that no
longer exists. The word ``default`` always means that ★ model, wherever a model is named (``--model default``,
``--base default``, a model box in the app) and where none is named at all (an omitted ``--model``, an empty
box): :func:`resolve` turns ``default`` into the ★ model's folder, which is the embedded all-MiniLM-L6-v2 as
long as no ★ is set. To mean the embedded model whatever the ★ is, name it: ``all-MiniLM-L6-v2``.
``default`` and the embedded model's names are reserved: a folder in ``models/`` called so is not listed.

What is inside a folder (its layout, whether it loads, where it came from) is :mod:`studio.models.inspection`'s.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

from studio import config
from studio.errors import StudioError

DEFAULT_NAME = "default"                   # the ★ default model, whichever it is
EMBEDDED_NAME = config.EMBEDDED_MODEL_NAME  # the embedded all-MiniLM-L6-v2, by its own name
EMBEDDED_NAMES = (EMBEDDED_NAME, "embedded")
DEFAULT_FILE = ".default"
ORIGIN_FILE = "studio_model.json"  # what the trainer records in a model it wrote (studio.training.model_export)
USES = ("embedder", "reranker")  # what a model does in a system: a first stage encodes, a reranker scores pairs


# --------------------------------------------------------------------------------------------------- helpers
def models_root(models_dir: str | os.PathLike | None = None) -> Path:
    """Where named models live: `models_dir`, or :data:`studio.config.MODELS_DIR` when None."""
    return Path(config.MODELS_DIR if models_dir is None else models_dir)


def embedded_folder() -> Path:
    """The embedded model's folder (inside the environment)."""
    return Path(config.embedded_model_path())


def _is_embedded(name: str) -> bool:
    return name in EMBEDDED_NAMES


def is_reserved(name: str) -> bool:
    """``default`` and the embedded model's names: they never name a folder in models/."""
    return name == DEFAULT_NAME or _is_embedded(name)


def _is_plain_name(name: str) -> bool:
    """A single folder name: not empty, no separators, not ``.``/``..``, not hidden."""
    return (bool(name) and name == name.strip() and "/" not in name and "\\" not in name
            and os.sep not in name and (os.altsep or "/") not in name and not name.startswith("."))


def is_model_folder(entry: Path) -> bool:
    """Whether an entry of models/ is a model the registry lists: a non-hidden folder with a ``config.json`` or a
    ``modules.json`` whose name is not reserved (README.md, half-written or unrelated folders are not)."""
    return (not entry.name.startswith(".") and not is_reserved(entry.name) and entry.is_dir()
            and ((entry / "config.json").is_file() or (entry / "modules.json").is_file()))


# -------------------------------------------------------------------------------------------------- registry
def get_default(models_dir: str | os.PathLike | None = None) -> str:
    """The name of the ★ default model: ``models_dir/.default``, or :data:`EMBEDDED_NAME` when that file is absent
    or stale (what ``default`` means, see the module docstring)."""
    root = models_root(models_dir)
    try:
        name = (root / DEFAULT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return EMBEDDED_NAME
    if is_reserved(name) or not _is_plain_name(name) or not (root / name).is_dir():
        return EMBEDDED_NAME
    return name


def trained_on(name_or_path: str | os.PathLike, models_dir: str | os.PathLike | None = None, *,
               include_valid: bool = True) -> list[str]:
    """The training and validation files a studio-trained model learned from (its ``studio_model.json``), those
    still on disk; [] for any other model. `include_valid` False: the training file only (the validation file
    gave the job a loss to watch, no gradient)."""
    try:
        info = json.loads((Path(resolve(name_or_path, models_dir)) / ORIGIN_FILE).read_text(encoding="utf-8"))
        files = [info.get("train"), info.get("valid") if include_valid else None]
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and Path(f).is_file()]


def require_embedder(name_or_path: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> str:
    """:func:`resolve`, refusing a reranker: a cross-encoder scores (query, document) pairs and cannot encode a
    corpus, yet sentence-transformers would load one with a default pooling and return embeddings all the same.

    Raises:
        StudioError: ``model_is_reranker``.
    """
    resolved = resolve(name_or_path, models_dir)
    config = Path(resolved) / "config.json"
    if _is_cross_encoder(str(config), _changed(config)):
        raise StudioError("model_is_reranker", model=str(name_or_path))
    return resolved


def names(models_dir: str | os.PathLike | None = None) -> list[str]:
    """The names a model box takes without a path: the embedded model's, then the model folders in `models_dir`
    (as :func:`studio.models.inspection.scan` lists them, nothing inspected)."""
    root = models_root(models_dir)
    found = [EMBEDDED_NAME]
    if root.is_dir():
        found += [e.name for e in sorted(root.iterdir(), key=lambda p: p.name) if is_model_folder(e)]
    return found


def require(name_or_path: str | os.PathLike, use: str = "embedder",
            models_dir: str | os.PathLike | None = None) -> str:
    """:func:`resolve`, checked for `use` before anything loads, so a typo or a model in the wrong place of a system
    is said in the studio's words rather than the loader's ("We couldn't connect to 'https://huggingface.co'",
    "shape mismatch"):

    * a reference that is neither ``default``, the embedded model, a folder in `models_dir`, an existing path nor
      a hub id (``owner/name``) that can load (in the local hub cache, or the hub reachable: ``HF_HUB_OFFLINE``
      unset) is refused with the names there are (``model_unknown``);
    * ``use="embedder"`` (a first stage) refuses a cross-encoder (``model_is_reranker``);
    * ``use="reranker"`` refuses a local model that is not a cross-encoder (``model_not_reranker``: an embedder or
      a BGE-M3 folder scores no pairs).

    Raises:
        StudioError: ``model_unknown``, ``model_is_reranker``, ``model_not_reranker``.
    """
    text = str(name_or_path).strip()
    resolved = resolve(text, models_dir)
    local = Path(resolved).exists()
    config_path = Path(resolved) / "config.json" if local else _cached_config(text)
    if not local and config_path is None and not _hub_reachable(text):
        raise StudioError("model_unknown", model=text, have=", ".join(names(models_dir)))
    changed = _changed(config_path) if config_path is not None else None
    cross = _is_cross_encoder(str(config_path), changed) if config_path is not None else False
    if use == "reranker" and not cross and (local or config_path is not None):
        raise StudioError("model_not_reranker", model=text)
    if use != "reranker" and cross:
        raise StudioError("model_is_reranker", model=text)
    return resolved


def _is_hub_id(text: str) -> bool:
    """``owner/name``: two plain parts, the shape of a Hugging Face model id."""
    parts = text.split("/")
    return len(parts) == 2 and all(_is_plain_name(p) for p in parts)


def _cached_config(text: str) -> Path | None:
    """The config.json of hub id `text` in the local hub cache, or None (not a hub id, not cached)."""
    if not _is_hub_id(text):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache  # heavy: about 0.6 s to import

        found = try_to_load_from_cache(text, "config.json")
    except Exception:  # noqa: BLE001 — a malformed id or an unreadable cache: not available offline
        return None
    return Path(found) if isinstance(found, str) else None


def _hub_reachable(text: str) -> bool:
    """Whether hub id `text` may still be downloaded: the hub is not switched off (``HF_HUB_OFFLINE``)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return _is_hub_id(text) and not offline


def _changed(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None  # a hub id, or a folder whose config lives in a module folder: not a cross-encoder's layout


@functools.lru_cache(maxsize=64)
def _is_cross_encoder(config_path: str, changed: int | None) -> bool:
    """Whether a config.json names a ...ForSequenceClassification architecture (cached per file version: search
    resolves its model on every query)."""
    if changed is None:
        return False
    try:
        architectures = json.loads(Path(config_path).read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return False
    return any("ForSequenceClassification" in str(a) for a in architectures)


def set_default(name: str, models_dir: str | os.PathLike | None = None) -> None:
    """Make `name` (an embedder folder in `models_dir`, or the embedded model's name) the ★ default model.

    ``default`` names the ★ model already, so it changes nothing.

    Raises:
        StudioError: ``model_not_found`` when there is no such model folder, ``model_is_reranker`` for a reranker
            (the default model encodes: pooling, mining, the demo views).
    """
    root = models_root(models_dir)
    name = name.strip()
    if name == DEFAULT_NAME:
        return
    if _is_embedded(name):
        (root / DEFAULT_FILE).unlink(missing_ok=True)
        return
    if not _is_plain_name(name) or not (root / name).is_dir():
        raise StudioError("model_not_found", name=name)
    require_embedder(name, root)
    tmp = root / f"{DEFAULT_FILE}.tmp"
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, root / DEFAULT_FILE)


def delete(name: str, models_dir: str | os.PathLike | None = None) -> None:
    """Remove the model folder `models_dir/name`; if it was the ★ default, the embedded model becomes the default.

    Raises:
        StudioError: ``model_protected`` for ``default``, the embedded model or anything but a plain folder name
            (``../x``, ``a/b``, hidden names); ``model_not_found`` when there is no such folder.
    """
    root = models_root(models_dir)
    if is_reserved(name) or not _is_plain_name(name) or name in (".", ".."):
        raise StudioError("model_protected", name=name)
    target = root / name
    if not target.is_dir():
        raise StudioError("model_not_found", name=name)
    was_default = get_default(root) == name
    if target.is_symlink():
        target.unlink()  # a linked-in model: drop the link, never the folder it points to
    else:
        shutil.rmtree(target)
    if was_default:
        (root / DEFAULT_FILE).unlink(missing_ok=True)


def resolve(name_or_path: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> str:
    """Turn a model reference into something loaders accept.

    ``default`` → the ★ default model's folder (:func:`get_default`: the embedded model's when none is set);
    :data:`EMBEDDED_NAME` or ``embedded`` → the embedded model's folder; a plain name that is a folder in
    `models_dir` → that folder; an existing absolute or relative path → that path made absolute (so a worker
    with another working directory finds it); anything else is returned unchanged (a hub id — offline, loading
    it fails later with the loader's own error).
    """
    text = str(name_or_path).strip()
    root = models_root(models_dir)
    if text == DEFAULT_NAME:
        text = get_default(root)
    if _is_embedded(text):
        return str(embedded_folder())
    if _is_plain_name(text) and (root / text).is_dir():
        return str(root / text)
    candidate = Path(os.path.expanduser(text))
    if text and candidate.exists():
        return os.path.abspath(candidate)
    return text
