-- Named queries of the PostgreSQL engine for searching jobs and acting on many at once
-- (offload/store/postgres/_bulk.py, offload/store/_bulk.py). `{match}` in a query stands for
-- the fragment `match`, put in when the queries are loaded. They run as unnamed statements,
-- so that each is planned for the filters at hand.

-- name: match
-- What a JobMatch says, every filter optional (NULL: any). Texts are matched as substrings
-- with strpos(), so no character of them is a wildcard, ignoring case. The error is the
-- message of the last entry of the job's errors.
(%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(inserted_since)s::float8 IS NULL OR inserted_at >= %(inserted_since)s::float8)
  AND (%(inserted_until)s::float8 IS NULL OR inserted_at < %(inserted_until)s::float8)
  AND (%(finished_since)s::float8 IS NULL OR finished_at >= %(finished_since)s::float8)
  AND (%(finished_until)s::float8 IS NULL OR finished_at < %(finished_until)s::float8)
  AND (%(args)s::text IS NULL OR strpos(lower(args::text), lower(%(args)s::text)) > 0)
  AND (%(error)s::text IS NULL OR strpos(lower(
        CASE WHEN jsonb_typeof(errors) = 'array' THEN errors -> -1 ->> 'error' END),
        lower(%(error)s::text)) > 0)

-- name: search_page
-- A page of matching job ids, newest first.
SELECT id FROM {schema}.offload_jobs
WHERE {match}
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: id_range
-- Below the first id and the last id: the ids a bulk operation walks (the jobs there when it began).
SELECT coalesce(min(id), 1) - 1, coalesce(max(id), 0) FROM {schema}.offload_jobs

-- name: bulk_count
SELECT count(*) FROM {schema}.offload_jobs WHERE id > %(after)s AND id <= %(upto)s AND {match}

-- name: bulk_retry
-- job_retry (queries.sql) for the next batch of matching jobs, by id, in the window of ids
-- after `after` up to `upto`: available now, one more attempt if needed, the start tag moved
-- up to its lane's head, and a wake-up per queue. A job whose state changed after it was
-- picked is left alone (the update checks the state again). Answers the last id picked, how
-- many were picked and how many changed.
WITH picked AS (
    SELECT id FROM {schema}.offload_jobs
    WHERE id > %(after)s AND id <= %(upto)s AND {match}
    ORDER BY id
    LIMIT %(batch)s
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'available', scheduled_at = {schema}.offload_now(),
        deadline = {schema}.offload_now() + slo, finished_at = NULL,
        result = NULL, max_attempts = greatest(max_attempts, attempt + 1),
        start_tag = greatest(j.start_tag, (
            SELECT v.head FROM {schema}.offload_lane_heads AS v
            WHERE v.queue = j.queue AND v.priority = j.priority), 0)
    WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) AND j.state = ANY(%(states)s::text[])
    RETURNING j.queue
)
SELECT (SELECT max(id) FROM picked), (SELECT count(*) FROM picked), (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, queue)) FROM (SELECT DISTINCT queue FROM done) AS q)

-- name: bulk_cancel
-- job_cancel (queries.sql) for the next batch of matching jobs (as bulk_retry picks them).
WITH picked AS (
    SELECT id FROM {schema}.offload_jobs
    WHERE id > %(after)s AND id <= %(upto)s AND {match}
    ORDER BY id
    LIMIT %(batch)s
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'cancelled', finished_at = {schema}.offload_now()
    WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) AND j.state = ANY(%(states)s::text[])
    RETURNING j.id
)
SELECT (SELECT max(id) FROM picked), (SELECT count(*) FROM picked), (SELECT count(*) FROM done)

-- name: bulk_discard
-- job_discard (totals.sql) for the next batch of matching jobs (as bulk_retry picks them):
-- the deleted rows' counts move to the kept totals in the same statement.
WITH picked AS (
    SELECT id FROM {schema}.offload_jobs
    WHERE id > %(after)s AND id <= %(upto)s AND {match}
    ORDER BY id
    LIMIT %(batch)s
),
gone AS (
    DELETE FROM {schema}.offload_jobs AS j
    WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) AND j.state = ANY(%(states)s::text[])
    RETURNING j.queue, j.kind, j.state, j.attempt
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
SELECT (SELECT max(id) FROM picked), (SELECT count(*) FROM picked), (SELECT count(*) FROM gone)
