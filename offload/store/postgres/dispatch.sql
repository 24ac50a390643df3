-- Named queries of the PostgreSQL engine for the dispatch policy: claims through limits, key
-- declarations, adaptive reports and SLO attainment (offload/store/postgres/_dispatch.py,
-- offload/dispatch/). `{schema}` is the store's schema, quoted by the engine. The fair-queuing
-- tags are computed inside the inserts and `job_promote_due` (queries.sql), with the lane heads
-- and the reservation of virtual time defined once in the schema (migrations/0007).

-- name: job_claim_page
-- The next candidates of a queue after a position in claim order, leaving out saturated keys;
-- locked (SKIP LOCKED) for the claim's transaction.
SELECT id, queue, priority, order_key, limit_key FROM {schema}.offload_jobs
WHERE state = 'available' AND queue = %(queue)s
  AND (priority < %(priority)s::bigint
       OR (priority = %(priority)s::bigint
           AND (order_key, id) > (%(order_key)s::double precision, %(id)s::bigint)))
  AND (limit_key IS NULL OR limit_key <> ALL(%(excluded)s::text[]))
ORDER BY priority DESC, order_key, id
LIMIT %(n)s
FOR UPDATE SKIP LOCKED

-- name: limit_lock
-- The rows of a claim's keys, locked for the claim; a key another claim holds is skipped (the
-- claim treats it as saturated), so claims never wait on each other's keys.
SELECT key, concurrency, rate, period, burst, fifo, adapt_target, adapt_value, tokens,
       refilled_at
FROM {schema}.offload_limits
WHERE key = ANY(%(keys)s::text[])
ORDER BY key
FOR UPDATE SKIP LOCKED

-- name: limit_usage
-- Running jobs of locked keys, and for FIFO keys (n > 0) the available jobs among the first n
-- unfinished ones by id. A statement of its own after `limit_lock`, so that its snapshot sees
-- every claim that held these keys before.
SELECT k.key,
       (SELECT count(*) FROM {schema}.offload_jobs AS j
        WHERE j.limit_key = k.key AND j.state = 'running'),
       ARRAY(
           SELECT h.id FROM (
               (SELECT id, state FROM {schema}.offload_jobs
                WHERE limit_key = k.key AND state = 'available' ORDER BY id LIMIT k.n)
               UNION ALL
               (SELECT id, state FROM {schema}.offload_jobs
                WHERE limit_key = k.key AND state = 'running' ORDER BY id LIMIT k.n)
               UNION ALL
               (SELECT id, state FROM {schema}.offload_jobs
                WHERE limit_key = k.key AND state = 'retryable' ORDER BY id LIMIT k.n)
               ORDER BY id
               LIMIT k.n
           ) AS h
           WHERE h.state = 'available'
       )
FROM unnest(%(keys)s::text[], %(n)s::integer[]) AS k(key, n)

-- name: job_claim_ids
-- As job_claim in queries.sql: a job whose arguments or meta are not a JSON object ends dead
-- here (column 17 says why), and starts are recorded as there. Its columns are job_claim's,
-- with 0 for the count of limited candidates.
WITH picked AS MATERIALIZED (
    SELECT j.id, ids.rank,
           CASE WHEN jsonb_typeof(j.args) <> 'object'
                THEN 'arguments are a JSON ' || jsonb_typeof(j.args) || ', not an object; '
                     || 'stored text begins ' || quote_literal(left(j.args::text, 60))
                WHEN jsonb_typeof(j.meta) <> 'object'
                THEN 'meta is a JSON ' || jsonb_typeof(j.meta) || ', not an object; '
                     || 'stored text begins ' || quote_literal(left(j.meta::text, 60))
           END AS problem
    FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS ids(id, rank)
    JOIN {schema}.offload_jobs AS j ON j.id = ids.id
    WHERE j.state = 'available'
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
WHERE j.id = picked.id AND j.state = 'available'
RETURNING j.id, j.kind, j.queue, j.args, j.meta, j.attempt, j.max_attempts, j.delivery,
          j.timeout, j.lease_token, j.result_ttl, j.priority, j.order_key, j.limit_key,
          j.start_tag, j.tenant,
          j.expires_at IS NOT NULL AND j.expires_at <= {schema}.offload_now(),
          picked.problem, 0, j.held_token IS NULL, j.isolated, j.version

-- name: limit_take
UPDATE {schema}.offload_limits AS l SET tokens = t.tokens, refilled_at = %(now)s
FROM unnest(%(keys)s::text[], %(tokens)s::double precision[]) AS t(key, tokens)
WHERE l.key = t.key

-- name: lane_advance
-- Lane clocks up to the largest start tag a claim took; a lane row another claim holds is
-- skipped, not waited for (that claim moves it on).
WITH moved AS (
    SELECT * FROM unnest(%(queues)s::text[], %(priorities)s::integer[],
                         %(clocks)s::double precision[]) AS m(queue, priority, clock)
),
lane AS (
    SELECT l.queue, l.priority, m.clock
    FROM {schema}.offload_lanes AS l
    JOIN moved AS m ON l.queue = m.queue AND l.priority = m.priority
    WHERE l.clock < m.clock
    ORDER BY l.queue, l.priority
    FOR UPDATE OF l SKIP LOCKED
)
UPDATE {schema}.offload_lanes AS l SET clock = lane.clock
FROM lane
WHERE l.queue = lane.queue AND l.priority = lane.priority

-- name: limit_declare
-- The keys an enqueue names, with their declarations: a new key starts with a full bucket and
-- its declared value; a key declared otherwise than before takes the new numbers, keeping its
-- adaptive value (within the new floor and ceiling) and its tokens (within the new burst). A key
-- declared as before is not written (nor locked).
WITH input AS (
    SELECT * FROM unnest(%(key)s::text[], %(concurrency)s::integer[],
                         %(rate)s::double precision[], %(period)s::double precision[],
                         %(burst)s::double precision[], %(fifo)s::boolean[],
                         %(adapt_target)s::text[], %(adapt_min)s::double precision[],
                         %(adapt_max)s::double precision[], %(adapt_step)s::double precision[],
                         %(adapt_factor)s::double precision[],
                         %(adapt_cooldown)s::double precision[],
                         %(adapt_value)s::double precision[], %(tokens)s::double precision[])
        AS t(key, concurrency, rate, period, burst, fifo, adapt_target, adapt_min, adapt_max,
             adapt_step, adapt_factor, adapt_cooldown, adapt_value, tokens)
),
fresh AS (
    INSERT INTO {schema}.offload_limits (key, concurrency, rate, period, burst, fifo,
                                         adapt_target, adapt_min, adapt_max, adapt_step,
                                         adapt_factor, adapt_cooldown, adapt_value, tokens,
                                         refilled_at, updated_at)
    SELECT key, concurrency, rate, period, burst, fifo, adapt_target, adapt_min, adapt_max,
           adapt_step, adapt_factor, adapt_cooldown, adapt_value, tokens,
           {schema}.offload_now(), {schema}.offload_now()
    FROM input
    ORDER BY key
    ON CONFLICT (key) DO NOTHING
),
changed AS (
    UPDATE {schema}.offload_limits AS l
    SET concurrency = i.concurrency, rate = i.rate, period = i.period, burst = i.burst,
        fifo = i.fifo, adapt_min = i.adapt_min, adapt_max = i.adapt_max,
        adapt_step = i.adapt_step, adapt_factor = i.adapt_factor,
        adapt_cooldown = i.adapt_cooldown,
        adapt_value = CASE
            WHEN i.adapt_target IS NULL THEN NULL
            WHEN l.adapt_target IS NOT DISTINCT FROM i.adapt_target AND l.adapt_value IS NOT NULL
            THEN least(greatest(l.adapt_value, i.adapt_min), i.adapt_max)
            ELSE i.adapt_value END,
        adapt_target = i.adapt_target,
        tokens = CASE WHEN i.tokens IS NULL THEN NULL
                      ELSE least(coalesce(l.tokens, i.tokens), i.tokens) END,
        refilled_at = coalesce(l.refilled_at, {schema}.offload_now()),
        updated_at = {schema}.offload_now()
    FROM input AS i
    WHERE l.key = i.key
      AND (l.concurrency, l.rate, l.period, l.burst, l.fifo, l.adapt_target, l.adapt_min,
           l.adapt_max, l.adapt_step, l.adapt_factor, l.adapt_cooldown)
          IS DISTINCT FROM
          (i.concurrency, i.rate, i.period, i.burst, i.fifo, i.adapt_target, i.adapt_min,
           i.adapt_max, i.adapt_step, i.adapt_factor, i.adapt_cooldown)
)
SELECT 1

-- name: limit_adapt_lock
SELECT key, adapt_target, adapt_value, adapt_min, adapt_max, adapt_step, adapt_factor,
       adapt_cooldown, adapted_at, {schema}.offload_now()
FROM {schema}.offload_limits
WHERE key = ANY(%(keys)s::text[])
ORDER BY key
FOR UPDATE

-- name: limit_adapt_set
UPDATE {schema}.offload_limits AS l
SET adapt_value = t.value, adapted_at = t.adapted_at, throttles = l.throttles + t.throttles,
    updated_at = {schema}.offload_now()
FROM unnest(%(keys)s::text[], %(values)s::double precision[],
            %(adapted_at)s::double precision[], %(throttles)s::bigint[])
    AS t(key, value, adapted_at, throttles)
WHERE l.key = t.key

-- name: limit_list
SELECT l.key, l.concurrency, l.rate, l.period, l.burst, l.fifo, l.adapt_target, l.adapt_value,
       l.tokens, l.refilled_at, l.adapt_min, l.adapt_max, l.throttles, l.updated_at,
       (SELECT count(*) FROM {schema}.offload_jobs AS j
        WHERE j.limit_key = l.key AND j.state = 'running'),
       {schema}.offload_now()
FROM {schema}.offload_limits AS l
ORDER BY l.key

-- name: job_slo_attainment
-- Jobs of each kind with a deadline claimed since %(since)s (through the partial index on
-- attempted_at): how many started by their deadline, how late the others started.
SELECT kind, count(*),
       count(*) FILTER (WHERE attempted_at <= deadline),
       avg(attempted_at - deadline) FILTER (WHERE attempted_at > deadline),
       max(attempted_at - deadline) FILTER (WHERE attempted_at > deadline)
FROM {schema}.offload_jobs
WHERE deadline IS NOT NULL AND attempted_at >= %(since)s
GROUP BY kind
ORDER BY kind

-- name: limit_prune
-- Keys idle since before the given time that no unfinished job names. A job of such a key
-- inserted later declares it again (its tokens and adapted value start afresh); one inserted
-- by a transaction still open meanwhile runs unlimited until the key's next declaration.
DELETE FROM {schema}.offload_limits AS l
WHERE greatest(l.updated_at, coalesce(l.refilled_at, 0), coalesce(l.adapted_at, 0)) < %(before)s
  AND NOT EXISTS (SELECT 1 FROM {schema}.offload_jobs AS j
                  WHERE j.limit_key = l.key
                    AND j.state IN ('scheduled', 'available', 'running', 'retryable'))
