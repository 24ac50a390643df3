-- The outbox: jobs staged in the application's own SQLite database, inside its transactions,
-- and moved to the job store by `offload relay`.

-- name: create
CREATE TABLE IF NOT EXISTS offload_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    job        TEXT NOT NULL,
    created_at REAL NOT NULL,
    relayed_at REAL,
    job_id     INTEGER
)

-- name: create_index
CREATE INDEX IF NOT EXISTS offload_outbox_pending ON offload_outbox (id) WHERE relayed_at IS NULL

-- name: stage
INSERT INTO offload_outbox (key, kind, job, created_at) VALUES (?, ?, ?, ?) RETURNING id

-- name: pending
SELECT id, key, job FROM offload_outbox WHERE relayed_at IS NULL ORDER BY id LIMIT ?

-- name: mark
UPDATE offload_outbox SET relayed_at = ?, job_id = ? WHERE id = ? AND relayed_at IS NULL

-- name: prune
DELETE FROM offload_outbox WHERE relayed_at IS NOT NULL AND relayed_at < ?

-- name: pending_count
SELECT count(*) FROM offload_outbox WHERE relayed_at IS NULL
