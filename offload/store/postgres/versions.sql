-- Named queries of the PostgreSQL engine for argument versions (offload/store/_versions.py,
-- offload/store/postgres/_versions.py).

-- name: job_versions
-- Jobs per kind, version and state among %(states)s, of one %(kind)s when given.
SELECT kind, version, state, count(*) FROM {schema}.offload_jobs
WHERE state = ANY(%(states)s::text[]) AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
GROUP BY kind, version, state
ORDER BY kind, version, state

-- name: job_refuse
-- Running jobs whose arguments are newer than their workers know go back as throttled ones do
-- (retryable after their delay, keeping their place, their attempt given back), fenced by their
-- lease tokens. Each one's meta keeps the time of its first refusal (its grace period starts
-- then), and its error list holds one entry per stretch of refusals: the latest replaces the one
-- before it when that is a refusal too. The workers of their queues are woken (a refused job
-- with a limit key freed its slot).
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(errors)s::text[],
                         %(retry_in)s::double precision[])
        AS t(id, token, error, retry_in)
),
locked AS MATERIALIZED (
    SELECT j.id, input.error, input.retry_in
    FROM {schema}.offload_jobs AS j
    JOIN input ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
entries AS (
    SELECT f.id, f.retry_in, jsonb_build_object(
               'attempt', j.attempt, 'at', {schema}.offload_now(), 'error', f.error,
               'traceback', '', 'kind', 'version') AS entry
    FROM locked AS f JOIN {schema}.offload_jobs AS j ON j.id = f.id
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'retryable', attempt = greatest(j.attempt - 1, 0),
        scheduled_at = {schema}.offload_now() + e.retry_in,
        deadline = {schema}.offload_now() + e.retry_in + j.slo,
        lease_owner = NULL, lease_expires_at = NULL,
        meta = CASE WHEN jsonb_typeof(j.meta) = 'object'
                         AND j.meta -> 'offload.version_wait_since' IS NULL
                    THEN j.meta || jsonb_build_object('offload.version_wait_since',
                                                      {schema}.offload_now())
                    ELSE j.meta END,
        errors = CASE WHEN jsonb_typeof(j.errors) <> 'array' THEN jsonb_build_array(e.entry)
                      WHEN j.errors -> -1 ->> 'kind' = 'version'
                      THEN jsonb_set(j.errors, '{-1}', e.entry)
                      ELSE j.errors || jsonb_build_array(e.entry) END
    FROM entries AS e
    WHERE j.id = e.id
    RETURNING j.queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue)) FROM (SELECT DISTINCT queue FROM done) AS q)
