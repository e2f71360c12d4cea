"""Models (⑦): what is in models/, what is wrong with each folder, check one, set the ★ default, delete one.

Listing, checking, choosing the default and deleting are an admin's (the ★ decides what pooling, mining and the
demo views use for everyone); the names of the usable models, for the pickers of ⑧ and ⑨, are an expert's.
What "default" means (the ★ model, everywhere) is explained once, in :mod:`studio.models.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from studio import config
from studio.actions.base import Actor, Project, action, audit
from studio.errors import StudioError
from studio.models import registry
from studio.models.inspection import check as check_model
from studio.models.inspection import provenance as recorded
from studio.models.inspection import scan
from studio.models.registry import get_default, resolve

EMBEDDED = config.EMBEDDED_MODEL_NAME  # the embedded all-MiniLM-L6-v2 by its own name (what 'default' is without a ★)


@dataclass(frozen=True)
class Choices:
    """The models the pickers of ⑧ and ⑨ offer: usable embedders (the embedded one first) and rerankers, and the
    name of the ★ default model."""

    embedders: list[str]
    rerankers: list[str]
    starred: str


def model_field(text: str | None, *, field: str) -> str:
    """A model named in a page field: a name in models/, ``default``, the embedded model's name or a hub id
    (``BAAI/bge-m3``), stripped. A server path (absolute, ``~``, ``..``, a backslash, deeper than ``owner/name``)
    is refused, as :func:`studio.actions.base.inside` refuses one for a file (the CLI may name any folder).

    Raises:
        StudioError: ``empty_field``, ``path_outside``.
    """
    name = (text or "").strip()
    if not name:
        raise StudioError("empty_field", field=field)
    parts = PurePosixPath(name).parts
    if (name.startswith(("/", "~", ".")) or "\\" in name or ":" in name or len(parts) > 2
            or any(part in (".", "..") for part in parts)):
        raise StudioError("path_outside", field=field, name=name, folder=f"{Path(config.MODELS_DIR).name}/")
    return name


def shown_path(path: str | Path | None) -> str | None:
    """A server path as a page shows it: relative to the project folder that holds it (``exports/run/train.jsonl``,
    ``models/demo-ft``), else the file's name alone: never the server's absolute path."""
    if not path:
        return None
    target = Path(path).absolute()
    for folder in (config.EXPORTS_DIR, config.MODELS_DIR, config.DATASETS_DIR, config.JOBS_DIR, config.RUNS_DIR):
        for root in {Path(folder).absolute(), Path(folder).resolve()}:
            if target.is_relative_to(root):
                return str(PurePosixPath(Path(folder).name, *target.relative_to(root).parts))
    return target.name


def provenance(info) -> dict:
    """Where a model came from (:func:`studio.models.inspection.provenance` of its ``studio_model.json``: base, data,
    date, query counts, final losses, held-out scores), its files named as :func:`shown_path` shows them; {} for a
    model the studio did not train."""
    facts = recorded(info.origin)
    return {**facts, "train": shown_path(facts.get("train")), "valid": shown_path(facts.get("valid"))} if facts \
        else {}


def optional_model_field(text: str | None, *, field: str) -> str | None:
    """:func:`model_field` for a field that may stay empty (a reranker): None when it is."""
    return model_field(text, field=field) if (text or "").strip() else None


@action("admin", cli="models")
def list_models(project: Project, actor: Actor) -> list:
    """Every model (:class:`studio.models.inspection.ModelInfo`): the embedded one first, then models/ by name,
    with their layout problems and the ★ default marked. Nothing is loaded."""
    return scan()


@action("admin", cli="models check")
def check(project: Project, actor: Actor, name_or_path: str):
    """Load a model (a name in models/, ``default``, a folder) the way the studio will and run one input through it;
    the :class:`~studio.models.inspection.ModelInfo` with every problem found."""
    return check_model(resolve(name_or_path))


@action("admin", cli="models default")
def set_default(project: Project, actor: Actor, name: str) -> str:
    """Make `name` (an embedder in models/, or the embedded model's name) the ★ default model; returns the name of
    the default now. Audited (``model.default``) with the default before and after."""
    before = registry.get_default()
    registry.set_default((name or "").strip())
    after = registry.get_default()
    if after != before:
        audit(project, actor, "model.default", entity="model", before={"default": before}, after={"default": after})
    return after


@action("admin", cli="models delete")
def delete(project: Project, actor: Actor, name: str) -> None:
    """Delete the model folder models/`name` (a linked-in model: the link only); the ★ falls back to the embedded
    model when it was this one. Audited (``model.delete``) with the folder and whether it was the default."""
    name = (name or "").strip()
    was_default = registry.get_default() == name
    path = registry.resolve(name)
    registry.delete(name)
    audit(project, actor, "model.delete", entity="model", before={"name": name, "path": path, "default": was_default})


@action("expert", why_no_cli="the model pickers of ⑧ Evaluate and ⑨ Compare (the CLI lists models with "
                             "`studio models`)")
def choices(project: Project, actor: Actor) -> Choices:
    """The names of the usable embedders and rerankers, and the ★ default's (layout checks only, nothing loads)."""
    infos = [info for info in scan() if info.ok]
    return Choices([i.name for i in infos if i.kind != "reranker"], [i.name for i in infos if i.kind == "reranker"],
                   get_default())
