"""Rating pairs: the actor's next pair, rate, skip, undo, progress. Everyone on the team may rate; each only ever
as themselves, and never sees another person's rating of a pair."""

from __future__ import annotations

from dataclasses import dataclass

from studio.actions.base import Actor, Project, action
from studio.store import ratings as store_ratings
from studio.store.annotators import ensure_annotator

_INTERACTIVE = "the keyboard-first rating queue of ② (one pair at a time in the app)"


@dataclass(frozen=True)
class Queue:
    """What the rating view shows: the actor's next pair (None when their queue is empty) and their progress."""

    pair: store_ratings.PairView | None
    progress: store_ratings.Progress


def _queue(db, name: str, session: str | None = None) -> Queue:
    return Queue(store_ratings.next_pair(db, name, session=session), store_ratings.progress(db, name))


@action("annotator", why_no_cli=_INTERACTIVE)
def start(project: Project, actor: Actor, *, session: str | None = None) -> Queue:
    """Put the actor on the team if they are new (without sign-in), then their next pair, reserved for them (and
    for the browser `session`, which frees it when it ends: :func:`leave`)."""
    with project.db() as db:
        ensure_annotator(db, actor.name, actor=actor.name)
        return _queue(db, actor.name, session)


@action("annotator", why_no_cli=_INTERACTIVE)
def rate(project: Project, actor: Actor, pair_id: int, rating: int, note: str = "", *,
         session: str | None = None) -> Queue:
    """Save the actor's rating of `pair_id` (committed and fsynced before this returns), then their next pair."""
    with project.db() as db:
        store_ratings.submit_rating(db, actor.name, int(pair_id), int(rating), note or "")
        return _queue(db, actor.name, session)


@action("annotator", why_no_cli=_INTERACTIVE)
def skip(project: Project, actor: Actor, pair_id: int, *, session: str | None = None) -> Queue:
    """Pass on `pair_id`: it leaves the actor's queue and its slot goes to someone else."""
    with project.db() as db:
        store_ratings.skip_pair(db, actor.name, int(pair_id))
        return _queue(db, actor.name, session)


@action("annotator", why_no_cli=_INTERACTIVE)
def undo(project: Project, actor: Actor, *, session: str | None = None) -> tuple[store_ratings.Undone, Queue]:
    """Take back the actor's own last action (a rating, with its note, or a skip); returns what was undone and the
    queue, which serves that pair again."""
    with project.db() as db:
        undone = store_ratings.undo_last(db, actor.name)
        return undone, _queue(db, actor.name, session)


def leave(project: Project, session: str) -> int:
    """A browser session ended (tab closed or reloaded): free the pairs it held at once, instead of after the
    reservation's 30 minutes. Not an action: Gradio calls it when the session ends, with nobody acting."""
    with project.db() as db:
        return store_ratings.release_session(db, session)


@action("annotator", why_no_cli=_INTERACTIVE)
def queue(project: Project, actor: Actor) -> Queue:
    """The actor's current pair (kept reserved for them) and progress; nothing is rated or skipped."""
    with project.db() as db:
        return _queue(db, actor.name)
