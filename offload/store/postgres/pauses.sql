-- Named queries of the PostgreSQL engine for paused queues and kinds
-- (offload/store/postgres/_pauses.py) and the claim's variants used only while some kind is
-- paused. `{schema}` is the store's schema; times come from `offload_now()`.

-- name: pause_add
-- A pause already there is kept as it was (its first author and time); the running jobs of the
-- queue or kind without a stop request are asked to stop (found through the queue-state and
-- state-kind indexes). Columns: the pause, whether it is new, how many jobs were asked to stop.
WITH added AS (
    INSERT INTO {schema}.offload_pauses (scope, name, paused_by, paused_at, reason)
    VALUES (%(scope)s, %(name)s, %(by)s, {schema}.offload_now(), %(reason)s)
    ON CONFLICT (scope, name) DO NOTHING
    RETURNING scope, name, paused_by, paused_at, reason
),
stopping AS (
    UPDATE {schema}.offload_jobs SET stop_request = 'pause'
    WHERE state = 'running' AND stop_request IS NULL
      AND ((%(scope)s = 'queue' AND queue = %(name)s) OR (%(scope)s = 'kind' AND kind = %(name)s))
    RETURNING 1
)
SELECT a.scope, a.name, a.paused_by, a.paused_at, a.reason, true,
       (SELECT count(*) FROM stopping)
FROM added AS a
UNION ALL
SELECT p.scope, p.name, p.paused_by, p.paused_at, p.reason, false,
       (SELECT count(*) FROM stopping)
FROM {schema}.offload_pauses AS p
WHERE p.scope = %(scope)s AND p.name = %(name)s AND NOT EXISTS (SELECT 1 FROM added)

-- name: pause_remove
-- Resume a queue or kind, and take back the 'pause' requests not yet acted on of its running
-- jobs that no other pause covers. Column: whether it was paused.
WITH gone AS (
    DELETE FROM {schema}.offload_pauses WHERE scope = %(scope)s AND name = %(name)s
    RETURNING scope, name
),
unstopped AS (
    UPDATE {schema}.offload_jobs AS j SET stop_request = NULL
    WHERE EXISTS (SELECT 1 FROM gone)
      AND j.state = 'running' AND j.stop_request = 'pause'
      AND ((%(scope)s = 'queue' AND j.queue = %(name)s)
           OR (%(scope)s = 'kind' AND j.kind = %(name)s))
      AND NOT EXISTS (
          SELECT 1 FROM {schema}.offload_pauses AS p
          WHERE ((p.scope = 'queue' AND p.name = j.queue) OR (p.scope = 'kind' AND p.name = j.kind))
            AND (p.scope, p.name) <> (%(scope)s, %(name)s))
    RETURNING 1
),
woken AS (
    SELECT pg_notify(%(channel)s, %(name)s) FROM gone WHERE scope = 'queue'
)
SELECT EXISTS (SELECT 1 FROM gone), (SELECT count(*) FROM unstopped), (SELECT count(*) FROM woken)

-- name: pause_stop_paused
-- Ask running jobs of every paused queue and kind that have no stop request to stop.
UPDATE {schema}.offload_jobs SET stop_request = 'pause'
WHERE state = 'running' AND stop_request IS NULL
  AND (queue IN (SELECT name FROM {schema}.offload_pauses WHERE scope = 'queue')
       OR kind IN (SELECT name FROM {schema}.offload_pauses WHERE scope = 'kind'))

-- name: pause_list
SELECT scope, name, paused_by, paused_at, reason FROM {schema}.offload_pauses
ORDER BY scope, name

-- name: job_claim_unpaused
-- job_claim (queries.sql) leaving out jobs of paused kinds (%(skip_kinds)s): the same range
-- scan of the claim index per queue, each entry's kind read from its row. Keep the two in step.
WITH picked AS MATERIALIZED (
    SELECT c.id, c.limit_key, c.problem,
           row_number() OVER (ORDER BY c.priority DESC, c.order_key, c.id) AS rank
    FROM unnest(%(queues)s::text[]) AS q(queue)
    CROSS JOIN LATERAL (
        SELECT id, priority, order_key, limit_key,
               CASE WHEN jsonb_typeof(args) <> 'object'
                    THEN 'arguments are a JSON ' || jsonb_typeof(args) || ', not an object; '
                         || 'stored text begins ' || quote_literal(left(args::text, 60))
                    WHEN jsonb_typeof(meta) <> 'object'
                    THEN 'meta is a JSON ' || jsonb_typeof(meta) || ', not an object; '
                         || 'stored text begins ' || quote_literal(left(meta::text, 60))
               END AS problem
        FROM {schema}.offload_jobs
        WHERE state = 'available' AND queue = q.queue
          AND kind <> ALL(%(skip_kinds)s::text[])
        ORDER BY priority DESC, order_key, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.priority DESC, c.order_key, c.id
    LIMIT %(limit)s
)
UPDATE {schema}.offload_jobs AS j
SET state = CASE WHEN picked.problem IS NULL THEN 'running' ELSE 'dead' END,
    attempt = j.attempt + 1,
    lease_owner = CASE WHEN picked.problem IS NULL THEN %(worker_id)s::text END,
    lease_token = %(token)s,
    lease_expires_at = CASE WHEN picked.problem IS NULL
                            THEN {schema}.offload_now() + %(lease_seconds)s END,
    attempted_at = {schema}.offload_now(),
    finished_at = CASE WHEN picked.problem IS NULL THEN j.finished_at
                       ELSE {schema}.offload_now() END,
    errors = CASE WHEN picked.problem IS NULL THEN j.errors
                  ELSE j.errors || jsonb_build_array(jsonb_build_object(
                      'attempt', j.attempt + 1, 'at', {schema}.offload_now(),
                      'error', 'PayloadDecodeError: ' || picked.problem, 'traceback', '',
                      'kind', 'undecodable')) END,
    held_token = CASE WHEN %(everything)s::boolean
                           OR (picked.rank <= %(start)s::bigint AND NOT j.isolated
                               AND j.delivery <> 'at_least_once') THEN NULL
                      ELSE %(token)s END
FROM picked
WHERE j.id = picked.id AND j.state = 'available' AND picked.limit_key IS NULL
RETURNING j.id, j.kind, j.queue, j.args, j.meta, j.attempt, j.max_attempts, j.delivery,
          j.timeout, j.lease_token, j.result_ttl, j.priority, j.order_key, j.limit_key,
          j.start_tag, j.tenant,
          j.expires_at IS NOT NULL AND j.expires_at <= {schema}.offload_now(),
          picked.problem,
          (SELECT count(*) FROM picked WHERE limit_key IS NOT NULL),
          j.held_token IS NULL, j.isolated, j.version

-- name: job_claim_page_unpaused
-- job_claim_page (dispatch.sql) leaving out jobs of paused kinds (%(skip_kinds)s).
SELECT id, queue, priority, order_key, limit_key FROM {schema}.offload_jobs
WHERE state = 'available' AND queue = %(queue)s
  AND (priority < %(priority)s::bigint
       OR (priority = %(priority)s::bigint
           AND (order_key, id) > (%(order_key)s::double precision, %(id)s::bigint)))
  AND (limit_key IS NULL OR limit_key <> ALL(%(excluded)s::text[]))
  AND kind <> ALL(%(skip_kinds)s::text[])
ORDER BY priority DESC, order_key, id
LIMIT %(n)s
FOR UPDATE SKIP LOCKED
