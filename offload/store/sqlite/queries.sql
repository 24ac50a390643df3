-- Named queries of the SQLite engine. Times are float seconds since the epoch, bound by the
-- engine from its clock; JSON columns hold text.

-- name: migrations_table
CREATE TABLE IF NOT EXISTS offload_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)

-- name: migrations_applied
SELECT version FROM offload_migrations ORDER BY version

-- name: migration_record
INSERT INTO offload_migrations (version, name, applied_at) VALUES (?, ?, ?)

-- name: job_insert
-- One job, which may hold a unique key taken already (then it returns no row).
INSERT INTO offload_jobs (kind, queue, args, meta, tenant, state, priority, max_attempts,
                          delivery, timeout, scheduled_at, unique_key, result_ttl, inserted_at,
                          start_tag, slo, stride, deadline, limit_key, version)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id

-- name: job_insert_rows
-- Jobs none of which holds a unique key, run by executemany; their ids are consecutive and
-- end at `job_last_id` (AUTOINCREMENT, under the transaction's write lock).
INSERT INTO offload_jobs (kind, queue, args, meta, tenant, state, priority, max_attempts,
                          delivery, timeout, scheduled_at, unique_key, result_ttl, inserted_at,
                          start_tag, slo, stride, deadline, limit_key, version)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: job_last_id
SELECT last_insert_rowid()

-- name: count_batch_begin
-- The rows of one executemany are counted together at its end (0019_count_batches.sql).
INSERT INTO offload_count_batch (id) VALUES (1)

-- name: count_batch_end
DELETE FROM offload_count_batch

-- name: count_batch_add
-- The jobs inserted after the given id (the batch, under this transaction's write lock), counted.
INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
SELECT queue, kind, state, count(*), sum(attempt) FROM offload_jobs NOT INDEXED
WHERE id > ?1  -- a range of rowids: no index, which would read every job
GROUP BY queue, kind, state
ON CONFLICT (queue, kind, state)
DO UPDATE SET jobs = jobs + excluded.jobs, attempts = attempts + excluded.attempts

-- name: job_max_id
SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'offload_jobs'), 0)

-- name: job_id_by_unique
SELECT id FROM offload_jobs WHERE unique_key = ?

-- name: job_claim_candidates
-- Read from the claim index alone (limit_key is its last column).
SELECT id, queue, priority, order_key, limit_key FROM offload_jobs
WHERE state = 'available' AND queue = ?
ORDER BY priority DESC, order_key, id
LIMIT ?

-- name: job_claim_any
SELECT 1 FROM offload_jobs WHERE state = 'available' AND queue = ? LIMIT 1

-- name: job_claim_update
-- `+state` keeps the planner on the rowid look-ups of the id list: with an index on state it
-- would otherwise scan every available job to test each against the list. Every job's start
-- is recorded now (held_token NULL) when ?7 is 1 (a claimer that runs what it takes); else only
-- that of the at-most-once jobs among ?6, those that go straight into free slots (isolated jobs
-- excepted: they record their start before they begin), and the others are held: a worker
-- records their start once they have begun.
UPDATE offload_jobs
SET state = 'running', attempt = attempt + 1, lease_owner = ?1, lease_token = ?2,
    lease_expires_at = ?3, attempted_at = ?4,
    held_token = CASE WHEN ?7 OR (delivery <> 'at_least_once' AND isolated = 0
                                  AND id IN (SELECT value FROM json_each(?6)))
                      THEN NULL ELSE ?2 END
WHERE id IN (SELECT value FROM json_each(?5)) AND +state = 'available'
RETURNING id, kind, queue, args, meta, attempt, max_attempts, delivery, timeout, lease_token,
          result_ttl, priority, order_key, limit_key, start_tag, tenant,
          expires_at, held_token IS NULL, isolated, version

-- name: job_claim_raw
-- The rows a claim just took (its ids and lease token), as `job_claim_update` returns them but
-- with the text columns that may hold bytes that are not UTF-8 as blobs: sqlite3 refuses to
-- fetch such TEXT, and the claim must still hand out every other job (store/_codec.py).
SELECT id, CAST(kind AS BLOB), queue, CAST(args AS BLOB), CAST(meta AS BLOB), attempt,
       max_attempts, CAST(delivery AS BLOB), timeout, lease_token, result_ttl, priority,
       order_key, CAST(limit_key AS BLOB), start_tag, CAST(tenant AS BLOB),
       expires_at, held_token IS NULL, isolated, version
FROM offload_jobs
WHERE id IN (SELECT value FROM json_each(?)) AND lease_token = ? AND +state = 'running'

-- name: job_dead_undecodable
-- A claimed job whose stored data cannot be decoded ends dead in its claim's transaction,
-- fenced by its lease token, its stored data left as it was for inspection. An errors column
-- that is not a JSON array is kept as the text of a first entry instead of failing the whole
-- transaction (the same guard is in every statement that appends an error entry).
UPDATE offload_jobs
SET state = 'dead', finished_at = ?1, lease_owner = NULL, lease_expires_at = NULL,
    errors = json_insert(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
             THEN errors
             ELSE json_array(json_object(
                 'error', 'earlier error entries could not be decoded; raw holds their stored text',
                 'raw', CAST(substr(errors, 1, 1000) AS TEXT), 'kind', 'undecodable')) END,
        '$[#]', json_set(json(?2), '$.attempt', attempt))
WHERE id = ?3 AND lease_token = ?4 AND state = 'running'

-- name: job_complete
-- One statement per batch: ?2 is a JSON array of [id, lease token, result as JSON text or
-- null]. SQLite walks the array and finds each job by rowid (`+state` keeps the state index
-- out of the choice); a job whose token is stale or that is no longer running is left alone,
-- and the engine counts it as a stale acknowledgement.
UPDATE offload_jobs
SET state = 'completed', result = a.result, finished_at = ?1, lease_owner = NULL,
    lease_expires_at = NULL
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token,
             json_extract(value, '$[2]') AS result
      FROM json_each(?2)) AS a
WHERE offload_jobs.id = a.id AND offload_jobs.lease_token = a.token
  AND +offload_jobs.state = 'running'

-- name: job_fail
-- One statement per batch: ?2 is a JSON array of [id, lease token, retry at or null, error
-- entry as JSON text, throttled 0/1]. No retry time makes the job dead; a retry is due again
-- at its new time, and so is its deadline. A throttled attempt is given back.
-- A job keeps the error entries of its first 3 and its last 5 attempts (store/_codec.py's
-- ERRORS_FIRST and ERRORS_LAST): the ones between are counted in one entry of kind 'omitted'
-- at place 3 (`omitted`: how many; `attempt` and `at`: the latest left out), so that a job
-- failing a thousand times does not grow without bound.
UPDATE offload_jobs
SET state = CASE WHEN a.retry_at IS NULL THEN 'dead' ELSE 'retryable' END,
    attempt = CASE WHEN a.throttled THEN max(offload_jobs.attempt - 1, 0)
                   ELSE offload_jobs.attempt END,
    scheduled_at = coalesce(a.retry_at, offload_jobs.scheduled_at),
    deadline = CASE WHEN a.retry_at IS NULL THEN offload_jobs.deadline
                    ELSE a.retry_at + offload_jobs.slo END,
    finished_at = CASE WHEN a.retry_at IS NULL THEN ?1 ELSE offload_jobs.finished_at END,
    lease_owner = NULL, lease_expires_at = NULL,
    errors = (
        SELECT CASE WHEN x.n - 3 - x.marked <= 5 THEN x.arr ELSE (
            SELECT json_group_array(json(e.v)) FROM (
                SELECT key AS o, value AS v FROM json_each(x.arr) WHERE key < 3
                UNION ALL
                SELECT 2.5, json_object(
                    'attempt', json_extract(x.arr, '$[' || (x.n - 6) || '].attempt'),
                    'at', json_extract(x.arr, '$[' || (x.n - 6) || '].at'),
                    'error', x.left_out || ' earlier errors left out: a job keeps those of its '
                             || 'first 3 and its last 5 attempts',
                    'traceback', '', 'kind', 'omitted', 'omitted', x.left_out)
                UNION ALL
                SELECT key, value FROM json_each(x.arr) WHERE key >= x.n - 5
                ORDER BY o) AS e) END
        FROM (SELECT y.arr, y.n, y.marked,
                     y.n - 8 - y.marked + CASE WHEN y.marked
                         THEN coalesce(json_extract(y.arr, '$[3].omitted'), 0) ELSE 0 END
                     AS left_out
              FROM (SELECT z.arr, json_array_length(z.arr) AS n,
                           coalesce(json_extract(z.arr, '$[3].kind') = 'omitted', 0) AS marked
                    FROM (SELECT json_insert(
                              CASE WHEN json_valid(offload_jobs.errors)
                                        AND json_type(offload_jobs.errors) = 'array'
                                   THEN offload_jobs.errors
                                   ELSE json_array(json_object(
                                       'error', 'earlier error entries could not be decoded; '
                                                || 'raw holds their stored text',
                                       'raw', CAST(substr(offload_jobs.errors, 1, 1000) AS TEXT),
                                       'kind', 'undecodable')) END,
                              '$[#]', json_set(json(a.entry), '$.attempt', offload_jobs.attempt))
                          AS arr) AS z) AS y) AS x)
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token,
             json_extract(value, '$[2]') AS retry_at, json_extract(value, '$[3]') AS entry,
             coalesce(json_extract(value, '$[4]'), 0) AS throttled
      FROM json_each(?2)) AS a
WHERE offload_jobs.id = a.id AND offload_jobs.lease_token = a.token
  AND +offload_jobs.state = 'running'

-- name: job_heartbeat
-- ?2: a JSON array of [id, lease token]; returns the jobs whose lease was extended.
UPDATE offload_jobs SET lease_expires_at = ?1
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token
      FROM json_each(?2)) AS a
WHERE offload_jobs.id = a.id AND offload_jobs.lease_token = a.token
  AND +offload_jobs.state = 'running'
RETURNING offload_jobs.id

-- name: job_start
-- ?1: a JSON array of [id, lease token] of held jobs that have started; returns those whose
-- start was recorded (the others' lease was lost).
UPDATE offload_jobs SET held_token = NULL
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token
      FROM json_each(?1)) AS a
WHERE offload_jobs.id = a.id AND offload_jobs.lease_token = a.token
  AND +offload_jobs.state = 'running'
RETURNING offload_jobs.id

-- name: job_release
-- A job going back to available keeps its place in virtual time, or takes its lane's head's
-- when that is ahead, so that the head never goes back (offload/dispatch/_ordering.py); the
-- same in job_rescue_requeue and job_retry.
UPDATE offload_jobs
SET state = 'available', attempt = max(attempt - 1, 0), lease_owner = NULL,
    lease_expires_at = NULL, scheduled_at = ?,
    start_tag = max(coalesce(start_tag, 0), coalesce((
        SELECT v.head FROM offload_lane_heads AS v
        WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0))
WHERE id = ? AND lease_token = ? AND state = 'running'

-- name: job_iteration_state
-- What a run of an iteration job resumes from (docs/long-jobs.md), fenced by its lease token.
SELECT CAST(cursor AS BLOB), progress_done, progress_total, stop_request
FROM offload_jobs WHERE id = ? AND lease_token = ? AND state = 'running'

-- name: job_checkpoint
-- ?2: a JSON array of [id, lease token, has cursor 0/1, cursor as JSON text or null, done,
-- total, seconds remaining]; a done or total of null keeps the stored one. Returns the stop
-- request of each job written (the others' lease was lost).
UPDATE offload_jobs
SET cursor = CASE WHEN a.has THEN a.cursor ELSE offload_jobs.cursor END,
    progress_done = coalesce(a.done, offload_jobs.progress_done),
    progress_total = coalesce(a.total, offload_jobs.progress_total),
    progress_eta = ?1 + a.remaining
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token,
             json_extract(value, '$[2]') AS has, json_extract(value, '$[3]') AS cursor,
             json_extract(value, '$[4]') AS done, json_extract(value, '$[5]') AS total,
             json_extract(value, '$[6]') AS remaining
      FROM json_each(?2)) AS a
WHERE offload_jobs.id = a.id AND offload_jobs.lease_token = a.token
  AND +offload_jobs.state = 'running'
RETURNING offload_jobs.id, offload_jobs.stop_request

-- name: job_put_back
-- A running job stopped early goes back with its checkpoint and its attempt given back, its
-- stop request cleared: available at once (keeping its place in virtual time, as job_release
-- does), or scheduled after a delay (tagged again when due, like a new job).
UPDATE offload_jobs
SET state = CASE WHEN :delay > 0 THEN 'scheduled' ELSE 'available' END,
    attempt = max(attempt - 1, 0), lease_owner = NULL, lease_expires_at = NULL,
    scheduled_at = :now + :delay,
    deadline = CASE WHEN :delay > 0 THEN :now + :delay + slo ELSE deadline END,
    stop_request = NULL,
    cursor = CASE WHEN :has THEN :cursor ELSE cursor END,
    progress_done = coalesce(:done, progress_done),
    progress_total = coalesce(:total, progress_total),
    progress_eta = NULL,
    start_tag = CASE WHEN :delay > 0 THEN start_tag ELSE
        max(coalesce(start_tag, 0), coalesce((
            SELECT v.head FROM offload_lane_heads AS v
            WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0)) END
WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: job_cancel_running
-- A running job whose cancel request it honoured ends cancelled, its last checkpoint stored.
UPDATE offload_jobs
SET state = 'cancelled', finished_at = :now, lease_owner = NULL, lease_expires_at = NULL,
    stop_request = NULL,
    cursor = CASE WHEN :has THEN :cursor ELSE cursor END,
    progress_done = coalesce(:done, progress_done),
    progress_total = coalesce(:total, progress_total),
    progress_eta = NULL
WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: job_stop_requests
-- ?1: a JSON array of [id, lease token]; one look-up by rowid each.
SELECT j.id, j.stop_request
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token
      FROM json_each(?1)) AS a
JOIN offload_jobs AS j ON j.id = a.id
WHERE j.lease_token = a.token AND +j.state = 'running' AND j.stop_request IS NOT NULL

-- name: job_request_stop
-- A cancel request wins over a pause request, never the other way round.
UPDATE offload_jobs
SET stop_request = CASE WHEN stop_request = 'cancel' THEN 'cancel' ELSE ?2 END
WHERE id = ?1 AND state = 'running'

-- name: job_rescue_select
-- The last column says whether the job was held unstarted by its lost worker (held_token
-- stands for the current claim only when it equals lease_token).
SELECT id, delivery, crashes, attempt, coalesce(held_token = lease_token, 0)
FROM offload_jobs INDEXED BY offload_jobs_lease
WHERE state = 'running' AND lease_expires_at < ?
ORDER BY lease_expires_at
LIMIT 1000

-- name: job_rescue_unstarted
-- A held job whose start was never recorded goes back without a crash counted or an error
-- entry; at-least-once, it runs isolated from then on (it may have started in the moments
-- before its worker's last cycle).
UPDATE offload_jobs
SET state = 'available', attempt = max(attempt - 1, 0), lease_owner = NULL,
    lease_expires_at = NULL, scheduled_at = ?,
    isolated = CASE WHEN delivery = 'at_least_once' THEN 1 ELSE isolated END,
    start_tag = max(coalesce(start_tag, 0), coalesce((
        SELECT v.head FROM offload_lane_heads AS v
        WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0))
WHERE id = ? AND state = 'running'

-- name: job_rescue_requeue
UPDATE offload_jobs
SET state = 'available', attempt = max(attempt - 1, 0), crashes = crashes + 1, isolated = 1,
    lease_owner = NULL, lease_expires_at = NULL, scheduled_at = ?,
    errors = json_insert(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
             THEN errors
             ELSE json_array(json_object(
                 'error', 'earlier error entries could not be decoded; raw holds their stored text',
                 'raw', CAST(substr(errors, 1, 1000) AS TEXT), 'kind', 'undecodable')) END,
        '$[#]', json_set(json(?), '$.attempt', attempt)),
    start_tag = max(coalesce(start_tag, 0), coalesce((
        SELECT v.head FROM offload_lane_heads AS v
        WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0))
WHERE id = ? AND state = 'running'

-- name: job_rescue_dead
UPDATE offload_jobs
SET state = 'dead', crashes = crashes + 1, finished_at = ?, lease_owner = NULL,
    lease_expires_at = NULL,
    errors = json_insert(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
             THEN errors
             ELSE json_array(json_object(
                 'error', 'earlier error entries could not be decoded; raw holds their stored text',
                 'raw', CAST(substr(errors, 1, 1000) AS TEXT), 'kind', 'undecodable')) END,
        '$[#]', json_set(json(?), '$.attempt', attempt))
WHERE id = ? AND state = 'running'

-- name: job_next_due
SELECT min(scheduled_at) FROM offload_jobs INDEXED BY offload_jobs_due
WHERE state IN ('scheduled', 'retryable')

-- name: job_get
-- Text columns come as blobs, decoded by the engine (store/_codec.py): a field that cannot be
-- decoded (bytes that are not UTF-8, text that is not JSON) must not make the row unreadable.
SELECT id, CAST(kind AS BLOB), CAST(queue AS BLOB), CAST(args AS BLOB), CAST(meta AS BLOB),
       CAST(tenant AS BLOB), CAST(state AS BLOB), priority, attempt, max_attempts, crashes,
       CAST(delivery AS BLOB), timeout, CAST(errors AS BLOB), scheduled_at,
       CAST(unique_key AS BLOB), CAST(lease_owner AS BLOB), lease_token, lease_expires_at,
       CAST(result AS BLOB), result_ttl, inserted_at, attempted_at, finished_at, order_key,
       deadline, CAST(limit_key AS BLOB), expires_at, CAST(cursor AS BLOB), progress_done,
       progress_total, progress_eta, stop_request, version, parent_id, root_id
FROM offload_jobs WHERE id = ?

-- name: job_list
-- Text columns as blobs, as in job_get.
SELECT id, CAST(kind AS BLOB), CAST(queue AS BLOB), CAST(args AS BLOB), CAST(meta AS BLOB),
       CAST(tenant AS BLOB), CAST(state AS BLOB), priority, attempt, max_attempts, crashes,
       CAST(delivery AS BLOB), timeout, CAST(errors AS BLOB), scheduled_at,
       CAST(unique_key AS BLOB), CAST(lease_owner AS BLOB), lease_token, lease_expires_at,
       CAST(result AS BLOB), result_ttl, inserted_at, attempted_at, finished_at, order_key,
       deadline, CAST(limit_key AS BLOB), expires_at, CAST(cursor AS BLOB), progress_done,
       progress_total, progress_eta, stop_request, version, parent_id, root_id
FROM offload_jobs
WHERE (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queue IS NULL OR queue = :queue)
  AND (:kind IS NULL OR kind = :kind)
  AND (:tenants IS NULL OR tenant IN (SELECT value FROM json_each(:tenants)))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: jobs_in_states
-- From the kept counts (0015_counts.sql): whether a listing of these states is of few rows.
SELECT coalesce(sum(jobs), 0) FROM offload_counts WHERE state IN (SELECT value FROM json_each(?))

-- name: job_retry
UPDATE offload_jobs
SET state = 'available', scheduled_at = ?1, deadline = ?1 + slo, finished_at = NULL,
    result = NULL, max_attempts = max(max_attempts, attempt + 1), stop_request = NULL,
    start_tag = max(coalesce(start_tag, 0), coalesce((
        SELECT v.head FROM offload_lane_heads AS v
        WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0))
WHERE id = ? AND state IN ('dead', 'cancelled', 'shed', 'completed', 'retryable', 'scheduled')

-- name: job_cancel
UPDATE offload_jobs SET state = 'cancelled', finished_at = ?
WHERE id = ? AND state IN ('scheduled', 'available', 'retryable')

-- name: job_prune_completed
-- Deleted rows come back so that the totals keep what they counted (_totals.py).
DELETE FROM offload_jobs
WHERE id IN (
    SELECT id FROM offload_jobs INDEXED BY offload_jobs_finished
    WHERE state IN ('completed', 'dead', 'cancelled', 'shed') AND state = 'completed' AND finished_at + result_ttl < ?
    LIMIT 10000
)
RETURNING queue, kind, state, attempt

-- name: job_prune_final
DELETE FROM offload_jobs
WHERE id IN (
    SELECT id FROM offload_jobs INDEXED BY offload_jobs_finished
    WHERE state IN ('completed', 'dead', 'cancelled', 'shed') AND state IN ('dead', 'cancelled', 'shed') AND finished_at < ?
    LIMIT 10000
)
RETURNING queue, kind, state, attempt

-- name: job_counts
-- From the kept counts (0015_counts.sql), not the job rows.
SELECT queue, state, sum(jobs) FROM offload_counts
GROUP BY queue, state HAVING sum(jobs) <> 0 ORDER BY queue, state

-- name: job_finished_since
-- Whole 10-second spans from the kept counts (0016_ended.sql); the part of the span that
-- `:since` cuts (before `:edge`, the next span's start) from the rows, exactly.
SELECT state, sum(jobs) FROM (
    SELECT state, jobs FROM offload_ended WHERE bucket >= :edge
    UNION ALL
    SELECT state, count(*) FROM offload_jobs INDEXED BY offload_jobs_finished
    WHERE state IN ('completed', 'dead', 'cancelled', 'shed') AND state IN ('completed', 'dead')
      AND finished_at >= :since AND finished_at < :edge
    GROUP BY state
    UNION ALL
    -- A retryable job became so when its last attempt failed: the time of its last error entry.
    SELECT 'retryable', count(*) FROM offload_jobs INDEXED BY offload_jobs_due
    WHERE state IN ('scheduled', 'retryable') AND state = 'retryable'
      AND CASE WHEN json_valid(errors) AND json_type(errors, '$[#-1].at') IN ('integer', 'real')
               THEN json_extract(errors, '$[#-1].at') END BETWEEN :since AND :edge - 1e-9
)
GROUP BY state

-- name: ended_prune
DELETE FROM offload_ended WHERE bucket < ?

-- name: leader_acquire
INSERT INTO offload_leaders (name, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE offload_leaders.owner = excluded.owner OR offload_leaders.expires_at < ?
RETURNING owner

-- name: leader_release
DELETE FROM offload_leaders WHERE name = ? AND owner = ?

-- name: worker_beat
-- The first owner named stays (offload/server: a token owns the worker records it made).
INSERT INTO offload_workers (id, host, pid, queues, started_at, seen_at, running, owner)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, running = excluded.running,
                               owner = coalesce(offload_workers.owner, excluded.owner)

-- name: worker_owner
SELECT owner FROM offload_workers WHERE id = ?

-- name: worker_remove
DELETE FROM offload_workers WHERE id = ?

-- name: worker_list
SELECT id, host, pid, queues, started_at, seen_at, running FROM offload_workers
WHERE seen_at >= ? ORDER BY started_at

-- name: worker_prune
DELETE FROM offload_workers WHERE seen_at < ?

-- name: cron_last_tick
SELECT last_tick FROM offload_cron WHERE name = ?

-- name: cron_advance
INSERT INTO offload_cron (name, last_tick) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick
WHERE offload_cron.last_tick < excluded.last_tick
RETURNING name

-- name: counter_add
INSERT INTO offload_counters (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = value + excluded.value

-- name: counters
SELECT name, value FROM offload_counters ORDER BY name
