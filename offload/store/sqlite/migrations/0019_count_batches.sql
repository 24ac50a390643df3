-- A batch of jobs inserted by one executemany counts itself in one statement afterwards
-- (offload/store/sqlite/_jobs.py, `insert_rows`) instead of one upsert per row in the trigger
-- of 0015_counts.sql, which took a fifth of a bulk enqueue. The inserting transaction holds the
-- write lock and puts a row in `offload_count_batch` for the length of its executemany; the
-- trigger skips rows inserted meanwhile, and the batch is counted from its id range.
CREATE TABLE offload_count_batch (
    id INTEGER PRIMARY KEY
);

DROP TRIGGER offload_jobs_count_insert;

CREATE TRIGGER offload_jobs_count_insert AFTER INSERT ON offload_jobs
WHEN NOT EXISTS (SELECT 1 FROM offload_count_batch)
BEGIN
    INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
    VALUES (new.queue, new.kind, new.state, 1, new.attempt)
    ON CONFLICT (queue, kind, state)
    DO UPDATE SET jobs = jobs + 1, attempts = attempts + excluded.attempts;
END;
