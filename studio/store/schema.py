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


_OCCUPANT = """(SELECT annotator_id FROM ratings WHERE pair_id = {p}
                 UNION ALL SELECT annotator_id FROM assignments WHERE pair_id = {p} LIMIT 1)"""


@migrations()
def m004_queue_counters(db: Database) -> None:
    """The annotation queue is kept, not recomputed: per-pair counters (ratings, live reservations, the one person
    in a half-taken pair) and project/person totals, maintained by triggers in the transactions that change them,
    with partial indexes in serving order. Choosing the next pair then reads a handful of index entries, however
    many pairs the project has (bench/annotate_store.py)."""
    occupant = _OCCUPANT.format(p="pairs.id")
    db.executescript(
        f"""
        ALTER TABLE pairs ADD COLUMN ratings_n INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE pairs ADD COLUMN holds_n INTEGER NOT NULL DEFAULT 0;   -- live reservations (assignments)
        ALTER TABLE pairs ADD COLUMN occupant_id INTEGER;                 -- who took the slot when one is taken
        ALTER TABLE pairs ADD COLUMN priority REAL;                       -- serving order; NULL: imported order
        ALTER TABLE annotators ADD COLUMN ratings_n INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE annotators ADD COLUMN waiting_n INTEGER NOT NULL DEFAULT 0;  -- own ratings on queued pairs
                                                                                 -- still waiting for a 2nd rater
        ALTER TABLE assignments ADD COLUMN session TEXT;                  -- the browser session holding it

        UPDATE pairs SET ratings_n = (SELECT count(*) FROM ratings r WHERE r.pair_id = pairs.id),
                         holds_n = (SELECT count(*) FROM assignments a WHERE a.pair_id = pairs.id);
        UPDATE pairs SET occupant_id = {occupant} WHERE ratings_n + holds_n = 1;
        UPDATE annotators SET
            ratings_n = (SELECT count(*) FROM ratings r WHERE r.annotator_id = annotators.id),
            waiting_n = (SELECT count(*) FROM ratings r JOIN pairs p ON p.id = r.pair_id
                         WHERE r.annotator_id = annotators.id AND p.ratings_n = 1 AND p.in_queue = 1);

        CREATE TABLE queue_counts (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            queued INTEGER NOT NULL,        -- pairs in the annotation queue
            double_rated INTEGER NOT NULL   -- of those, pairs with two ratings
        );
        INSERT INTO queue_counts (id, queued, double_rated)
            SELECT 1, count(*), coalesce(sum(ratings_n >= 2), 0) FROM pairs WHERE in_queue = 1;

        CREATE INDEX pairs_lane0 ON pairs (coalesce(priority, query_id), id)
            WHERE in_queue = 1 AND ratings_n + holds_n = 0;
        CREATE INDEX pairs_lane1 ON pairs (occupant_id, coalesce(priority, query_id), id)
            WHERE in_queue = 1 AND ratings_n + holds_n = 1;
        CREATE INDEX assignments_time ON assignments (assigned_at);
        CREATE INDEX assignments_session ON assignments (session) WHERE session IS NOT NULL;

        CREATE TRIGGER pairs_queued AFTER INSERT ON pairs WHEN NEW.in_queue = 1
        BEGIN
            UPDATE queue_counts SET queued = queued + 1 WHERE id = 1;
        END;

        CREATE TRIGGER ratings_counted AFTER INSERT ON ratings
        BEGIN
            UPDATE pairs SET ratings_n = ratings_n + 1 WHERE id = NEW.pair_id;
            UPDATE pairs SET occupant_id = {_OCCUPANT.format(p="NEW.pair_id")} WHERE id = NEW.pair_id;
            UPDATE annotators SET ratings_n = ratings_n + 1,
                   waiting_n = waiting_n + (SELECT ratings_n = 1 AND in_queue = 1 FROM pairs WHERE id = NEW.pair_id)
             WHERE id = NEW.annotator_id;
            -- a second rating: the first rater stops waiting, and the pair is double-rated
            UPDATE annotators SET waiting_n = waiting_n - 1
             WHERE (SELECT ratings_n = 2 AND in_queue = 1 FROM pairs WHERE id = NEW.pair_id)
               AND id = (SELECT annotator_id FROM ratings WHERE pair_id = NEW.pair_id AND annotator_id != NEW.annotator_id);
            UPDATE queue_counts SET double_rated = double_rated + 1
             WHERE id = 1 AND (SELECT ratings_n = 2 AND in_queue = 1 FROM pairs WHERE id = NEW.pair_id);
        END;

        CREATE TRIGGER ratings_uncounted AFTER DELETE ON ratings
        BEGIN
            UPDATE pairs SET ratings_n = ratings_n - 1 WHERE id = OLD.pair_id;
            UPDATE pairs SET occupant_id = {_OCCUPANT.format(p="OLD.pair_id")} WHERE id = OLD.pair_id;
            UPDATE annotators SET ratings_n = ratings_n - 1,
                   waiting_n = waiting_n - (SELECT ratings_n = 0 AND in_queue = 1 FROM pairs WHERE id = OLD.pair_id)
             WHERE id = OLD.annotator_id;
            -- back to one rating: its rater waits again, and the pair is no longer double-rated
            UPDATE annotators SET waiting_n = waiting_n + 1
             WHERE (SELECT ratings_n = 1 AND in_queue = 1 FROM pairs WHERE id = OLD.pair_id)
               AND id = (SELECT annotator_id FROM ratings WHERE pair_id = OLD.pair_id);
            UPDATE queue_counts SET double_rated = double_rated - 1
             WHERE id = 1 AND (SELECT ratings_n = 1 AND in_queue = 1 FROM pairs WHERE id = OLD.pair_id);
        END;

        CREATE TRIGGER assignments_counted AFTER INSERT ON assignments
        BEGIN
            UPDATE pairs SET holds_n = holds_n + 1 WHERE id = NEW.pair_id;
            UPDATE pairs SET occupant_id = {_OCCUPANT.format(p="NEW.pair_id")} WHERE id = NEW.pair_id;
        END;

        CREATE TRIGGER assignments_uncounted AFTER DELETE ON assignments
        BEGIN
            UPDATE pairs SET holds_n = holds_n - 1 WHERE id = OLD.pair_id;
            UPDATE pairs SET occupant_id = {_OCCUPANT.format(p="OLD.pair_id")} WHERE id = OLD.pair_id;
        END;
        """
    )


@migrations()
def m005_settings(db: Database) -> None:
    db.executescript(
        """
        -- Project settings an admin chooses (the annotation queue's strategy, …); every change is audited.
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
    )


@migrations()
def m006_action_order(db: Database) -> None:
    """The order of a person's ratings and skips, for undo: one sequence over both tables (timestamps have
    millisecond resolution, and a skip right after a rating can share one)."""
    db.executescript(
        """
        CREATE TABLE action_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
        INSERT INTO action_sequence (id, last) VALUES (1, 0);
        ALTER TABLE ratings ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE skips ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        -- existing rows: in their time order, ratings before skips of the same instant
        UPDATE ratings SET seq = (SELECT count(*) FROM ratings r2 WHERE
            coalesce(r2.updated_at, r2.created_at) < coalesce(ratings.updated_at, ratings.created_at)
            OR (coalesce(r2.updated_at, r2.created_at) = coalesce(ratings.updated_at, ratings.created_at)
                AND r2.id <= ratings.id));
        UPDATE skips SET seq = (SELECT count(*) FROM ratings) + (SELECT count(*) FROM skips s2 WHERE
            s2.created_at < skips.created_at OR (s2.created_at = skips.created_at AND s2.rowid <= skips.rowid));
        UPDATE action_sequence SET last = (SELECT count(*) FROM ratings) + (SELECT count(*) FROM skips);
        CREATE INDEX ratings_seq ON ratings (annotator_id, seq);
        CREATE INDEX skips_seq ON skips (annotator_id, seq);

        CREATE TRIGGER ratings_sequenced AFTER INSERT ON ratings
        BEGIN
            UPDATE action_sequence SET last = last + 1 WHERE id = 1;
            UPDATE ratings SET seq = (SELECT last FROM action_sequence WHERE id = 1) WHERE id = NEW.id;
        END;
        CREATE TRIGGER ratings_resequenced AFTER UPDATE OF rating, note ON ratings
        BEGIN
            UPDATE action_sequence SET last = last + 1 WHERE id = 1;
            UPDATE ratings SET seq = (SELECT last FROM action_sequence WHERE id = 1) WHERE id = NEW.id;
        END;
        CREATE TRIGGER skips_sequenced AFTER INSERT ON skips
        BEGIN
            UPDATE action_sequence SET last = last + 1 WHERE id = 1;
            UPDATE skips SET seq = (SELECT last FROM action_sequence WHERE id = 1)
             WHERE pair_id = NEW.pair_id AND annotator_id = NEW.annotator_id;
        END;
        """
    )


@migrations()
def m007_label_quality(db: Database) -> None:
    """What measures the raters: time per pair, control pairs, model raters and what their judgments feed.

    Times are the server's own (``assignments.shown_at`` is set when a hold is created, never by a reload); control
    answers, model judgments, second looks and triage live in tables of their own, so none of them is ever one of a
    pair's two ratings, or enters agreement, gold or training data."""
    db.executescript(
        """
        ALTER TABLE assignments ADD COLUMN shown_at REAL;      -- when this hold first showed the pair (not reloads)
        ALTER TABLE ratings ADD COLUMN seconds REAL;           -- shown -> rated, capped (config.RATING_SECONDS_CAP)

        -- Gold pairs an admin turned into controls, with the label expected at that time.
        CREATE TABLE controls (
            pair_id INTEGER PRIMARY KEY REFERENCES pairs(id),
            label INTEGER NOT NULL CHECK (label IN (0, 1, 2)),
            origin TEXT NOT NULL,                               -- the gold origin: adjudicated | agreed | reference
            added_by TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        -- The control a person is looking at now (at most one), served like any pair.
        CREATE TABLE control_holds (
            annotator_id INTEGER PRIMARY KEY REFERENCES annotators(id),
            pair_id INTEGER NOT NULL REFERENCES pairs(id),
            shown_at REAL NOT NULL,
            assigned_at REAL NOT NULL,
            session TEXT
        );
        CREATE INDEX control_holds_session ON control_holds (session) WHERE session IS NOT NULL;
        -- A person's answers to controls: never ratings.
        CREATE TABLE control_answers (
            id INTEGER PRIMARY KEY,
            pair_id INTEGER NOT NULL REFERENCES pairs(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            rating INTEGER NOT NULL CHECK (rating IN (0, 1, 2)),
            expected INTEGER NOT NULL CHECK (expected IN (0, 1, 2)),
            note TEXT NOT NULL DEFAULT '',
            seconds REAL,
            seq INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at TEXT,
            UNIQUE (pair_id, annotator_id)
        );
        CREATE INDEX control_answers_seq ON control_answers (annotator_id, seq);
        CREATE TRIGGER control_answers_sequenced AFTER INSERT ON control_answers
        BEGIN
            UPDATE action_sequence SET last = last + 1 WHERE id = 1;
            UPDATE control_answers SET seq = (SELECT last FROM action_sequence WHERE id = 1) WHERE id = NEW.id;
        END;
        CREATE TRIGGER control_answers_resequenced AFTER UPDATE OF rating, note ON control_answers
        BEGIN
            UPDATE action_sequence SET last = last + 1 WHERE id = 1;
            UPDATE control_answers SET seq = (SELECT last FROM action_sequence WHERE id = 1) WHERE id = NEW.id;
        END;

        -- Model raters (a dense model, a reranker, an LLM endpoint) and their blind judgments.
        CREATE TABLE model_raters (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,                          -- e.g. model:default, reranker:rr, llm:gemma@host
            kind TEXT NOT NULL,                                 -- a kind of studio.raters' registry
            spec TEXT NOT NULL,                                 -- model name / endpoint URL
            settings TEXT NOT NULL DEFAULT '{}',                -- JSON: thresholds, the prompt, the model id ...
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        CREATE TABLE judgments (
            rater_id INTEGER NOT NULL REFERENCES model_raters(id),
            pair_id INTEGER NOT NULL REFERENCES pairs(id),
            label INTEGER NOT NULL CHECK (label IN (0, 1, 2)),
            score REAL,
            answer TEXT,                                        -- an LLM's raw answer
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            PRIMARY KEY (rater_id, pair_id)
        );
        CREATE INDEX judgments_pair ON judgments (pair_id);
        -- Pairs both people agreed on that a model confidently disagrees with: an expert takes a second look in ④.
        CREATE TABLE second_looks (
            pair_id INTEGER PRIMARY KEY REFERENCES pairs(id),
            rater_id INTEGER NOT NULL REFERENCES model_raters(id),
            model_label INTEGER NOT NULL CHECK (model_label IN (0, 1, 2)),
            agreed_label INTEGER NOT NULL CHECK (agreed_label IN (0, 1, 2)),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        -- Pairs a model rates irrelevant with confidence wait at the back of the queue; `audit` ones are still served.
        CREATE TABLE triage (
            pair_id INTEGER PRIMARY KEY REFERENCES pairs(id),
            rater_id INTEGER NOT NULL REFERENCES model_raters(id),
            audit INTEGER NOT NULL DEFAULT 0 CHECK (audit IN (0, 1)),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        """
    )


@migrations()
def m008_corpus_version(db: Database) -> None:
    """A corpus version, bumped by triggers on every document insert, text/title update and delete: every in-memory
    or on-disk index of the corpus (BM25, dense vectors) is keyed by it, so nothing per query rereads or rehashes
    the corpus to learn whether it changed."""
    db.executescript(
        """
        CREATE TABLE corpus_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
        INSERT INTO corpus_version (id, version) VALUES (1, (SELECT count(*) FROM documents));
        CREATE TRIGGER documents_version_insert AFTER INSERT ON documents
        BEGIN
            UPDATE corpus_version SET version = version + 1 WHERE id = 1;
        END;
        CREATE TRIGGER documents_version_update AFTER UPDATE OF title, text ON documents
        BEGIN
            UPDATE corpus_version SET version = version + 1 WHERE id = 1;
        END;
        CREATE TRIGGER documents_version_delete AFTER DELETE ON documents
        BEGIN
            UPDATE corpus_version SET version = version + 1 WHERE id = 1;
        END;
        """
    )


@migrations()
def m009_document_revision(db: Database) -> None:
    """A per-document revision, bumped by a trigger on every title/text update: indexes key a document's entry by
    its content hash, which includes the revision, so an edit is seen even by a writer that left ``text_hash``
    as it was (a hand-run UPDATE). Adding the column costs nothing at a million rows (SQLite stores the default
    lazily)."""
    db.executescript(
        """
        ALTER TABLE documents ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        CREATE TRIGGER documents_revision AFTER UPDATE OF title, text ON documents
        BEGIN
            UPDATE documents SET revision = OLD.revision + 1 WHERE id = NEW.id;
        END;
        """
    )


def migrate(db: Database) -> None:
    """Apply pending migrations; safe to call on every start."""
    migrations.apply(db)
