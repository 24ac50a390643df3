-- Named queries of the PostgreSQL engine. `{schema}` is the store's schema and `{channel}` its
-- notification channel, both quoted by the engine when it loads this file; every table is
-- qualified so that a caller's connection with another search_path works too. Times are float
-- seconds since the epoch from `offload_now()`, the database's clock; JSON columns are jsonb and
-- JSON is bound as text. Batches are bound as arrays and unnested, one statement per batch.
-- A statement that makes jobs available notifies `%(channel)s` once per queue, in its own
-- transaction: the notification is delivered when (and only if) the change commits.

-- name: migrate_lock
SELECT pg_advisory_xact_lock(%(key)s)

-- name: schema_exists
SELECT to_regnamespace('{schema}') IS NOT NULL

-- name: migrate_search_path
SET LOCAL search_path TO {schema}

-- name: schema_create
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: migrations_table
CREATE TABLE IF NOT EXISTS {schema}.offload_migrations (
    version    integer          PRIMARY KEY,
    name       text             NOT NULL,
    applied_at double precision NOT NULL
)

-- name: migrations_exists
SELECT to_regclass('{schema}.offload_migrations') IS NOT NULL

-- name: migrations_version
SELECT coalesce(max(version), 0) FROM {schema}.offload_migrations

-- name: migrations_applied
SELECT version FROM {schema}.offload_migrations ORDER BY version

-- name: migration_record
INSERT INTO {schema}.offload_migrations (version, name, applied_at)
VALUES (%(version)s, %(name)s, extract(epoch FROM clock_timestamp())::double precision)

-- name: clock
SELECT extract(epoch FROM clock_timestamp())::double precision

-- name: oldest_transaction
-- Seconds since the oldest transaction open in this database began, among those holding a
-- snapshot (backend_xmin: they keep vacuum from removing dead rows of the jobs table), this
-- connection excepted; 0 when there is none. Other roles' sessions count only for a superuser
-- or a member of pg_read_all_stats.
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(xact_start)), 0)::double precision
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_xmin IS NOT NULL AND xact_start IS NOT NULL

-- name: listen
LISTEN {channel}

-- name: job_insert
-- Ids are taken from the sequence in input order before inserting, so that the outcome of
-- every input row (inserted, or skipped as a duplicate of a unique key) maps back to it.
-- Jobs available at once get their fair-queuing start tags here (dispatch/_ordering.py): each
-- flow (lane, kind, tenant) of the batch reserves the virtual time its jobs need
-- (offload_reserve_flows: finish = max(finish, lane clock) + sum of strides; the row lock orders
-- concurrent batches), and its jobs take consecutive start tags from the base in the order
-- they became due. Scheduled jobs are tagged when promoted.
WITH input AS MATERIALIZED (
    SELECT nextval('{schema}.offload_jobs_id_seq') AS id, t.*,
           coalesce(t.at, {schema}.offload_now() + t.delay) AS run_at
    FROM unnest(%(kind)s::text[], %(queue)s::text[], %(args)s::text[], %(meta)s::text[],
                %(tenant)s::text[], %(priority)s::integer[], %(max_attempts)s::integer[],
                %(delivery)s::text[], %(timeout)s::double precision[],
                %(at)s::double precision[], %(delay)s::double precision[],
                %(unique_key)s::text[], %(result_ttl)s::double precision[],
                %(slo)s::double precision[], %(stride)s::double precision[],
                %(limit_key)s::text[], %(penalty)s::double precision[],
                %(version)s::integer[])
         WITH ORDINALITY AS t(kind, queue, args, meta, tenant, priority, max_attempts, delivery,
                              timeout, at, delay, unique_key, result_ttl, slo, stride,
                              limit_key, penalty, version, ord)
    ORDER BY t.ord
),
demand AS (
    SELECT queue, priority, kind, coalesce(tenant, '') AS tenant, sum(stride) AS added
    FROM input
    WHERE run_at <= {schema}.offload_now()
    GROUP BY 1, 2, 3, 4
),
reserved AS (
    -- Each flow's base (offload_reserve_flows), the flows as arrays aggregated in one pass.
    SELECT r.* FROM (
        SELECT array_agg(queue) AS queue, array_agg(priority) AS priority,
               array_agg(kind) AS kind, array_agg(tenant) AS tenant, array_agg(added) AS added
        FROM demand
    ) AS d
    CROSS JOIN LATERAL {schema}.offload_reserve_flows(d.queue, d.priority, d.kind, d.tenant,
                                                      d.added) AS r
    WHERE d.queue IS NOT NULL
),
tagged AS (
    SELECT i.id,
           r.base + sum(i.stride) OVER (PARTITION BY r.queue, r.priority, r.kind, r.tenant
                                        ORDER BY i.run_at, i.ord) - i.stride
           + i.penalty AS start_tag
    FROM input AS i
    JOIN reserved AS r
      ON r.queue = i.queue AND r.priority = i.priority AND r.kind = i.kind
     AND r.tenant = coalesce(i.tenant, '')
    WHERE i.run_at <= {schema}.offload_now()
),
ins AS (
    INSERT INTO {schema}.offload_jobs (id, kind, queue, args, meta, tenant, state, priority,
                                       max_attempts, delivery, timeout, scheduled_at,
                                       unique_key, result_ttl, inserted_at, slo, stride,
                                       deadline, limit_key, start_tag, version)
    SELECT input.id, kind, queue, args::jsonb, meta::jsonb, tenant,
           CASE WHEN run_at <= {schema}.offload_now() THEN 'available' ELSE 'scheduled' END,
           priority, max_attempts, delivery, timeout, run_at, unique_key, result_ttl,
           {schema}.offload_now(), slo, nullif(stride, 1), run_at + slo, limit_key,
           t.start_tag, version
    FROM input
    LEFT JOIN tagged AS t ON t.id = input.id
    ORDER BY ord
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id, queue, state
)
SELECT input.id, ins.id IS NOT NULL,
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM ins WHERE state = 'available') AS q)
FROM input LEFT JOIN ins ON ins.id = input.id
ORDER BY input.ord

-- name: job_insert_rows
-- Jobs that hold no unique key and name no scheduled_at (they are available at once, dated
-- back by a negative delay, or scheduled by a positive one), as one JSON array of objects:
-- JSON parses faster than a dozen text arrays, and the arguments arrive as the JSON text the
-- producer checked. The producer works out each available job's place within its flow of the
-- batch (`flow`: its 1-based index in the flow_* arrays, `offset`: the strides of the jobs
-- of its flow before it, in the order they became due); this statement only reserves each
-- flow's virtual time (as job_insert does: the row lock orders concurrent batches) and adds
-- the flow's base. Ids are taken from the sequence in input order and returned in it.
WITH input AS MATERIALIZED (
    SELECT nextval('{schema}.offload_jobs_id_seq') AS id, t.*,
           {schema}.offload_now() + coalesce(t.delay, 0) AS run_at
    FROM ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb)
                    AS (kind text, queue text, args jsonb, meta jsonb, tenant text,
                        priority integer, max_attempts integer, delivery text,
                        timeout double precision, delay double precision,
                        result_ttl double precision, slo double precision,
                        stride double precision, limit_key text, flow integer,
                        "offset" double precision, version integer))
         WITH ORDINALITY AS t(kind, queue, args, meta, tenant, priority, max_attempts, delivery,
                              timeout, delay, result_ttl, slo, stride, limit_key, flow,
                              "offset", version, ord)
    ORDER BY t.ord
),
demand AS (
    SELECT * FROM unnest(%(flow_queue)s::text[], %(flow_priority)s::integer[],
                         %(flow_kind)s::text[], %(flow_tenant)s::text[],
                         %(flow_added)s::double precision[])
         WITH ORDINALITY AS d(queue, priority, kind, tenant, added, flow)
),
reserved AS (
    SELECT * FROM {schema}.offload_reserve_flows(
        %(flow_queue)s::text[], %(flow_priority)s::integer[], %(flow_kind)s::text[],
        %(flow_tenant)s::text[], %(flow_added)s::double precision[])
),
bases AS (
    SELECT d.flow, r.base
    FROM demand AS d
    JOIN reserved AS r
      ON r.queue = d.queue AND r.priority = d.priority AND r.kind = d.kind
     AND r.tenant = d.tenant
),
ins AS (
    INSERT INTO {schema}.offload_jobs (id, kind, queue, args, meta, tenant, state, priority,
                                       max_attempts, delivery, timeout, scheduled_at,
                                       result_ttl, inserted_at, slo, stride, deadline,
                                       limit_key, start_tag, version)
    SELECT i.id, i.kind, i.queue, i.args, coalesce(i.meta, '{}'), i.tenant,
           CASE WHEN i.flow IS NULL THEN 'scheduled' ELSE 'available' END,
           coalesce(i.priority, 0), i.max_attempts, i.delivery, i.timeout, i.run_at,
           i.result_ttl, {schema}.offload_now(), i.slo, i.stride, i.run_at + i.slo,
           i.limit_key, b.base + i."offset", coalesce(i.version, 1)
    FROM input AS i
    LEFT JOIN bases AS b ON b.flow = i.flow
)
SELECT i.id,
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT d.queue FROM demand AS d) AS q)
FROM input AS i
ORDER BY i.ord

-- name: job_insert_one
-- One job available at once without a unique key (a single enqueue): job_insert_rows for one
-- row, with plain parameters instead of JSON and arrays.
INSERT INTO {schema}.offload_jobs (kind, queue, args, meta, tenant, state, priority,
                                   max_attempts, delivery, timeout, scheduled_at, result_ttl,
                                   inserted_at, slo, stride, deadline, limit_key, start_tag,
                                   version)
SELECT %(kind)s, %(queue)s, %(args)s::jsonb, %(meta)s::jsonb, %(tenant)s, 'available',
       %(priority)s, %(max_attempts)s, %(delivery)s, %(timeout)s,
       {schema}.offload_now() + %(delay)s, %(result_ttl)s, {schema}.offload_now(), %(slo)s,
       nullif(%(stride)s, 1), {schema}.offload_now() + %(delay)s + %(slo)s, %(limit_key)s,
       {schema}.offload_reserve(%(queue)s, %(priority)s, %(kind)s, %(flow_tenant)s, %(stride)s)
       + %(penalty)s, %(version)s
RETURNING id, pg_notify(%(channel)s, queue)

-- name: job_ids_by_unique
SELECT unique_key, id FROM {schema}.offload_jobs WHERE unique_key = ANY(%(keys)s::text[])

-- name: job_claim
-- The best `limit` available jobs of each queue come from one index range scan each, locked
-- with SKIP LOCKED so that concurrent claims pass each other; the best `limit` of those win.
-- This claim takes only those without a limit key; its last column counts the others, and the
-- engine then claims through limits (_dispatch.py). Column 15 is the start tag, for the
-- lanes' clocks (dispatch/_ordering.py). Every job's start is recorded now
-- (held_token NULL) when %(everything)s (a claimer that runs what it takes); else only that of
-- the at-most-once jobs among the first %(start)s in claim order, those that go straight into
-- free slots (isolated jobs excepted: they record their start before they begin), and the
-- others are held: a worker records their start once they have begun.
-- A job whose arguments or meta are not a JSON object (a foreign writer's, or a hand-edited
-- row: jsonb holds only valid JSON, so its shape is all that can be wrong) ends dead here in
-- the claim's own statement, with the error store/_codec.py words for it (column 17: the
-- problem; such a row is not handed out), so that it never holds anything else up.
-- Columns 17-20: the problem, the candidates left for limits, started, isolated.
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

-- name: generic_plan
-- For a worker's cycle: its statements, prepared on each pooled connection, keep one plan each
-- instead of being planned again at every run (planning was 0.6 ms of a 0.8 ms claim). Only
-- here: statements with optional filters (job_list) or ranges want plans for their values.
SET LOCAL plan_cache_mode = force_generic_plan

-- name: async_commit
-- For a worker's cycle (acknowledgements and the next claim) of at-least-once jobs only: the
-- commit does not wait for the log to reach the disk. A crash of the server may lose the last
-- cycles; their jobs are then claimed and run again (docs/postgres.md).
SET LOCAL synchronous_commit = off

-- name: job_claim_probe
-- Whether any of these queues has an available job (after a claim that took none).
SELECT EXISTS (
    SELECT 1 FROM {schema}.offload_jobs WHERE state = 'available' AND queue = ANY(%(queues)s)
)

-- name: job_complete
-- The acknowledgement queries lock their rows in id order first (`locked`), so that batches
-- touching the same jobs (a heartbeat and a completion of one worker) never deadlock.
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(results)s::text[])
        AS t(id, token, result)
),
locked AS MATERIALIZED (
    SELECT j.id, input.result FROM {schema}.offload_jobs AS j
    JOIN input ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'completed', result = locked.result::jsonb, finished_at = {schema}.offload_now(),
        lease_owner = NULL, lease_expires_at = NULL
    FROM locked
    WHERE j.id = locked.id
    RETURNING j.id, j.queue, j.limit_key
),
stale AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT 'stale_acks', %(n)s::bigint - count(*) FROM done
    HAVING %(n)s::bigint - count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
-- A finished job with a limit key freed a slot (or moved a FIFO key's head): wake the workers
-- of its queue, whose jobs of that key may be waiting for it (offload/dispatch/_limits.py).
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM done WHERE limit_key IS NOT NULL) AS q)

-- name: job_fail
-- `retry_in` NULL makes the job dead; otherwise it is retryable after that many seconds. A
-- throttled attempt is given back.
-- A job keeps the error entries of its first 3 and its last 5 attempts (store/_codec.py's
-- ERRORS_FIRST and ERRORS_LAST): the ones between are counted in one entry of kind 'omitted'
-- at place 3 (`omitted`: how many; `attempt` and `at`: the latest left out).
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(errors)s::text[],
                         %(tracebacks)s::text[], %(retry_in)s::double precision[],
                         %(throttled)s::boolean[])
        AS t(id, token, error, traceback, retry_in, throttled)
),
locked AS MATERIALIZED (
    SELECT j.id, input.error, input.traceback, input.retry_in, input.throttled
    FROM {schema}.offload_jobs AS j
    JOIN input ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = CASE WHEN f.retry_in IS NULL THEN 'dead' ELSE 'retryable' END,
        attempt = CASE WHEN f.throttled THEN greatest(j.attempt - 1, 0) ELSE j.attempt END,
        scheduled_at = CASE WHEN f.retry_in IS NULL THEN j.scheduled_at
                            ELSE {schema}.offload_now() + f.retry_in END,
        deadline = CASE WHEN f.retry_in IS NULL THEN j.deadline
                        ELSE {schema}.offload_now() + f.retry_in + j.slo END,
        finished_at = CASE WHEN f.retry_in IS NULL THEN {schema}.offload_now()
                           ELSE j.finished_at END,
        lease_owner = NULL, lease_expires_at = NULL,
        errors = (
            SELECT CASE WHEN x.n - 3 - x.marked <= 5 THEN x.arr ELSE (
                SELECT jsonb_agg(e.v ORDER BY e.o) FROM (
                    SELECT t.v, t.o FROM jsonb_array_elements(x.arr) WITH ORDINALITY AS t(v, o)
                    WHERE t.o <= 3
                    UNION ALL
                    SELECT jsonb_build_object(
                        'attempt', x.arr -> (x.n - 6) -> 'attempt',
                        'at', x.arr -> (x.n - 6) -> 'at',
                        'error', x.left_out || ' earlier errors left out: a job keeps those of '
                                 || 'its first 3 and its last 5 attempts',
                        'traceback', '', 'kind', 'omitted', 'omitted', x.left_out), 3.5
                    UNION ALL
                    SELECT t.v, t.o FROM jsonb_array_elements(x.arr) WITH ORDINALITY AS t(v, o)
                    WHERE t.o > x.n - 5) AS e) END
            FROM (SELECT y.arr, y.n, y.marked,
                         y.n - 8 - y.marked + CASE WHEN y.marked = 1
                             THEN coalesce((y.arr -> 3 ->> 'omitted')::bigint, 0) ELSE 0 END
                         AS left_out
                  FROM (SELECT z.arr, jsonb_array_length(z.arr) AS n,
                               CASE WHEN z.arr -> 3 ->> 'kind' = 'omitted' THEN 1 ELSE 0 END
                               AS marked
                        FROM (SELECT j.errors || jsonb_build_array(jsonb_build_object(
                                  'attempt', j.attempt, 'at', {schema}.offload_now(),
                                  'error', f.error, 'traceback', f.traceback,
                                  'kind', CASE WHEN f.throttled THEN 'throttled' ELSE 'error' END))
                              AS arr) AS z) AS y) AS x)
    FROM locked AS f
    WHERE j.id = f.id
    RETURNING j.id, j.queue, j.limit_key
),
stale AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT 'stale_acks', %(n)s::bigint - count(*) FROM done
    HAVING %(n)s::bigint - count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM done WHERE limit_key IS NOT NULL) AS q)

-- name: job_heartbeat
WITH locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.offload_jobs AS j
    JOIN unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS input(id, token)
      ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
)
UPDATE {schema}.offload_jobs AS j
SET lease_expires_at = {schema}.offload_now() + %(lease_seconds)s
FROM (SELECT DISTINCT id FROM locked) AS locked
WHERE j.id = locked.id
RETURNING j.id, j.lease_token

-- name: job_start
-- Held jobs that have started: their start is recorded (held_token NULL). Returns the ids
-- recorded; the others' lease was lost.
WITH locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.offload_jobs AS j
    JOIN unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS input(id, token)
      ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
)
UPDATE {schema}.offload_jobs AS j SET held_token = NULL
FROM (SELECT DISTINCT id FROM locked) AS locked
WHERE j.id = locked.id
RETURNING j.id

-- name: job_release
WITH locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.offload_jobs AS j
    JOIN unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS input(id, token)
      ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'available', attempt = greatest(j.attempt - 1, 0), lease_owner = NULL,
        lease_expires_at = NULL, scheduled_at = {schema}.offload_now(),
        start_tag = greatest(j.start_tag, (
            SELECT v.head FROM {schema}.offload_lane_heads AS v
            WHERE v.queue = j.queue AND v.priority = j.priority), 0)
    FROM (SELECT DISTINCT id FROM locked) AS locked
    WHERE j.id = locked.id
    RETURNING j.queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue)) FROM (SELECT DISTINCT queue FROM done) AS q)

-- name: job_iteration_state
-- What a run of an iteration job resumes from (docs/long-jobs.md), fenced by its lease token.
SELECT cursor, progress_done, progress_total, stop_request
FROM {schema}.offload_jobs
WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'

-- name: job_checkpoint
-- A done or total of null keeps the stored one. Returns the stop request of each job written
-- (the others' lease was lost).
UPDATE {schema}.offload_jobs AS j
SET cursor = CASE WHEN input.has THEN input.cursor ELSE j.cursor END,
    progress_done = coalesce(input.done, j.progress_done),
    progress_total = coalesce(input.total, j.progress_total),
    progress_eta = {schema}.offload_now() + input.remaining
FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(has)s::boolean[], %(cursors)s::jsonb[],
            %(done)s::double precision[], %(total)s::double precision[],
            %(remaining)s::double precision[])
     AS input(id, token, has, cursor, done, total, remaining)
WHERE j.id = input.id AND j.lease_token = input.token AND j.state = 'running'
RETURNING j.id, j.stop_request

-- name: job_put_back
-- Running jobs stopped early go back with their checkpoint and their attempt given back, their
-- stop request cleared: available at once (keeping their place in virtual time, as job_release
-- does, and notifying their queue), or scheduled after a delay (tagged again when due).
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(has)s::boolean[],
                         %(cursors)s::jsonb[], %(done)s::double precision[],
                         %(total)s::double precision[], %(delay)s::double precision[])
        AS input(id, token, has, cursor, done, total, delay)
),
locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.offload_jobs AS j
    JOIN input ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = CASE WHEN input.delay > 0 THEN 'scheduled' ELSE 'available' END,
        attempt = greatest(j.attempt - 1, 0), lease_owner = NULL, lease_expires_at = NULL,
        scheduled_at = {schema}.offload_now() + input.delay,
        deadline = CASE WHEN input.delay > 0 THEN {schema}.offload_now() + input.delay + j.slo
                        ELSE j.deadline END,
        stop_request = NULL,
        cursor = CASE WHEN input.has THEN input.cursor ELSE j.cursor END,
        progress_done = coalesce(input.done, j.progress_done),
        progress_total = coalesce(input.total, j.progress_total),
        progress_eta = NULL,
        start_tag = CASE WHEN input.delay > 0 THEN j.start_tag ELSE greatest(j.start_tag, (
            SELECT v.head FROM {schema}.offload_lane_heads AS v
            WHERE v.queue = j.queue AND v.priority = j.priority), 0) END
    FROM input JOIN locked ON locked.id = input.id
    WHERE j.id = input.id
    RETURNING j.queue, j.state
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM done WHERE state = 'available') AS q)

-- name: job_cancel_running
-- Running jobs whose cancel request they honoured end cancelled, their checkpoint stored.
WITH done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'cancelled', finished_at = {schema}.offload_now(), lease_owner = NULL,
        lease_expires_at = NULL, stop_request = NULL,
        cursor = CASE WHEN input.has THEN input.cursor ELSE j.cursor END,
        progress_done = coalesce(input.done, j.progress_done),
        progress_total = coalesce(input.total, j.progress_total),
        progress_eta = NULL
    FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(has)s::boolean[],
                %(cursors)s::jsonb[], %(done)s::double precision[],
                %(total)s::double precision[])
         AS input(id, token, has, cursor, done, total)
    WHERE j.id = input.id AND j.lease_token = input.token AND j.state = 'running'
    RETURNING j.id
)
SELECT count(*) FROM done

-- name: job_stop_requests
SELECT j.id, j.stop_request
FROM {schema}.offload_jobs AS j
JOIN unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS input(id, token)
  ON j.id = input.id AND j.lease_token = input.token
WHERE j.state = 'running' AND j.stop_request IS NOT NULL

-- name: job_request_stop
-- A cancel request wins over a pause request, never the other way round.
UPDATE {schema}.offload_jobs
SET stop_request = CASE WHEN stop_request = 'cancel' THEN 'cancel' ELSE %(request)s END
WHERE id = %(id)s AND state = 'running'

-- name: job_rescue_expired
-- Jobs whose start was recorded are charged a crash (counted apart from attempts, with an
-- error entry) and run isolated from then on: at-most-once ones, and those that crashed their
-- worker `max_crashes` times, end dead; the others go back to available without counting the
-- attempt. Jobs held unstarted (held_token stands for the current claim only when it equals
-- lease_token) go back uncharged, isolated from then on when at-least-once (they may have
-- started in the moments before their worker's last cycle).
WITH expired AS MATERIALIZED (
    SELECT id, unstarted,
           CASE WHEN unstarted THEN NULL
                WHEN delivery = 'at_most_once' THEN 'abandoned'
                WHEN crashes + 1 >= %(max_crashes)s THEN
                    'abandoned: its worker was lost ' || (crashes + 1)::text
                    || ' times while running it (a job that crashes its worker is stopped here)'
           END AS dead_reason
    FROM (SELECT id, delivery, crashes, lease_expires_at,
                 coalesce(held_token = lease_token, false) AS unstarted
          FROM {schema}.offload_jobs
          WHERE state = 'running' AND lease_expires_at < {schema}.offload_now()
          ORDER BY lease_expires_at
          LIMIT 1000
          FOR UPDATE SKIP LOCKED) AS x
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = CASE WHEN e.dead_reason IS NULL THEN 'available' ELSE 'dead' END,
        attempt = CASE WHEN e.dead_reason IS NULL THEN greatest(j.attempt - 1, 0)
                       ELSE j.attempt END,
        crashes = j.crashes + CASE WHEN e.unstarted THEN 0 ELSE 1 END,
        isolated = j.isolated OR NOT e.unstarted OR j.delivery = 'at_least_once',
        scheduled_at = CASE WHEN e.dead_reason IS NULL THEN {schema}.offload_now()
                            ELSE j.scheduled_at END,
        start_tag = CASE WHEN e.dead_reason IS NOT NULL THEN j.start_tag ELSE
            greatest(j.start_tag, (
                SELECT v.head FROM {schema}.offload_lane_heads AS v
                WHERE v.queue = j.queue AND v.priority = j.priority), 0) END,
        finished_at = CASE WHEN e.dead_reason IS NULL THEN j.finished_at
                           ELSE {schema}.offload_now() END,
        lease_owner = NULL, lease_expires_at = NULL,
        errors = CASE WHEN e.unstarted THEN j.errors ELSE j.errors || jsonb_build_array(
            jsonb_build_object(
                'attempt', j.attempt, 'at', {schema}.offload_now(),
                'error', coalesce(e.dead_reason, 'worker lost: lease expired'),
                'traceback', '', 'kind', 'crash')) END
    FROM expired AS e
    WHERE j.id = e.id AND j.state = 'running'
    RETURNING j.state, j.queue, e.unstarted
),
counted AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT name, n FROM (
        SELECT 'rescued' AS name, count(*) FILTER (WHERE state = 'available') AS n FROM done
        UNION ALL
        SELECT 'abandoned', count(*) FILTER (WHERE state = 'dead') FROM done
    ) AS counts
    WHERE n > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT (SELECT count(*) FROM done WHERE state = 'available'),
       (SELECT count(*) FROM done WHERE state = 'dead'),
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM done WHERE state = 'available') AS q),
       (SELECT count(*) FROM done WHERE unstarted)

-- name: job_promote_due
-- Scheduled jobs get their fair-queuing tags now, as `job_insert` gives them to jobs available
-- at once; retryable jobs keep the place they had (they already waited their turn once), or
-- take their lane's head's when theirs is behind it, so that the head never goes back in
-- virtual time (offload/dispatch/_ordering.py; the same in job_release, job_rescue_expired and
-- job_retry).
WITH due AS MATERIALIZED (
    SELECT id, state, queue, priority, kind, coalesce(tenant, '') AS tenant,
           coalesce(stride, 1) AS stride, slo, scheduled_at
    FROM {schema}.offload_jobs
    WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= {schema}.offload_now()
    ORDER BY scheduled_at
    LIMIT 5000
    FOR UPDATE SKIP LOCKED
),
demand AS (
    SELECT queue, priority, kind, tenant, sum(stride) AS added
    FROM due WHERE state = 'scheduled'
    GROUP BY 1, 2, 3, 4
),
reserved AS (
    -- Each flow's base (offload_reserve_flows), the flows as arrays aggregated in one pass.
    SELECT r.* FROM (
        SELECT array_agg(queue) AS queue, array_agg(priority) AS priority,
               array_agg(kind) AS kind, array_agg(tenant) AS tenant, array_agg(added) AS added
        FROM demand
    ) AS d
    CROSS JOIN LATERAL {schema}.offload_reserve_flows(d.queue, d.priority, d.kind, d.tenant,
                                                      d.added) AS r
    WHERE d.queue IS NOT NULL
),
tagged AS (
    -- Every due job, its start tag when scheduled (null when retryable). One row per job, so
    -- that the update below finds each by its id: a join of the update with a window over
    -- the due jobs was planned as a nested loop that ran the window once per job (quadratic).
    SELECT due.id,
           r.base + sum(due.stride) OVER (PARTITION BY due.state, due.queue, due.priority,
                                                       due.kind, due.tenant
                                          ORDER BY due.scheduled_at, due.id) - due.stride
               AS start_tag
    FROM due
    LEFT JOIN reserved AS r
      ON due.state = 'scheduled' AND r.queue = due.queue AND r.priority = due.priority
     AND r.kind = due.kind AND r.tenant = due.tenant
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'available',
        start_tag = coalesce(t.start_tag, greatest(j.start_tag, (
            SELECT v.head FROM {schema}.offload_lane_heads AS v
            WHERE v.queue = j.queue AND v.priority = j.priority), 0))
    FROM tagged AS t
    WHERE j.id = t.id AND j.state IN ('scheduled', 'retryable')
    RETURNING j.queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue)) FROM (SELECT DISTINCT queue FROM done) AS q)

-- name: job_get
SELECT id, kind, queue, args, meta, tenant, state, priority, attempt, max_attempts, crashes,
       delivery, timeout, errors, scheduled_at, unique_key, lease_owner, lease_token,
       lease_expires_at, result, result_ttl, inserted_at, attempted_at, finished_at,
       order_key, deadline, limit_key, expires_at, cursor, progress_done, progress_total,
       progress_eta, stop_request, version, parent_id, root_id
FROM {schema}.offload_jobs WHERE id = %(id)s

-- name: custom_plan
-- For job_list in its transaction: a plan made for the filters given, whatever the server's
-- plan cache would otherwise choose after a few runs.
SET LOCAL plan_cache_mode = force_custom_plan

-- name: job_list
SELECT id, kind, queue, args, meta, tenant, state, priority, attempt, max_attempts, crashes,
       delivery, timeout, errors, scheduled_at, unique_key, lease_owner, lease_token,
       lease_expires_at, result, result_ttl, inserted_at, attempted_at, finished_at,
       order_key, deadline, limit_key, expires_at, cursor, progress_done, progress_total,
       progress_eta, stop_request, version, parent_id, root_id
FROM {schema}.offload_jobs
WHERE (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
  AND (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s::text[]))
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: job_retry
WITH done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'available', scheduled_at = {schema}.offload_now(),
        deadline = {schema}.offload_now() + slo, finished_at = NULL,
        result = NULL, max_attempts = greatest(max_attempts, attempt + 1), stop_request = NULL,
        start_tag = greatest(j.start_tag, (
            SELECT v.head FROM {schema}.offload_lane_heads AS v
            WHERE v.queue = j.queue AND v.priority = j.priority), 0)
    WHERE id = %(id)s
      AND state IN ('dead', 'cancelled', 'shed', 'completed', 'retryable', 'scheduled')
    RETURNING queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, queue)) FROM done)

-- name: job_cancel
UPDATE {schema}.offload_jobs SET state = 'cancelled', finished_at = {schema}.offload_now()
WHERE id = %(id)s AND state IN ('scheduled', 'available', 'retryable')

-- name: job_prune
-- Each delete takes the ids it locked as one array, computed once (an InitPlan). Joined to
-- the delete instead, the locking subquery ran for minutes of CPU when the leader pruned while
-- workers were finishing a batch of 20,000 jobs (tests/faults/test_churn.py, a million jobs):
-- the maintenance thread hung, and its successor's prune with it.
WITH completed AS (
    DELETE FROM {schema}.offload_jobs
    WHERE id = ANY(ARRAY(
        SELECT id FROM {schema}.offload_jobs
        WHERE state = 'completed' AND finished_at + result_ttl < {schema}.offload_now()
        LIMIT 10000
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING queue, kind, state, attempt
),
final AS (
    DELETE FROM {schema}.offload_jobs
    WHERE id = ANY(ARRAY(
        SELECT id FROM {schema}.offload_jobs
        WHERE state IN ('dead', 'cancelled', 'shed')
          AND finished_at < {schema}.offload_now() - %(dead_older_than)s
        LIMIT 10000
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING queue, kind, state, attempt
),
gone AS (
    SELECT * FROM completed UNION ALL SELECT * FROM final
),
kept AS (
    -- What the deleted rows counted stays in the totals (offload/store/_totals.py).
    INSERT INTO {schema}.offload_totals AS t (queue, kind, event, value)
    SELECT g.queue, g.kind, e.event, sum(e.amount)
    FROM gone AS g
    CROSS JOIN LATERAL (VALUES ('enqueued', 1), ('started', g.attempt), (g.state, 1))
        AS e (event, amount)
    WHERE e.event IN ('enqueued', 'started', 'completed', 'dead', 'shed')
    GROUP BY g.queue, g.kind, e.event
    ON CONFLICT (queue, kind, event) DO UPDATE SET value = t.value + excluded.value
),
flows AS (
    -- A flow whose finish tag its lane's clock has passed is the same as no flow at all.
    DELETE FROM {schema}.offload_flows AS f
    USING {schema}.offload_lanes AS l
    WHERE l.queue = f.queue AND l.priority = f.priority AND f.finish <= l.clock
)
SELECT count(*) FROM gone

-- name: job_counts
-- From the kept counts and their deltas not yet folded (0016_counts.sql), not the job rows.
SELECT queue, state, sum(jobs)
FROM (SELECT queue, state, jobs FROM {schema}.offload_counts
      UNION ALL
      SELECT queue, state, jobs FROM {schema}.offload_count_deltas) AS c
GROUP BY queue, state HAVING sum(jobs) <> 0 ORDER BY queue, state

-- name: job_finished_since
-- Whole 10-second spans from the kept counts and their deltas not yet folded (0017_ended.sql);
-- the part of the span that `since` cuts (before `edge`, the next span's start) from the rows,
-- exactly.
SELECT state, sum(jobs)::bigint FROM (
    SELECT state, jobs FROM {schema}.offload_ended WHERE bucket >= %(edge)s
    UNION ALL
    SELECT state, jobs FROM {schema}.offload_ended_deltas WHERE bucket >= %(edge)s
    UNION ALL
    SELECT state, count(*) FROM {schema}.offload_jobs
    WHERE state IN ('completed', 'dead') AND finished_at >= %(since)s AND finished_at < %(edge)s
    GROUP BY state
    UNION ALL
    -- A retryable job became so when its last attempt failed: the time of its last error entry.
    SELECT 'retryable', count(*) FROM {schema}.offload_jobs
    WHERE state = 'retryable'
      AND CASE WHEN jsonb_typeof(errors -> -1 -> 'at') = 'number'
               THEN (errors -> -1 ->> 'at')::double precision >= %(since)s
                    AND (errors -> -1 ->> 'at')::double precision < %(edge)s END
) AS e
GROUP BY state

-- name: job_finished_since_each
-- job_finished_since for each (i, since, edge) in one statement.
WITH s (i, since, edge) AS (
    SELECT * FROM unnest(%(i)s::int[], %(since)s::float8[], %(edge)s::float8[])
)
SELECT s.i, e.state, sum(e.jobs)::bigint
FROM s JOIN (SELECT bucket, state, jobs FROM {schema}.offload_ended
             UNION ALL
             SELECT bucket, state, jobs FROM {schema}.offload_ended_deltas) AS e
  ON e.bucket >= s.edge
GROUP BY s.i, e.state
UNION ALL
SELECT s.i, j.state, count(*)
FROM s JOIN {schema}.offload_jobs AS j
  ON j.state IN ('completed', 'dead') AND j.finished_at >= s.since AND j.finished_at < s.edge
GROUP BY s.i, j.state
UNION ALL
SELECT s.i, 'retryable', count(*)
FROM s JOIN {schema}.offload_jobs AS j
  ON j.state = 'retryable'
 AND CASE WHEN jsonb_typeof(j.errors -> -1 -> 'at') = 'number'
          THEN (j.errors -> -1 ->> 'at')::double precision >= s.since
               AND (j.errors -> -1 ->> 'at')::double precision < s.edge END
GROUP BY s.i

-- name: ended_prune
DELETE FROM {schema}.offload_ended WHERE bucket < {schema}.offload_now() - %(kept)s

-- name: leader_acquire
INSERT INTO {schema}.offload_leaders AS l (name, owner, expires_at)
VALUES (%(name)s, %(owner)s, {schema}.offload_now() + %(ttl)s)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE l.owner = excluded.owner OR l.expires_at < {schema}.offload_now()
RETURNING owner

-- name: leader_release
DELETE FROM {schema}.offload_leaders WHERE name = %(name)s AND owner = %(owner)s

-- name: worker_beat
-- The first owner named stays (offload/server: a token owns the worker records it made).
INSERT INTO {schema}.offload_workers AS w
    (id, host, pid, queues, started_at, seen_at, running, owner)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s::jsonb, %(started_at)s, {schema}.offload_now(),
        %(running)s, %(owner)s)
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, running = excluded.running,
                               owner = coalesce(w.owner, excluded.owner)

-- name: worker_owner
SELECT owner FROM {schema}.offload_workers WHERE id = %(id)s

-- name: worker_remove
DELETE FROM {schema}.offload_workers WHERE id = %(id)s

-- name: worker_list
SELECT id, host, pid, queues, started_at, seen_at, running FROM {schema}.offload_workers
WHERE seen_at >= {schema}.offload_now() - %(seen_within)s
ORDER BY started_at

-- name: cron_last_tick
SELECT last_tick FROM {schema}.offload_cron WHERE name = %(name)s

-- name: cron_advance
INSERT INTO {schema}.offload_cron AS c (name, last_tick) VALUES (%(name)s, %(tick)s)
ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick
WHERE c.last_tick < excluded.last_tick
RETURNING name

-- name: counter_add
INSERT INTO {schema}.offload_counters AS c (name, value) VALUES (%(name)s, %(amount)s)
ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value

-- name: counters
SELECT name, value FROM {schema}.offload_counters ORDER BY name
