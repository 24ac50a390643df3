-- Run-time reports by job type: kinds whose runs could not stop early and ran longer than their
-- max_run_time, or whose async code blocked a worker's event loop. Workers add what they saw
-- with their heartbeat (offload/store/_runtime.py).
CREATE TABLE offload_run_time (
    kind            text             PRIMARY KEY,
    queue           text             NOT NULL,
    owner           text,
    max_run_time    double precision,
    overruns        bigint           NOT NULL DEFAULT 0,
    overrun_seconds double precision NOT NULL DEFAULT 0,
    worst_seconds   double precision NOT NULL DEFAULT 0,
    last_overrun_at double precision,
    blocks          bigint           NOT NULL DEFAULT 0,
    blocked_seconds double precision NOT NULL DEFAULT 0,
    worst_block     double precision NOT NULL DEFAULT 0,
    last_block_at   double precision
);
