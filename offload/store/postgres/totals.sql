-- Named queries of the PostgreSQL engine for event totals and discarding jobs
-- (offload/store/postgres/_totals.py, offload/store/_totals.py).

-- name: job_totals
-- One statement, so one snapshot: the rows as they are (state, jobs, starts) and the totals
-- kept for deleted rows and reported events (state NULL).
SELECT queue, kind, state, count(*)::text, coalesce(sum(attempt), 0)::bigint
FROM {schema}.offload_jobs
GROUP BY queue, kind, state
UNION ALL
SELECT queue, kind, NULL, event, value FROM {schema}.offload_totals

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
