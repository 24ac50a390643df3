-- Run-time reports by job type: kinds whose runs could not stop early and ran longer than their
-- max_run_time, or whose async code blocked a worker's event loop. Workers add what they saw
-- with their heartbeat (offload/store/_runtime.py).
CREATE TABLE offload_run_time (
    kind            TEXT    PRIMARY KEY,
    queue           TEXT    NOT NULL,
    owner           TEXT,
    max_run_time    REAL,
    overruns        INTEGER NOT NULL DEFAULT 0,
    overrun_seconds REAL    NOT NULL DEFAULT 0,
    worst_seconds   REAL    NOT NULL DEFAULT 0,
    last_overrun_at REAL,
    blocks          INTEGER NOT NULL DEFAULT 0,
    blocked_seconds REAL    NOT NULL DEFAULT 0,
    worst_block     REAL    NOT NULL DEFAULT 0,
    last_block_at   REAL
);
