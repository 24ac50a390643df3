-- Jobs that ended (completed, dead) and attempts that failed to be retried (retryable), kept by
-- 10-second span, so that the overview's chart, its rate and `/metrics`' recent windows read a
-- few rows per span instead of every job that finished (offload/store/_contract.py,
-- `job_finished_since`). Kept by the trigger below in the statement that ends the job; spans
-- older than eight days go with the pruner. The rows already there are counted: ended jobs at
-- their end, retryable ones at their last error.
CREATE TABLE offload_ended (
    bucket INTEGER NOT NULL,  -- the span's start, epoch seconds, a multiple of 10
    state  TEXT    NOT NULL,
    jobs   INTEGER NOT NULL,
    PRIMARY KEY (bucket, state)
) WITHOUT ROWID;

INSERT INTO offload_ended (bucket, state, jobs)
SELECT CAST(finished_at / 10 AS INTEGER) * 10, state, count(*) FROM offload_jobs
WHERE state IN ('completed', 'dead') AND finished_at IS NOT NULL
GROUP BY 1, 2;

INSERT INTO offload_ended (bucket, state, jobs)
SELECT CAST(json_extract(errors, '$[#-1].at') / 10 AS INTEGER) * 10, 'retryable', count(*)
FROM offload_jobs
WHERE state = 'retryable' AND json_valid(errors)
  AND json_type(errors, '$[#-1].at') IN ('integer', 'real')
GROUP BY 1;

CREATE TRIGGER offload_jobs_ended AFTER UPDATE OF state ON offload_jobs
WHEN new.state IN ('completed', 'dead', 'retryable') AND old.state IS NOT new.state
BEGIN
    INSERT INTO offload_ended (bucket, state, jobs)
    VALUES (CAST(coalesce(CASE WHEN new.state <> 'retryable' THEN new.finished_at END,
                          (julianday('now') - 2440587.5) * 86400.0) / 10 AS INTEGER) * 10,
            new.state, 1)
    ON CONFLICT (bucket, state) DO UPDATE SET jobs = jobs + 1;
END;
