"""Accounts: who may sign in, with a salted slow hash of their password (never the password itself).

People are rows of ``annotators`` (the team); an account is that row with a ``password_hash``. Removing an
account clears the hash and marks the person removed: their ratings, decisions and audit entries stay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from sqlite_utils import Database

from studio.errors import NotFoundError, StudioError
from studio.store.annotators import ensure_annotator, find_annotator
from studio.store.audit import record

MIN_PASSWORD_LENGTH = 8
# scrypt at N=2^14, r=8, p=1: ~16 MiB and tens of milliseconds per guess (OWASP's minimum for scrypt).
_N, _R, _P = 2 ** 14, 8, 1


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()])


def password_matches(password: str, stored: str | None) -> bool:
    """Whether `password` hashes to `stored`; compares in constant time, and takes as long for an unknown user."""
    if not stored:
        hashlib.scrypt(password.encode("utf-8"), salt=b"\0" * 16, n=_N, r=_R, p=_P, dklen=32)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def check_password_rule(password: str | None) -> str:
    """The password as given, if it is long enough."""
    if password is None or len(password) < MIN_PASSWORD_LENGTH:
        raise StudioError("short_password", min=MIN_PASSWORD_LENGTH)
    return password


def set_password(db: Database, name: str, password: str, *, role: str | None = None, actor: str = "system") -> dict:
    """Give `name` an account with `password` (creating the person with `role`, default annotator, if new).

    An existing person keeps their role unless `role` is given; a removed person is back on the team.
    """
    check_password_rule(password)
    person = find_annotator(db, name) or ensure_annotator(db, name, role or "annotator", actor=actor)
    hashed = hash_password(password)
    with db.atomic():
        db.execute("UPDATE annotators SET password_hash = ?, removed_at = NULL WHERE id = ?", [hashed, person["id"]])
        if role and role != person["role"]:
            db.execute("UPDATE annotators SET role = ? WHERE id = ?", [role, person["id"]])
            record(db, actor=actor, action="annotator.role", entity="annotator", entity_id=person["id"],
                   before={"role": person["role"]}, after={"role": role})
        record(db, actor=actor, action="account.password", entity="annotator", entity_id=person["id"],
               after={"name": person["name"]})
    return account(db, name)


def account(db: Database, name: str) -> dict:
    """`name`'s account: id, name, role, whether they can sign in, and when they were removed."""
    rows = list(db.query(
        "SELECT id, name, role, password_hash IS NOT NULL AS can_sign_in, removed_at, created_at "
        "FROM annotators WHERE name = ?", [(name or "").strip()]))
    if not rows:
        raise NotFoundError("annotator_not_found", name=name)
    row = rows[0]
    row["can_sign_in"] = bool(row["can_sign_in"])
    return row


def verify(db: Database, name: str, password: str) -> dict | None:
    """The signed-in person's row when `password` is theirs and they are not removed; None otherwise."""
    rows = list(db.query("SELECT id, name, role, password_hash FROM annotators WHERE name = ? AND removed_at IS NULL",
                         [(name or "").strip()]))
    stored = rows[0]["password_hash"] if rows else None
    if not password_matches(password or "", stored):
        return None
    return {k: rows[0][k] for k in ("id", "name", "role")}


def active_role(db: Database, name: str) -> str | None:
    """The role of `name` if they are on the team and not removed, else None."""
    rows = list(db.query("SELECT role FROM annotators WHERE name = ? AND removed_at IS NULL", [(name or "").strip()]))
    return rows[0]["role"] if rows else None


def session_stamp(db: Database, name: str) -> dict | None:
    """What a web session of `name` is valid for: ``{"role", "stamp"}``, or None when they cannot sign in now.

    The stamp is a digest of the account's id, role and password hash (a fresh salt each time a password is set),
    so a password change, a role change or a removal gives a different stamp (or None), whatever code path made the
    change. A session opened under another stamp has ended.
    """
    rows = list(db.query("SELECT id, role, password_hash FROM annotators "
                         "WHERE name = ? AND removed_at IS NULL AND password_hash IS NOT NULL", [(name or "").strip()]))
    if not rows:
        return None
    row = rows[0]
    digest = hashlib.sha256(f"{row['id']}|{row['role']}|{row['password_hash']}".encode("utf-8")).hexdigest()
    return {"role": row["role"], "stamp": digest[:32]}


SIGN_IN_EVENTS = ("failed", "refused", "ok", "expired", "ended")
_NAME_SHOWN = 100  # characters of a tried name kept in the audit log (a guess may be any length)


def record_sign_in(db: Database, event: str, name: str, address: str, **details: Any) -> None:
    """Audit a sign-in event: ``signin.failed`` (wrong password or unknown name), ``signin.refused`` (throttled,
    the password not checked), ``signin.ok``, or ``session.expired`` / ``session.ended`` (idle, or the account changed).

    Before a sign-in succeeds nobody is known, so failures and refusals are logged under the actor ``anonymous``
    with the name tried and the client address in ``after``; the entity is the account when the name exists.
    """
    if event not in SIGN_IN_EVENTS:
        raise ValueError(f"unknown sign-in event {event!r}")
    tried = (name or "").strip()[:_NAME_SHOWN]
    person = find_annotator(db, tried) if tried else None
    action = f"session.{event}" if event in ("expired", "ended") else f"signin.{event}"
    actor = tried if event in ("ok", "expired", "ended") and tried else "anonymous"
    with db.atomic():
        record(db, actor=actor, action=action, entity="annotator", entity_id=person["id"] if person else None,
               after={"name": tried, "address": address, **details})


def remove(db: Database, name: str, *, actor: str = "system") -> dict:
    """Take `name` off the team: no sign-in, not offered in pickers; their ratings and decisions stay."""
    before = account(db, name)
    with db.atomic():
        db.execute("UPDATE annotators SET password_hash = NULL, "
                   "removed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [before["id"]])
        db.execute("DELETE FROM assignments WHERE annotator_id = ?", [before["id"]])
        record(db, actor=actor, action="account.remove", entity="annotator", entity_id=before["id"],
               before={"name": before["name"], "role": before["role"]})
    return account(db, name)


def list_accounts(db: Database) -> list[dict]:
    """Everyone on the team (removed people last) with their role, whether they can sign in, and rating counts."""
    rows = list(db.query(
        """SELECT a.id, a.name, a.role, a.password_hash IS NOT NULL AS can_sign_in, a.removed_at,
                  (SELECT count(*) FROM ratings r WHERE r.annotator_id = a.id) AS ratings
           FROM annotators a ORDER BY a.removed_at IS NOT NULL, a.name"""))
    for row in rows:
        row["can_sign_in"] = bool(row["can_sign_in"])
    return rows
