-- Load shedding, blackhole rules and unique jobs: a job's expiry and uniqueness key (not a
-- unique index: a duplicate is decided by period and states at insert), the rules table, and
-- the approximate backlog of bounded queues and job types.
ALTER TABLE offload_jobs ADD COLUMN expires_at double precision;
ALTER TABLE offload_jobs ADD COLUMN dedup_key text;

CREATE INDEX offload_jobs_expires ON offload_jobs (expires_at)
    WHERE expires_at IS NOT NULL AND state IN ('scheduled', 'available', 'retryable');
CREATE INDEX offload_jobs_dedup ON offload_jobs (dedup_key, id)
    WHERE dedup_key IS NOT NULL;

CREATE TABLE offload_rules (
    id         bigserial        PRIMARY KEY,
    kind       text,
    condition  text             NOT NULL DEFAULT '',
    reason     text             NOT NULL DEFAULT '',
    created_at double precision NOT NULL,
    expires_at double precision
);

CREATE TABLE offload_backlog (
    scope      text             NOT NULL,
    name       text             NOT NULL,
    bound      bigint           NOT NULL,
    depth      bigint           NOT NULL DEFAULT 0,
    counted_at double precision NOT NULL,
    PRIMARY KEY (scope, name)
);
