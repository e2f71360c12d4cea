"""Control pairs: an admin turns gold pairs into controls, sets how often they are served and a new person's
qualification; experts and admins read the status. Serving and answering controls is ② itself (annotate.*): a
person cannot tell a control from a pair."""

from __future__ import annotations

from studio.actions.base import Actor, Project, action
from studio.store import controls as store_controls

MAX_RATE = store_controls.MAX_RATE  # the rate slider's end (① and the CLI's help)
MAX_QUALIFY_FIRST = store_controls.MAX_QUALIFY_FIRST


@action("admin", cli="controls add")
def add_from_gold(project: Project, actor: Actor, *, n: int | None = None, seed: int = 0,
                  existing: bool = False) -> dict:
    """Turn `n` gold pairs (all when None; adjudicated first, then agreed, then reference labels, shuffled by
    `seed`) into controls whose expected label is their gold label now. Running it again adds nothing. Returns the
    counts (:func:`studio.store.controls.add_from_gold`) with ``status``."""
    with project.db(existing=existing) as db:
        result = store_controls.add_from_gold(db, n=n, seed=seed, actor=actor.name)
        return {**result, "status": store_controls.status(db)}


@action("admin", cli="controls clear")
def clear(project: Project, actor: Actor, *, existing: bool = False) -> dict:
    """Stop using every control (they become plain gold pairs again); the answers given so far are kept. Returns
    ``removed``, ``answers_kept`` and ``status``."""
    with project.db(existing=existing) as db:
        result = store_controls.clear_controls(db, actor=actor.name)
        return {**result, "status": store_controls.status(db)}


@action("admin", cli="controls rate")
def set_rate(project: Project, actor: Actor, rate: float, *, existing: bool = False) -> dict:
    """Serve controls as `rate` of the pairs served (0 to 0.5; 0 turns them off). Returns the status."""
    with project.db(existing=existing) as db:
        store_controls.set_rate(db, rate, actor=actor.name)
        return store_controls.status(db)


@action("admin", cli="controls rate")
def set_min_accuracy(project: Project, actor: Actor, value: float, *, existing: bool = False) -> dict:
    """The control accuracy (0..1) under which the annotator report flags a person (``--min-accuracy``). Returns
    the status."""
    with project.db(existing=existing) as db:
        store_controls.set_min_accuracy(db, value, actor=actor.name)
        return store_controls.status(db)


@action("admin", cli="controls qualify")
def set_qualification(project: Project, actor: Actor, first: int, pass_mark: float, *,
                      existing: bool = False) -> dict:
    """A new person's `first` pairs are controls (0 turns it off), passed at `pass_mark` (0..1) correct; a failed
    qualification is shown to admins and blocks nobody. Returns the status."""
    with project.db(existing=existing) as db:
        store_controls.set_qualification(db, first, pass_mark, actor=actor.name)
        return store_controls.status(db)


@action("expert", cli="controls status")
def status(project: Project, actor: Actor, *, existing: bool = False) -> dict:
    """The controls by expected label and origin, the rate, the qualification with each person's result, and the
    answers so far (:func:`studio.store.controls.status`)."""
    with project.db(existing=existing) as db:
        return store_controls.status(db)
