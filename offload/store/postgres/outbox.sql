-- The outbox: jobs staged in the application's own PostgreSQL database, inside its
-- transactions, and moved to the job store by `offload relay`. Several relays may run at once:
-- each takes its rows with SKIP LOCKED.

-- name: create
CREATE TABLE IF NOT EXISTS offload_outbox (
    id         bigserial PRIMARY KEY,
    key        text NOT NULL UNIQUE,
    kind       text NOT NULL,
    job        jsonb NOT NULL,
    created_at double precision NOT NULL,
    relayed_at double precision,
    job_id     bigint
)

-- name: create_index
CREATE INDEX IF NOT EXISTS offload_outbox_pending ON offload_outbox (id) WHERE relayed_at IS NULL

-- name: stage
INSERT INTO offload_outbox (key, kind, job, created_at) VALUES (%s, %s, %s, %s) RETURNING id

-- name: pending
SELECT id, key, job::text FROM offload_outbox WHERE relayed_at IS NULL ORDER BY id LIMIT %s
FOR UPDATE SKIP LOCKED

-- name: mark
UPDATE offload_outbox SET relayed_at = %s, job_id = %s WHERE id = %s AND relayed_at IS NULL

-- name: prune
DELETE FROM offload_outbox WHERE relayed_at IS NOT NULL AND relayed_at < %s

-- name: pending_count
SELECT count(*) FROM offload_outbox WHERE relayed_at IS NULL
