-- Dispatch policy: deadlines and fair queuing (each job's place in its queue is computed at
-- enqueue, so that a claim stays an index range scan), and limits per key.
--
-- slo        seconds the job type may wait (NULL: none declared, ordered as 0)
-- stride     the virtual time one job of its flow takes: cost / (type weight * tenant weight),
--            NULL for 1
-- order_key  start tag + slo, where the start tag is the job's start in its lane's virtual
--            time (start-time fair queuing): what a claim orders by after priority. The start
--            tag is order_key - slo; it is not stored (a claim rewrites the whole row, so every
--            column costs every claim)
-- deadline   scheduled_at + slo in real time, for SLO attainment (NULL without an slo)
-- limit_key  the concurrency/rate limit key the job counts against (offload_limits)
ALTER TABLE offload_jobs ADD COLUMN slo REAL;
ALTER TABLE offload_jobs ADD COLUMN stride REAL;
ALTER TABLE offload_jobs ADD COLUMN order_key REAL NOT NULL DEFAULT 0;
ALTER TABLE offload_jobs ADD COLUMN deadline REAL;
ALTER TABLE offload_jobs ADD COLUMN limit_key TEXT;

-- The claim orders available jobs of a queue by priority, then order key; limit_key rides in
-- the index so that the candidates of a claim are read from the index alone.
DROP INDEX offload_jobs_claim;
CREATE INDEX offload_jobs_claim ON offload_jobs (queue, priority DESC, order_key, id, limit_key)
    WHERE state = 'available';
-- Running jobs of a key (its concurrency) and the head of a FIFO key, by range scans.
CREATE INDEX offload_jobs_limit ON offload_jobs (limit_key, state, id)
    WHERE limit_key IS NOT NULL AND state IN ('available', 'running', 'retryable');
-- Recently started jobs with a deadline, for SLO attainment.
CREATE INDEX offload_jobs_slo ON offload_jobs (attempted_at) WHERE deadline IS NOT NULL;

-- The stored virtual clock of each lane (a queue at one priority): the largest start tag
-- claimed, as of the last claim that wrote it (offload/dispatch/_ordering.py).
CREATE TABLE offload_lanes (
    queue    TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    clock    REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, priority)
);

-- The finish tag of each flow (a job type and tenant in a lane); tenant '' when none. `clock`
-- and `added` are those of the last reservation (finish = max(finish, clock) + added).
CREATE TABLE offload_flows (
    queue    TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    tenant   TEXT    NOT NULL,
    clock    REAL    NOT NULL,
    added    REAL    NOT NULL,
    finish   REAL    NOT NULL,
    PRIMARY KEY (queue, priority, kind, tenant)
);

-- One row per limit key: its declaration (rewritten by an enqueue that declares it otherwise),
-- its token bucket and its adaptive value. Running counts are not kept here: a claim counts
-- the key's running jobs through offload_jobs_limit, so every way out of `running` frees it.
CREATE TABLE offload_limits (
    key            TEXT    PRIMARY KEY,
    concurrency    INTEGER,
    rate           REAL,
    period         REAL,
    burst          REAL,
    fifo           INTEGER NOT NULL DEFAULT 0,
    adapt_target   TEXT,
    adapt_min      REAL,
    adapt_max      REAL,
    adapt_step     REAL,
    adapt_factor   REAL,
    adapt_cooldown REAL,
    adapt_value    REAL,
    adapted_at     REAL,
    tokens         REAL,
    refilled_at    REAL,
    throttles      INTEGER NOT NULL DEFAULT 0,
    updated_at     REAL    NOT NULL
);
