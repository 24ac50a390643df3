-- The job table, its indexes, the small tables for leadership, workers, cron and counters, and
-- the store's clock. Migrations run with the store's schema alone on the search_path. Times are
-- float seconds since the epoch (double precision), as the store contract speaks them; JSON is
-- jsonb.

-- The one clock of the store: the time the current statement started, in epoch seconds. Every
-- time the engine stamps comes from here, so that workers on many machines agree.
CREATE FUNCTION offload_now() RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT extract(epoch FROM statement_timestamp())::double precision $$;

CREATE TABLE offload_jobs (
    id               bigserial        PRIMARY KEY,
    kind             text             NOT NULL,
    queue            text             NOT NULL,
    args             jsonb            NOT NULL,
    meta             jsonb            NOT NULL DEFAULT '{}',
    tenant           text,
    state            text             NOT NULL,
    priority         integer          NOT NULL DEFAULT 0,
    attempt          integer          NOT NULL DEFAULT 0,
    max_attempts     integer          NOT NULL,
    crashes          integer          NOT NULL DEFAULT 0,
    delivery         text             NOT NULL DEFAULT 'at_least_once',
    timeout          double precision,
    errors           jsonb            NOT NULL DEFAULT '[]',
    scheduled_at     double precision NOT NULL,
    unique_key       text,
    lease_owner      text,
    lease_token      bigint,
    lease_expires_at double precision,
    result           jsonb,
    result_ttl       double precision NOT NULL DEFAULT 86400,
    inserted_at      double precision NOT NULL,
    attempted_at     double precision,
    finished_at      double precision
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
    name       text             PRIMARY KEY,
    owner      text             NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE offload_workers (
    id         text             PRIMARY KEY,
    host       text             NOT NULL,
    pid        integer          NOT NULL,
    queues     jsonb            NOT NULL,
    started_at double precision NOT NULL,
    seen_at    double precision NOT NULL,
    running    integer          NOT NULL DEFAULT 0
);

CREATE TABLE offload_cron (
    name      text             PRIMARY KEY,
    last_tick double precision NOT NULL
);

CREATE TABLE offload_counters (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);
