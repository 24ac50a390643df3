-- Kept counts of the job rows by queue, kind and state (jobs, and their attempts added up), so
-- that the overview, `/metrics`, `offload stats` and the lag signals read a few rows instead of
-- counting every job (offload/store/_totals.py). One writer at a time: the triggers update the
-- counts in place, in the statement that changes a job. Rows that reach zero stay (readers
-- leave them out); a heartbeat or a checkpoint changes none of the columns counted.
CREATE TABLE offload_counts (
    queue    TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    jobs     INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (queue, kind, state)
) WITHOUT ROWID;

INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
SELECT queue, kind, state, count(*), coalesce(sum(attempt), 0)
FROM offload_jobs GROUP BY queue, kind, state;

CREATE TRIGGER offload_jobs_count_insert AFTER INSERT ON offload_jobs
BEGIN
    INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
    VALUES (new.queue, new.kind, new.state, 1, new.attempt)
    ON CONFLICT (queue, kind, state)
    DO UPDATE SET jobs = jobs + 1, attempts = attempts + excluded.attempts;
END;

CREATE TRIGGER offload_jobs_count_delete AFTER DELETE ON offload_jobs
BEGIN
    UPDATE offload_counts SET jobs = jobs - 1, attempts = attempts - old.attempt
    WHERE queue = old.queue AND kind = old.kind AND state = old.state;
END;

CREATE TRIGGER offload_jobs_count_update AFTER UPDATE OF queue, kind, state, attempt
ON offload_jobs
WHEN old.state IS NOT new.state OR old.attempt IS NOT new.attempt
     OR old.queue IS NOT new.queue OR old.kind IS NOT new.kind
BEGIN
    UPDATE offload_counts SET jobs = jobs - 1, attempts = attempts - old.attempt
    WHERE queue = old.queue AND kind = old.kind AND state = old.state;
    INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
    VALUES (new.queue, new.kind, new.state, 1, new.attempt)
    ON CONFLICT (queue, kind, state)
    DO UPDATE SET jobs = jobs + 1, attempts = attempts + excluded.attempts;
END;
