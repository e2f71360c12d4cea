"""The audit log: who changed what, when, with the value before and after."""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database


def record(db: Database, *, actor: str, action: str, entity: str, entity_id: int | None,
           before: Any = None, after: Any = None) -> None:
    """Append one audit entry; call inside the transaction that makes the change."""
    db.execute(
        "INSERT INTO audit_log (actor, action, entity, entity_id, before, after) VALUES (?, ?, ?, ?, ?, ?)",
        [actor, action, entity, entity_id,
         None if before is None else json.dumps(before, ensure_ascii=False),
         None if after is None else json.dumps(after, ensure_ascii=False)],
    )


def history(db: Database, *, entity: str | None = None, entity_id: int | None = None,
            limit: int = 200) -> list[dict]:
    """Newest-first audit entries, optionally for one entity."""
    where, params = [], []
    if entity:
        where.append("entity = ?")
        params.append(entity)
    if entity_id is not None:
        where.append("entity_id = ?")
        params.append(entity_id)
    sql = "SELECT * FROM audit_log" + (f" WHERE {' AND '.join(where)}" if where else "")
    rows = list(db.query(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]))
    for row in rows:
        for col in ("before", "after"):
            row[col] = json.loads(row[col]) if row[col] else None
    return rows
