-- Named queries of the PostgreSQL engine for event totals and discarding jobs
-- (offload/store/postgres/_totals.py, offload/store/_totals.py).

-- name: job_totals
-- One statement, so one snapshot: the rows as they are (state, jobs, starts), from the kept
-- counts and their deltas not yet folded (0016_counts.sql), and the totals kept for deleted
-- rows and reported events (state NULL).
SELECT queue, kind, state, sum(jobs)::text, sum(attempts)::bigint
FROM (SELECT queue, kind, state, jobs, attempts FROM {schema}.offload_counts
      UNION ALL
      SELECT queue, kind, state, jobs, attempts FROM {schema}.offload_count_deltas) AS c
GROUP BY queue, kind, state
HAVING sum(jobs) <> 0
UNION ALL
SELECT queue, kind, NULL, event, value FROM {schema}.offload_totals

-- name: counts_fold
-- Moves the deltas the triggers appended into the kept counts: each delta is deleted and added
-- in this one statement, so it counts once whoever folds. One folder at a time (the others
-- skip: readers add the deltas up anyway), so that two never wait on each other's counters.
WITH turn AS (
    SELECT pg_try_advisory_xact_lock('{schema}.offload_counts'::regclass::oid::bigint) AS mine
),
gone AS (
    DELETE FROM {schema}.offload_count_deltas
    WHERE (SELECT mine FROM turn)
    RETURNING queue, kind, state, jobs, attempts
),
ended AS (  -- the spans of ended jobs (0017_ended.sql), folded alike
    DELETE FROM {schema}.offload_ended_deltas
    WHERE (SELECT mine FROM turn)
    RETURNING bucket, state, jobs
),
ended_in AS (
    INSERT INTO {schema}.offload_ended AS e (bucket, state, jobs)
    SELECT bucket, state, sum(jobs) FROM ended
    GROUP BY bucket, state
    ORDER BY bucket, state
    ON CONFLICT (bucket, state) DO UPDATE SET jobs = e.jobs + excluded.jobs
)
INSERT INTO {schema}.offload_counts AS c (queue, kind, state, jobs, attempts)
SELECT queue, kind, state, sum(jobs), sum(attempts) FROM gone
GROUP BY queue, kind, state
ORDER BY queue, kind, state
ON CONFLICT (queue, kind, state)
DO UPDATE SET jobs = c.jobs + excluded.jobs, attempts = c.attempts + excluded.attempts

-- name: totals_add
INSERT INTO {schema}.offload_totals AS t (queue, kind, event, value)
SELECT * FROM unnest(%(queue)s::text[], %(kind)s::text[], %(event)s::text[],
                     %(value)s::bigint[])
ON CONFLICT (queue, kind, event) DO UPDATE SET value = t.value + excluded.value

-- name: job_discard
-- The deleted row's counts move to the kept totals in the same statement.
WITH gone AS (
    DELETE FROM {schema}.offload_jobs WHERE id = %(id)s
    RETURNING queue, kind, state, attempt
),
kept AS (
    INSERT INTO {schema}.offload_totals AS t (queue, kind, event, value)
    SELECT g.queue, g.kind, e.event, sum(e.amount)
    FROM gone AS g
    CROSS JOIN LATERAL (VALUES ('enqueued', 1), ('started', g.attempt), (g.state, 1))
        AS e (event, amount)
    WHERE e.event IN ('enqueued', 'started', 'completed', 'dead', 'shed')
    GROUP BY g.queue, g.kind, e.event
    ON CONFLICT (queue, kind, event) DO UPDATE SET value = t.value + excluded.value
)
SELECT count(*) FROM gone
