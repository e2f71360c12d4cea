"""The team: people, roles and accounts (sign-in). Admins change them; sign-in checks a password."""

from __future__ import annotations

from dataclasses import dataclass

from studio.actions.base import Actor, Project, action
from studio.errors import StudioError
from studio.store import annotators as store_annotators
from studio.store import users as store_users


@dataclass(frozen=True)
class Person:
    """Someone on the team as the team table shows them."""

    name: str
    role: str
    ratings: int
    can_sign_in: bool = False
    removed: bool = False


def sign_in(project: Project, name: str, password: str) -> bool:
    """Whether `name` may sign in with `password` (the app's sign-in form; there is no actor before it)."""
    with project.db() as db:
        return store_users.verify(db, name, password) is not None


def session_stamp(project: Project, name: str) -> dict | None:
    """``{"role", "stamp"}`` of an account that can sign in now, else None (removed, no password, unknown).

    The web layer keeps the stamp a session was opened under and ends the session once it differs: a password
    change, a role change or a removal ends that person's open sessions at their next request.
    """
    with project.db() as db:
        return store_users.session_stamp(db, name)


def record_sign_in(project: Project, event: str, name: str, address: str, **details) -> None:
    """Audit a sign-in event (failed, refused, ok, expired, ended) with the name tried and the client address.

    Not an action: there is no signed-in actor yet (the web layer calls it around the sign-in form and sessions).
    """
    with project.db() as db:
        store_users.record_sign_in(db, event, name, address, **details)


def signed_in_actor(project: Project, name: str | None) -> Actor:
    """The Actor of a signed-in request: its user name and the role the database gives it now (a role changed by an
    admin takes effect at the next action, and a removed person can do nothing)."""
    if not (name or "").strip():
        raise StudioError("signed_out")
    with project.db() as db:
        role = store_users.active_role(db, name)
    if role is None:
        raise StudioError("signed_out")
    return Actor(name.strip(), role, signed_in=True)


def quick_start_accounts(project: Project, spec: str) -> list[str]:
    """Accounts from ``--auth alice:pw,bob:pw`` (the launcher's quick start, run at this machine by its admin).

    Entries are separated by commas, or by line breaks when `spec` has any (an ``--auth-file`` or ``STUDIO_AUTH``
    with one pair per line, whose passwords may then contain commas); blank lines and lines starting with ``#``
    are skipped. Every entry needs a non-empty name and a password of at least 8 characters; nothing is written
    unless all are valid. A name new to the team becomes an annotator; a name already there keeps its role.
    Returns the names.
    """
    spec = spec or ""
    if "\n" in spec:
        items = [line.rstrip("\r") for line in spec.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    else:
        items = spec.split(",")
    entries = []
    for item in items:
        name, sep, password = item.partition(":")
        if not sep or not name.strip():
            raise StudioError("bad_auth_entry", entry=item.split(":")[0] + (":…" if sep else ""))
        store_users.check_password_rule(password)
        entries.append((name.strip(), password))
    if not entries:
        raise StudioError("bad_auth_entry", entry=spec or "")
    with project.db() as db, db.atomic():
        for name, password in entries:
            store_users.set_password(db, name, password, actor="launcher")
    return [name for name, _ in entries]


def has_accounts(project: Project) -> bool:
    """Whether anyone can sign in (``--auth`` without a list needs at least one account)."""
    with project.db() as db:
        return any(row["can_sign_in"] for row in store_users.list_accounts(db))


@action("annotator", why_no_cli="the annotator picker of the app without sign-in (the CLI lists people with `studio "
                                "annotators`)")
def names(project: Project, actor: Actor) -> list[str]:
    """Names on the team, for the annotator picker of the app without sign-in. With sign-in, only one's own."""
    if actor.signed_in:
        return [actor.name]
    with project.db() as db:
        return [row["name"] for row in store_annotators.list_annotators(db)]


@action("expert", why_no_cli="the expert picker of ④ without sign-in")
def experts(project: Project, actor: Actor) -> list[str]:
    """Who may adjudicate: experts and admins on the team; with sign-in, only the actor."""
    if actor.signed_in:
        return [actor.name]
    with project.db() as db:
        return [row["name"] for row in store_annotators.list_annotators(db) if row["role"] in ("expert", "admin")]


@action("admin", cli="annotators")
def team(project: Project, actor: Actor, *, existing: bool = False) -> list[Person]:
    """Everyone on the team with role, rating count and whether they can sign in."""
    with project.db(existing=existing) as db:
        return [Person(r["name"], r["role"], r["ratings"], r["can_sign_in"], r["removed_at"] is not None)
                for r in store_users.list_accounts(db)]


@action("admin", cli="annotators add")
def add_person(project: Project, actor: Actor, name: str, role: str | None = None) -> tuple[dict, bool]:
    """Add `name` to the team with `role` (default annotator), or change an existing person's role when `role` is
    given (an existing person keeps their role without it). Returns the row and whether anything changed."""
    with project.db() as db:
        existing = store_annotators.find_annotator(db, name or "")
        if existing is None:
            return store_annotators.ensure_annotator(db, name, role or "annotator", actor=actor.name), True
        if role is None or role == existing["role"]:
            return existing, False
        return store_annotators.set_role(db, name, role, actor=actor.name), True


@action("admin", cli="users add")
def add_account(project: Project, actor: Actor, name: str, password: str, role: str | None = None) -> dict:
    """Give `name` an account (a new person gets `role`, default annotator; an existing one keeps theirs unless
    `role` is given)."""
    if role is not None and role not in ("annotator", "expert", "admin"):
        raise StudioError("bad_role", role=role)
    with project.db() as db:
        return store_users.set_password(db, name, password, role=role, actor=actor.name)


@action("admin", cli="users passwd")
def set_password(project: Project, actor: Actor, name: str, password: str) -> dict:
    """A new password for someone already on the team."""
    with project.db() as db:
        store_users.account(db, name)  # NotFoundError for a name not on the team
        return store_users.set_password(db, name, password, actor=actor.name)


@action("admin", cli="users remove")
def remove_account(project: Project, actor: Actor, name: str) -> dict:
    """Take someone off the team: they can no longer sign in; their ratings stay."""
    if name.strip() == actor.name:
        raise StudioError("remove_self")
    with project.db() as db:
        return store_users.remove(db, name, actor=actor.name)
