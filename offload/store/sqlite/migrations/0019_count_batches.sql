-- Cheaper counting (0015_counts.sql, 0016_ended.sql) on the hot paths:
-- - A batch of jobs inserted by one executemany counts itself in one statement afterwards
--   (offload/store/sqlite/_jobs.py, `insert_rows`) instead of one upsert per row, which took
--   about a fifth of a bulk enqueue. The inserting transaction holds the write lock and puts a
--   row in `offload_count_batch` for the length of its executemany; the insert trigger skips
--   rows inserted meanwhile, and the batch is counted from its id range.
-- - One trigger keeps both the counts and the ended spans when a job changes: each trigger
--   costs every updated row a call, whatever its WHEN says.
CREATE TABLE offload_count_batch (
    id INTEGER PRIMARY KEY
);

DROP TRIGGER IF EXISTS offload_jobs_count_insert;
DROP TRIGGER IF EXISTS offload_jobs_count_update;
DROP TRIGGER IF EXISTS offload_jobs_ended;

CREATE TRIGGER offload_jobs_count_insert AFTER INSERT ON offload_jobs
WHEN NOT EXISTS (SELECT 1 FROM offload_count_batch)
BEGIN
    INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
    VALUES (new.queue, new.kind, new.state, 1, new.attempt)
    ON CONFLICT (queue, kind, state)
    DO UPDATE SET jobs = jobs + 1, attempts = attempts + excluded.attempts;
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
    INSERT INTO offload_ended (bucket, state, jobs)
    SELECT CAST(coalesce(CASE WHEN new.state <> 'retryable' THEN new.finished_at END,
                         (julianday('now') - 2440587.5) * 86400.0) / 10 AS INTEGER) * 10,
           new.state, 1
    WHERE new.state IN ('completed', 'dead', 'retryable') AND old.state IS NOT new.state
    ON CONFLICT (bucket, state) DO UPDATE SET jobs = jobs + 1;
END;
