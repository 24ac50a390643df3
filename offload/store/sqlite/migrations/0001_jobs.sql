-- The job table, its indexes, and the small tables for leadership, workers, cron and counters.
CREATE TABLE offload_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    meta             TEXT    NOT NULL DEFAULT '{}',
    tenant           TEXT,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    crashes          INTEGER NOT NULL DEFAULT 0,
    delivery         TEXT    NOT NULL DEFAULT 'at_least_once',
    timeout          REAL,
    errors           TEXT    NOT NULL DEFAULT '[]',
    scheduled_at     REAL    NOT NULL,
    unique_key       TEXT,
    lease_owner      TEXT,
    lease_token      INTEGER,
    lease_expires_at REAL,
    result           TEXT,
    result_ttl       REAL    NOT NULL DEFAULT 86400,
    inserted_at      REAL    NOT NULL,
    attempted_at     REAL,
    finished_at      REAL
);

CREATE INDEX offload_jobs_claim ON offload_jobs (queue, priority DESC, scheduled_at, id)
    WHERE state = 'available';
CREATE INDEX offload_jobs_due ON offload_jobs (scheduled_at)
    WHERE state IN ('scheduled', 'retryable');
CREATE INDEX offload_jobs_lease ON offload_jobs (lease_expires_at)
    WHERE state = 'running';
CREATE INDEX offload_jobs_finished ON offload_jobs (state, finished_at)
    WHERE state IN ('completed', 'dead', 'cancelled', 'shed');
CREATE INDEX offload_jobs_state_kind ON offload_jobs (state, kind, id);
CREATE INDEX offload_jobs_queue_state ON offload_jobs (queue, state);
CREATE UNIQUE INDEX offload_jobs_unique ON offload_jobs (unique_key)
    WHERE unique_key IS NOT NULL;

CREATE TABLE offload_leaders (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);

CREATE TABLE offload_workers (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    queues     TEXT NOT NULL,
    started_at REAL NOT NULL,
    seen_at    REAL NOT NULL,
    running    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE offload_cron (
    name      TEXT PRIMARY KEY,
    last_tick REAL NOT NULL
);

CREATE TABLE offload_counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
