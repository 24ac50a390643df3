-- Jobs that ended (completed, dead) and attempts that failed to be retried (retryable), kept by
-- 10-second span, so that the overview's chart, its rate and `/metrics`' recent windows read a
-- few rows per span instead of every job that finished (offload/store/_contract.py,
-- `job_finished_since`). As for the counts (0016_counts.sql), a statement trigger appends what
-- each statement ended to `offload_ended_deltas` and folding moves it to `offload_ended`;
-- spans older than eight days go with the pruner. The rows already there are counted: ended
-- jobs at their end, retryable ones at their last error.
CREATE TABLE offload_ended (
    bucket bigint NOT NULL,  -- the span's start, epoch seconds, a multiple of 10
    state  text   NOT NULL,
    jobs   bigint NOT NULL,
    PRIMARY KEY (bucket, state)
);

CREATE TABLE offload_ended_deltas (
    bucket bigint NOT NULL,
    state  text   NOT NULL,
    jobs   bigint NOT NULL
);

DO $migration$
BEGIN
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_count_ended() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
AS $body$
BEGIN
    INSERT INTO %1$I.offload_ended_deltas (bucket, state, jobs)
    SELECT (floor(CASE WHEN n.state = 'retryable' THEN %1$I.offload_now()
                       ELSE coalesce(n.finished_at, %1$I.offload_now()) END / 10) * 10)::bigint,
           n.state, count(*)
    FROM offload_new AS n JOIN offload_old AS o ON o.id = n.id
    WHERE n.state IN ('completed', 'dead', 'retryable') AND o.state IS DISTINCT FROM n.state
    GROUP BY 1, 2;
    RETURN NULL;
END
$body$
$function$, current_schema());
END
$migration$;

CREATE TRIGGER offload_jobs_ended AFTER UPDATE ON offload_jobs
REFERENCING OLD TABLE AS offload_old NEW TABLE AS offload_new
FOR EACH STATEMENT EXECUTE FUNCTION offload_count_ended();

INSERT INTO offload_ended (bucket, state, jobs)
SELECT (floor(finished_at / 10) * 10)::bigint, state, count(*) FROM offload_jobs
WHERE state IN ('completed', 'dead') AND finished_at IS NOT NULL
GROUP BY 1, 2;

INSERT INTO offload_ended (bucket, state, jobs)
SELECT (floor((errors -> -1 ->> 'at')::double precision / 10) * 10)::bigint, 'retryable',
       count(*)
FROM offload_jobs
WHERE state = 'retryable' AND jsonb_typeof(errors -> -1 -> 'at') = 'number'
GROUP BY 1;
