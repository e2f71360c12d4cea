"""Tables, indexes and migrations. The rules that matter are in the schema, not only in code."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("studio")


@migrations()
def m001_annotation_core(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,            -- external id (doc_id / BEIR _id), or 'h:<sha1>' of the text
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL CHECK (length(trim(text)) > 0),
            text_hash TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        CREATE INDEX documents_text_hash ON documents(text_hash);

        CREATE TABLE queries (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL CHECK (length(trim(text)) > 0),
            text_hash TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        CREATE INDEX queries_text_hash ON queries(text_hash);

        CREATE TABLE pairs (
            id INTEGER PRIMARY KEY,
            query_id INTEGER NOT NULL REFERENCES queries(id),
            document_id INTEGER NOT NULL REFERENCES documents(id),
            source TEXT NOT NULL,                -- import | ratings | beir | logs | pool:bm25 | pool:dense ...
            in_queue INTEGER NOT NULL DEFAULT 1 CHECK (in_queue IN (0, 1)),
            reference_label INTEGER CHECK (reference_label IN (0, 1, 2)),  -- gold that came with the data
            hint INTEGER CHECK (hint IN (0, 1, 2)),                        -- weak prior from logs, never shown
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            UNIQUE (query_id, document_id)
        );
        CREATE INDEX pairs_document ON pairs(document_id);

        CREATE TABLE annotators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
            role TEXT NOT NULL DEFAULT 'annotator' CHECK (role IN ('annotator', 'expert', 'admin')),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );

        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY,
            pair_id INTEGER NOT NULL REFERENCES pairs(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            rating INTEGER NOT NULL CHECK (rating IN (0, 1, 2)),
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at TEXT,
            UNIQUE (pair_id, annotator_id)
        );
        CREATE INDEX ratings_annotator ON ratings(annotator_id, created_at);

        -- A third rating on a pair is refused by the database itself, whatever the code does.
        CREATE TRIGGER ratings_at_most_two BEFORE INSERT ON ratings
        WHEN (SELECT count(*) FROM ratings WHERE pair_id = NEW.pair_id) >= 2
        BEGIN
            SELECT RAISE(ABORT, 'pair already has two ratings');
        END;

        -- Which annotator is looking at which pair right now; reserves the slot so two tabs never over-assign.
        CREATE TABLE assignments (
            pair_id INTEGER NOT NULL REFERENCES pairs(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            assigned_at REAL NOT NULL,
            PRIMARY KEY (pair_id, annotator_id)
        );
        CREATE INDEX assignments_annotator ON assignments(annotator_id);

        CREATE TABLE skips (
            pair_id INTEGER NOT NULL REFERENCES pairs(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            PRIMARY KEY (pair_id, annotator_id)
        );

        CREATE TABLE adjudications (
            pair_id INTEGER PRIMARY KEY REFERENCES pairs(id),
            label INTEGER NOT NULL CHECK (label IN (0, 1, 2)),
            expert_id INTEGER NOT NULL REFERENCES annotators(id),
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            entity TEXT NOT NULL,
            entity_id INTEGER,
            before TEXT,                          -- JSON
            after TEXT                            -- JSON
        );
        CREATE INDEX audit_entity ON audit_log(entity, entity_id);

        -- Gold label: the expert's decision, else the two raters' agreed label, else the label the data came with.
        CREATE VIEW pair_ratings AS
            SELECT pair_id, count(*) AS n, min(rating) AS lo, max(rating) AS hi
            FROM ratings GROUP BY pair_id;
        CREATE VIEW gold AS
            SELECT p.id AS pair_id, p.query_id, p.document_id,
                   CASE
                       WHEN a.label IS NOT NULL THEN a.label
                       WHEN r.n = 2 AND r.lo = r.hi THEN r.lo
                       WHEN coalesce(r.n, 0) = 0 THEN p.reference_label
                   END AS label,
                   CASE
                       WHEN a.label IS NOT NULL THEN 'adjudicated'
                       WHEN r.n = 2 AND r.lo = r.hi THEN 'agreed'
                       WHEN coalesce(r.n, 0) = 0 AND p.reference_label IS NOT NULL THEN 'reference'
                   END AS origin
            FROM pairs p
            LEFT JOIN pair_ratings r ON r.pair_id = p.id
            LEFT JOIN adjudications a ON a.pair_id = p.id;
        """
    )


@migrations()
def m002_jobs(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,                 -- the output model's folder name under models/
            task TEXT NOT NULL CHECK (task IN ('embedder', 'reranker')),
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            job_dir TEXT NOT NULL,
            output_dir TEXT NOT NULL,
            pid INTEGER,
            exit_code INTEGER,
            error TEXT,
            created_by TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            started_at TEXT,
            ended_at TEXT
        );
        CREATE INDEX jobs_status ON jobs(status);
        """
    )


@migrations()
def m003_accounts(db: Database) -> None:
    # Sign-in: a salted scrypt hash per person (NULL: cannot sign in); removed people keep their ratings.
    db.executescript(
        """
        ALTER TABLE annotators ADD COLUMN password_hash TEXT;
        ALTER TABLE annotators ADD COLUMN removed_at TEXT;
        """
    )


def migrate(db: Database) -> None:
    """Apply pending migrations; safe to call on every start."""
    migrations.apply(db)
