"""What every action shares: who acts (Actor), where (Project), the role check and the action registry.

An action is one thing a person does in the studio (rate a pair, start a job, delete a model). It is a plain
function ``fn(project, actor, /, ...options) -> result`` decorated with :func:`action`, which

- refuses an actor whose role is below the action's (an audit entry with the real actor, then
  :class:`~studio.errors.Forbidden`), so the check lives here and not in hidden tabs;
- registers the action in :data:`ACTIONS` with its CLI verb (or the reason it has none), which a test reads.

The audit log records what a person tried: what the page loads by itself (a tab's refresh, the page's load chain,
run under :func:`preloading` or :func:`preloaded`) is still refused for a role below the action's, but writes no
"refused" entry — an annotator opening the page did not try to read ①'s counts.

The UI and the CLI call actions only; the actor comes from the server (the sign-in, or the local machine),
never from a field the client sends.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from studio.config import ROLES
from studio.errors import Forbidden, StudioError
from studio.store import opened
from studio.store.audit import record

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}  # annotator < expert < admin
_PRELOAD: ContextVar[bool] = ContextVar("studio_preload", default=False)


@dataclass(frozen=True)
class Actor:
    """The person an action is done by: a name on the team and a role.

    ``signed_in`` is True when the name comes from a sign-in (the app with ``--auth``); the local machine (the CLI,
    the app without sign-in) acts as a trusted admin.
    """

    name: str
    role: str
    signed_in: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLE_RANK:
            raise StudioError("bad_role", role=self.role)
        if not (self.name or "").strip():
            raise StudioError("empty_name")

    @classmethod
    def local(cls, name: str = "cli") -> Actor:
        """Someone at this machine's keyboard (the CLI, or the app without sign-in): an admin."""
        return cls(name.strip() or "cli", "admin")

    def can(self, role: str) -> bool:
        """Whether this actor's role is at least `role`."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True)
class Project:
    """Where a project lives: its database file (models/, exports/ and jobs/ come from studio.config)."""

    db_path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_path", Path(self.db_path))

    @contextmanager
    def db(self, *, existing: bool = False) -> Iterator:
        """An open connection for one action; `existing` refuses a database that is not there yet (a mistyped path
        would otherwise become a new, empty project reporting zeros)."""
        if existing and not self.db_path.is_file():
            raise StudioError("no_database", path=str(self.db_path))
        with opened(self.db_path) as db:
            yield db


@dataclass(frozen=True)
class ActionSpec:
    """An action as the registry knows it."""

    name: str                 # module.function, e.g. "annotate.rate"
    role: str                 # the least role that may do it
    cli: str | None           # the CLI verb that does it ("users add"), or None
    why_no_cli: str | None    # why there is no verb (an interactive view), when cli is None
    fn: Callable


ACTIONS: dict[str, ActionSpec] = {}
F = TypeVar("F", bound=Callable[..., Any])


def action(role: str, *, cli: str | None = None, why_no_cli: str | None = None) -> Callable[[F], F]:
    """Register an action that needs at least `role`, done from the CLI by `cli` (or not, for `why_no_cli`)."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    if (cli is None) == (why_no_cli is None):
        raise ValueError("give exactly one of cli= or why_no_cli=")

    def wrap(fn: F) -> F:
        name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"

        @functools.wraps(fn)
        def checked(project: Project, actor: Actor, /, *args, **kwargs):
            if not isinstance(actor, Actor):
                raise TypeError(f"{name}: the actor must be an Actor, not {type(actor).__name__}")
            require(project, actor, role, name)
            return fn(project, actor, *args, **kwargs)

        checked.role = role  # type: ignore[attr-defined]
        ACTIONS[name] = ActionSpec(name, role, cli, why_no_cli, checked)
        return checked  # type: ignore[return-value]

    return wrap


@contextmanager
def preloading() -> Iterator[None]:
    """Actions called inside are what the page loads by itself, not what a person tried: a refusal still raises
    :class:`~studio.errors.Forbidden` but writes no audit entry."""
    token = _PRELOAD.set(True)
    try:
        yield
    finally:
        _PRELOAD.reset(token)


def preloaded(fn: F) -> F:
    """`fn` (a page handler: a tab's refresh, a step of the page's load chain) run under :func:`preloading`; its
    signature is kept (``functools.wraps``), so Gradio still hands it the request. A generator stays one."""
    if getattr(fn, "preloads", False):
        return fn
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def each(*args, **kwargs):
            with preloading():
                yield from fn(*args, **kwargs)
        wrapper = each
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with preloading():
                return fn(*args, **kwargs)
    wrapper.preloads = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def require(project: Project, actor: Actor, role: str, what: str) -> None:
    """Refuse `actor` unless their role is at least `role`; a refusal is audited under the real actor, unless the
    page asked by itself (:func:`preloading`)."""
    if actor.can(role):
        return
    if _PRELOAD.get():
        raise Forbidden(what, actor=actor.name, role=actor.role, needs=role)

    try:
        with project.db() as db, db.atomic():
            record(db, actor=actor.name, action="refused", entity="action", entity_id=None,
                   after={"action": what, "role": actor.role, "needs": role})
    except Exception:  # the refusal stands even when the audit cannot be written (a read-only disk)
        pass
    raise Forbidden(what, actor=actor.name, role=actor.role, needs=role)


def audit(project: Project, actor: Actor, what: str, *, entity: str, entity_id: int | None = None,
          before: Any = None, after: Any = None) -> None:
    """One audit entry for an action whose domain module does not write one itself (models, files)."""
    with project.db() as db, db.atomic():
        record(db, actor=actor.name, action=what, entity=entity, entity_id=entity_id, before=before, after=after)


def inside(folder: Path, name: str | None, *, field: str) -> Path:
    """`name`, typed or picked by a client, as a path inside `folder`; an absolute path, '~' or '..' is refused.

    The UI hands over names inside the project's folders (exports/, models/, datasets/), never server paths.
    """
    text = (name or "").strip()
    if not text:
        raise StudioError("empty_field", field=field)
    shown = f"{Path(folder).name}/"  # the project folder by name: the page never sees the server's paths
    path = Path(text)
    if path.is_absolute() or text.startswith("~") or ".." in path.parts or "\\" in text:
        raise StudioError("path_outside", field=field, name=text, folder=shown)
    root = Path(folder).resolve()
    full = (root / path).resolve()
    if full != root and root not in full.parents:  # a symlink that leads out
        raise StudioError("path_outside", field=field, name=text, folder=shown)
    return full
