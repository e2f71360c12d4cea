"""The base model a job starts from: checked and named by the app, resolved to a folder by the worker.

The app side (:func:`check_base`, :func:`base_label`) never downloads: it turns the user's ``--base`` into what the
worker should get (``default``, an absolute folder, or a hub id this machine has) and names a base as people do.
The worker side (:func:`resolve_base`, :func:`resolve_architecture`, :func:`passage_max_len`) turns it into a
folder (downloading a hub id when the hub is on) and reads what the folder implies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from studio import config as cfg
from studio.errors import StudioError
from studio.models.registry import DEFAULT_NAME, EMBEDDED_NAME, get_default, resolve
from studio.training.config import TrainConfig
from studio.training.failures import WorkerError, first_line


# --- the app's side ------------------------------------------------------------------------------------------------
def check_base(base: str, models_dir: str | Path | None = None) -> str:
    """The base model as the worker should get it: ``default``, a model folder (absolute; a name in models/ is
    looked up there) or a hub id this machine has downloaded. Raises StudioError otherwise; never downloads."""
    text = str(base or "").strip()
    if text == DEFAULT_NAME and get_default(models_dir) == EMBEDDED_NAME:  # a ★ model resolves to its folder below
        return text
    found = resolve(text, models_dir) if text else ""
    path = Path(found).expanduser()
    if found and path.is_dir():
        return os.path.abspath(path)
    if found and path.exists():
        raise StudioError("base_is_file", base=text)
    if not text or names_a_folder(text):
        raise StudioError("base_not_found", base=text)
    if _offline() and not _hub_cached(text):
        raise StudioError("base_not_available", base=text)
    return text


def names_a_folder(base: str) -> bool:
    """Whether `base` can only mean a folder (absolute, relative with ./ or ~, or deeper than a hub id's
    "owner/name"): when no such folder exists it is missing, not a model to fetch from the hub."""
    path = Path(base).expanduser()
    return path.is_absolute() or base.startswith((".", "~")) or base.count("/") > 1 or "\\" in base


def _offline() -> bool:
    """Whether the worker runs with the hub off (the launcher's default unless HF_HUB_OFFLINE says otherwise)."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hub_cached(repo_id: str) -> bool:
    """Whether the hub model `repo_id` is in this machine's Hugging Face cache (looked up, never fetched)."""
    try:
        from huggingface_hub import snapshot_download  # heavy: about 0.6 s to import

        return Path(snapshot_download(repo_id=repo_id, local_files_only=True)).is_dir()
    except Exception:  # noqa: BLE001 - not cached, a malformed id, or no hub library: not usable offline
        return False


def base_label(base: str | Path, models_dir: str | Path | None = None) -> str:
    """The base model as people name it, not where it lies: ``all-MiniLM-L6-v2`` for the embedded model (a folder
    inside the virtual environment), ``NAME`` for ``models/NAME``, ``owner/name`` for a Hugging Face cache folder.
    ``default`` in a job's config is the embedded model too (check_base keeps the word only when the ★ model is
    the embedded one; the worker reads it so). Names, hub ids and other folders are returned as they are."""
    text = str(base or "").strip()
    path = Path(text)
    if text == "default":
        return cfg.EMBEDDED_MODEL_NAME
    if not text or not path.is_absolute():
        return text

    def same(a: Path, b: Path) -> bool:
        return os.path.realpath(a) == os.path.realpath(b)

    try:
        if same(path, cfg.embedded_model_path()):
            return cfg.EMBEDDED_MODEL_NAME
    except ImportError:  # the embedded model's package is missing: nothing to compare with
        pass
    if same(path.parent, Path(models_dir or cfg.MODELS_DIR)):
        return path.name
    for part in path.parts:  # <hub cache>/models--owner--name/snapshots/<revision>
        if part.startswith("models--") and part.count("--") >= 2:
            return "/".join(part.split("--")[1:])
    return text


# --- the worker's side ---------------------------------------------------------------------------------------------
def resolve_base(base: str) -> Path:
    """``default`` → the embedded all-MiniLM-L6-v2; a folder → itself; otherwise a hub id (cached or downloaded)."""
    if base == "default":
        return cfg.embedded_model_path()
    path = Path(base).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise WorkerError(f"base model '{base}' is a file, not a model folder")
    if names_a_folder(base):
        raise WorkerError(f"base model folder {path} does not exist")
    try:
        from huggingface_hub import snapshot_download  # heavy: about 0.6 s to import

        return Path(snapshot_download(repo_id=base, ignore_patterns=[
            "flax_model.msgpack", "rust_model.ot", "tf_model.h5", "onnx/*", "openvino/*", "*.onnx"]))
    except Exception as exc:  # noqa: BLE001 - any hub failure means the same thing to the user
        raise WorkerError(f"base model '{base}' is not a folder and could not be fetched: {first_line(exc)}")


def resolve_architecture(config: TrainConfig, base: Path) -> str:
    """``auto``: ``m3`` when the base ships BGE-M3's ``colbert_linear.pt`` or ``sparse_linear.pt``, else ``encoder``."""
    if config.task == "reranker":
        return "encoder"
    if config.architecture != "auto":
        return config.architecture
    return "m3" if (base / "colbert_linear.pt").exists() or (base / "sparse_linear.pt").exists() else "encoder"


def passage_max_len(config: TrainConfig, base: Path, cap: int = 512) -> int:
    """The passage length to train with: as asked, or the base's own max_seq_length (at most `cap`).

    Training on longer passages than the model reads at inference is wasted compute and a train/serve mismatch:
    all-MiniLM-L6-v2 encodes 256 tokens, so training it on 512 doubled the cost of every step for nothing.
    """
    if config.passage_max_len is not None:
        return config.passage_max_len
    try:
        seq = json.loads((base / "sentence_bert_config.json").read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        seq = None
    return min(int(seq), cap) if isinstance(seq, int) and seq > 0 else cap
