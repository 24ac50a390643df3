-- Load shedding, blackhole rules and unique jobs: a job's expiry and uniqueness key (not a
-- unique index: a duplicate is decided by period and states at insert), the rules table, and
-- the approximate backlog of bounded queues and job types.
ALTER TABLE offload_jobs ADD COLUMN expires_at REAL;
ALTER TABLE offload_jobs ADD COLUMN dedup_key TEXT;

CREATE INDEX offload_jobs_expires ON offload_jobs (expires_at)
    WHERE expires_at IS NOT NULL AND state IN ('scheduled', 'available', 'retryable');
CREATE INDEX offload_jobs_dedup ON offload_jobs (dedup_key, id)
    WHERE dedup_key IS NOT NULL;

CREATE TABLE offload_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT,
    condition  TEXT    NOT NULL DEFAULT '',
    reason     TEXT    NOT NULL DEFAULT '',
    created_at REAL    NOT NULL,
    expires_at REAL
);

CREATE TABLE offload_backlog (
    scope      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    bound      INTEGER NOT NULL,
    depth      INTEGER NOT NULL DEFAULT 0,
    counted_at REAL    NOT NULL,
    PRIMARY KEY (scope, name)
);
