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

-- name: listen
LISTEN {channel}

-- name: job_insert
-- Ids are taken from the sequence in input order before inserting, so that the outcome of
-- every input row (inserted, or skipped as a duplicate of a unique key) maps back to it.
WITH input AS MATERIALIZED (
    SELECT nextval('{schema}.offload_jobs_id_seq') AS id, t.*,
           coalesce(t.at, {schema}.offload_now() + t.delay) AS run_at
    FROM unnest(%(kind)s::text[], %(queue)s::text[], %(args)s::text[], %(meta)s::text[],
                %(tenant)s::text[], %(priority)s::integer[], %(max_attempts)s::integer[],
                %(delivery)s::text[], %(timeout)s::double precision[],
                %(at)s::double precision[], %(delay)s::double precision[],
                %(unique_key)s::text[], %(result_ttl)s::double precision[])
         WITH ORDINALITY AS t(kind, queue, args, meta, tenant, priority, max_attempts, delivery,
                              timeout, at, delay, unique_key, result_ttl, ord)
    ORDER BY t.ord
),
ins AS (
    INSERT INTO {schema}.offload_jobs (id, kind, queue, args, meta, tenant, state, priority,
                                       max_attempts, delivery, timeout, scheduled_at,
                                       unique_key, result_ttl, inserted_at)
    SELECT id, kind, queue, args::jsonb, meta::jsonb, tenant,
           CASE WHEN run_at <= {schema}.offload_now() THEN 'available' ELSE 'scheduled' END,
           priority, max_attempts, delivery, timeout, run_at, unique_key, result_ttl,
           {schema}.offload_now()
    FROM input
    ORDER BY ord
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id, queue, state
)
SELECT input.id, ins.id IS NOT NULL,
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM ins WHERE state = 'available') AS q)
FROM input LEFT JOIN ins ON ins.id = input.id
ORDER BY input.ord

-- name: job_ids_by_unique
SELECT unique_key, id FROM {schema}.offload_jobs WHERE unique_key = ANY(%(keys)s::text[])

-- name: job_claim
-- The best `limit` available jobs of each queue come from one index range scan each, locked
-- with SKIP LOCKED so that concurrent claims pass each other; the best `limit` of those win.
WITH picked AS MATERIALIZED (
    SELECT c.id
    FROM unnest(%(queues)s::text[]) AS q(queue)
    CROSS JOIN LATERAL (
        SELECT id, priority, scheduled_at FROM {schema}.offload_jobs
        WHERE state = 'available' AND queue = q.queue
        ORDER BY priority DESC, scheduled_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.priority DESC, c.scheduled_at, c.id
    LIMIT %(limit)s
)
UPDATE {schema}.offload_jobs AS j
SET state = 'running', attempt = j.attempt + 1, lease_owner = %(worker_id)s,
    lease_token = %(token)s, lease_expires_at = {schema}.offload_now() + %(lease_seconds)s,
    attempted_at = {schema}.offload_now()
FROM picked
WHERE j.id = picked.id AND j.state = 'available'
RETURNING j.id, j.kind, j.queue, j.args, j.meta, j.attempt, j.max_attempts, j.delivery,
          j.timeout, j.lease_token, j.result_ttl, j.priority, j.scheduled_at

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
    RETURNING j.id
),
stale AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT 'stale_acks', %(n)s::bigint - count(*) FROM done
    HAVING %(n)s::bigint - count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT count(*) FROM done

-- name: job_fail
-- `retry_in` NULL makes the job dead; otherwise it is retryable after that many seconds.
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(errors)s::text[],
                         %(tracebacks)s::text[], %(retry_in)s::double precision[])
        AS t(id, token, error, traceback, retry_in)
),
locked AS MATERIALIZED (
    SELECT j.id, input.error, input.traceback, input.retry_in FROM {schema}.offload_jobs AS j
    JOIN input ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = CASE WHEN f.retry_in IS NULL THEN 'dead' ELSE 'retryable' END,
        scheduled_at = CASE WHEN f.retry_in IS NULL THEN j.scheduled_at
                            ELSE {schema}.offload_now() + f.retry_in END,
        finished_at = CASE WHEN f.retry_in IS NULL THEN {schema}.offload_now()
                           ELSE j.finished_at END,
        lease_owner = NULL, lease_expires_at = NULL,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'at', {schema}.offload_now(), 'error', f.error,
            'traceback', f.traceback, 'kind', 'error'))
    FROM locked AS f
    WHERE j.id = f.id
    RETURNING j.id
),
stale AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT 'stale_acks', %(n)s::bigint - count(*) FROM done
    HAVING %(n)s::bigint - count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT count(*) FROM done

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
        lease_expires_at = NULL, scheduled_at = {schema}.offload_now()
    FROM (SELECT DISTINCT id FROM locked) AS locked
    WHERE j.id = locked.id
    RETURNING j.queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue)) FROM (SELECT DISTINCT queue FROM done) AS q)

-- name: job_rescue_expired
-- At-most-once jobs, and jobs that crashed their worker `max_crashes` times, end dead; the
-- others go back to available without counting the attempt. Crashes are counted apart.
WITH expired AS MATERIALIZED (
    SELECT id,
           CASE WHEN delivery = 'at_most_once' THEN 'abandoned'
                WHEN crashes + 1 >= %(max_crashes)s THEN
                    'abandoned: its worker was lost ' || (crashes + 1)::text
                    || ' times while running it (a job that crashes its worker is stopped here)'
           END AS dead_reason
    FROM {schema}.offload_jobs
    WHERE state = 'running' AND lease_expires_at < {schema}.offload_now()
    ORDER BY lease_expires_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = CASE WHEN e.dead_reason IS NULL THEN 'available' ELSE 'dead' END,
        attempt = CASE WHEN e.dead_reason IS NULL THEN greatest(j.attempt - 1, 0)
                       ELSE j.attempt END,
        crashes = j.crashes + 1,
        scheduled_at = CASE WHEN e.dead_reason IS NULL THEN {schema}.offload_now()
                            ELSE j.scheduled_at END,
        finished_at = CASE WHEN e.dead_reason IS NULL THEN j.finished_at
                           ELSE {schema}.offload_now() END,
        lease_owner = NULL, lease_expires_at = NULL,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'at', {schema}.offload_now(),
            'error', coalesce(e.dead_reason, 'worker lost: lease expired'),
            'traceback', '', 'kind', 'crash'))
    FROM expired AS e
    WHERE j.id = e.id AND j.state = 'running'
    RETURNING j.state, j.queue
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
        FROM (SELECT DISTINCT queue FROM done WHERE state = 'available') AS q)

-- name: job_promote_due
WITH due AS MATERIALIZED (
    SELECT id FROM {schema}.offload_jobs
    WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= {schema}.offload_now()
    ORDER BY scheduled_at
    LIMIT 5000
    FOR UPDATE SKIP LOCKED
),
done AS (
    UPDATE {schema}.offload_jobs AS j SET state = 'available'
    FROM due
    WHERE j.id = due.id AND j.state IN ('scheduled', 'retryable')
    RETURNING j.queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify(%(channel)s, q.queue)) FROM (SELECT DISTINCT queue FROM done) AS q)

-- name: job_get
SELECT id, kind, queue, args, meta, tenant, state, priority, attempt, max_attempts, crashes,
       delivery, timeout, errors, scheduled_at, unique_key, lease_owner, lease_token,
       lease_expires_at, result, result_ttl, inserted_at, attempted_at, finished_at
FROM {schema}.offload_jobs WHERE id = %(id)s

-- name: job_list
SELECT id, kind, queue, args, meta, tenant, state, priority, attempt, max_attempts, crashes,
       delivery, timeout, errors, scheduled_at, unique_key, lease_owner, lease_token,
       lease_expires_at, result, result_ttl, inserted_at, attempted_at, finished_at
FROM {schema}.offload_jobs
WHERE (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: job_retry
WITH done AS (
    UPDATE {schema}.offload_jobs
    SET state = 'available', scheduled_at = {schema}.offload_now(), finished_at = NULL,
        result = NULL, max_attempts = greatest(max_attempts, attempt + 1)
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
WITH completed AS (
    DELETE FROM {schema}.offload_jobs
    WHERE id IN (
        SELECT id FROM {schema}.offload_jobs
        WHERE state = 'completed' AND finished_at + result_ttl < {schema}.offload_now()
        LIMIT 10000
        FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
),
final AS (
    DELETE FROM {schema}.offload_jobs
    WHERE id IN (
        SELECT id FROM {schema}.offload_jobs
        WHERE state IN ('dead', 'cancelled', 'shed')
          AND finished_at < {schema}.offload_now() - %(dead_older_than)s
        LIMIT 10000
        FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT (SELECT count(*) FROM completed) + (SELECT count(*) FROM final)

-- name: job_counts
SELECT queue, state, count(*) FROM {schema}.offload_jobs
GROUP BY queue, state ORDER BY queue, state

-- name: job_finished_since
SELECT state, count(*) FROM {schema}.offload_jobs
WHERE state IN ('completed', 'dead') AND finished_at >= %(since)s
GROUP BY state
UNION ALL
-- A retryable job became so when its last attempt failed: the time of its last error entry.
SELECT 'retryable', count(*) FROM {schema}.offload_jobs
WHERE state = 'retryable' AND (errors -> -1 ->> 'at')::double precision >= %(since)s

-- name: leader_acquire
INSERT INTO {schema}.offload_leaders AS l (name, owner, expires_at)
VALUES (%(name)s, %(owner)s, {schema}.offload_now() + %(ttl)s)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE l.owner = excluded.owner OR l.expires_at < {schema}.offload_now()
RETURNING owner

-- name: leader_release
DELETE FROM {schema}.offload_leaders WHERE name = %(name)s AND owner = %(owner)s

-- name: worker_beat
INSERT INTO {schema}.offload_workers AS w (id, host, pid, queues, started_at, seen_at, running)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s::jsonb, %(started_at)s, {schema}.offload_now(),
        %(running)s)
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, running = excluded.running

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
