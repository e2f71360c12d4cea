"""Annotators: the people who rate pairs (annotator), settle disagreements (expert) or run the project (admin)."""

from __future__ import annotations

from sqlite_utils import Database

from studio.config import ROLES
from studio.errors import NotFoundError, StudioError
from studio.store.audit import record


def ensure_annotator(db: Database, name: str, role: str = "annotator", *, actor: str = "system") -> dict:
    """Return the annotator called `name`, creating them with `role` if they do not exist yet.

    An existing annotator keeps their role; use :func:`set_role` to change it.
    """
    name = (name or "").strip()
    if not name:
        raise StudioError("empty_name")
    if role not in ROLES:
        raise StudioError("bad_role", role=role)
    row = find_annotator(db, name)
    if row:
        return row
    with db.atomic():
        db.execute("INSERT INTO annotators (name, role) VALUES (?, ?)", [name, role])
        row = find_annotator(db, name)
        record(db, actor=actor, action="annotator.create", entity="annotator", entity_id=row["id"], after=row)
    return row


def find_annotator(db: Database, name: str) -> dict | None:
    """The annotator row called `name`, or None."""
    rows = list(db.query("SELECT id, name, role, created_at FROM annotators WHERE name = ?", [name.strip()]))
    return rows[0] if rows else None


def get_annotator(db: Database, name: str) -> dict:
    """The annotator row called `name`; raises NotFoundError if there is none."""
    row = find_annotator(db, name)
    if row is None:
        raise NotFoundError("annotator_not_found", name=name)
    return row


def set_role(db: Database, name: str, role: str, *, actor: str = "system") -> dict:
    """Change an annotator's role (audited)."""
    if role not in ROLES:
        raise StudioError("bad_role", role=role)
    before = get_annotator(db, name)
    with db.atomic():
        db.execute("UPDATE annotators SET role = ? WHERE id = ?", [role, before["id"]])
        after = get_annotator(db, name)
        record(db, actor=actor, action="annotator.role", entity="annotator", entity_id=before["id"],
               before={"role": before["role"]}, after={"role": role})
    return after


def list_annotators(db: Database) -> list[dict]:
    """Everyone on the team (not removed) with how many ratings they made."""
    return list(db.query(
        """SELECT a.id, a.name, a.role, a.created_at, count(r.id) AS ratings
           FROM annotators a LEFT JOIN ratings r ON r.annotator_id = a.id
           WHERE a.removed_at IS NULL GROUP BY a.id ORDER BY a.name"""
    ))
