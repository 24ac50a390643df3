-- Named queries of the SQLite engine for paused queues and kinds (offload/store/sqlite/_pauses.py)
-- and the claim's variants used only while some kind is paused. Times are float seconds since
-- the epoch bound by the engine from its clock.

-- name: pause_add
-- A pause already there is kept as it was (its first author and time).
INSERT INTO offload_pauses (scope, name, paused_by, paused_at, reason)
VALUES (:scope, :name, :by, :now, :reason)
ON CONFLICT (scope, name) DO NOTHING
RETURNING scope, name, paused_by, paused_at, reason

-- name: pause_get
SELECT scope, name, paused_by, paused_at, reason FROM offload_pauses
WHERE scope = :scope AND name = :name

-- name: pause_stop_running
-- Ask the running jobs of a paused queue or kind to stop (found through the queue-state and
-- state-kind indexes).
UPDATE offload_jobs SET stop_request = 'pause'
WHERE state = 'running' AND stop_request IS NULL
  AND ((:scope = 'queue' AND queue = :name) OR (:scope = 'kind' AND kind = :name))

-- name: pause_remove
DELETE FROM offload_pauses WHERE scope = :scope AND name = :name

-- name: pause_unstop_running
-- Take back the 'pause' requests not yet acted on of running jobs of a resumed queue or kind
-- that no other pause covers.
UPDATE offload_jobs SET stop_request = NULL
WHERE state = 'running' AND stop_request = 'pause'
  AND ((:scope = 'queue' AND queue = :name) OR (:scope = 'kind' AND kind = :name))
  AND NOT EXISTS (
      SELECT 1 FROM offload_pauses AS p
      WHERE (p.scope = 'queue' AND p.name = offload_jobs.queue)
         OR (p.scope = 'kind' AND p.name = offload_jobs.kind))

-- name: pause_stop_paused
-- pause_stop_running for every pause at once.
UPDATE offload_jobs SET stop_request = 'pause'
WHERE state = 'running' AND stop_request IS NULL
  AND (queue IN (SELECT name FROM offload_pauses WHERE scope = 'queue')
       OR kind IN (SELECT name FROM offload_pauses WHERE scope = 'kind'))

-- name: pause_list
SELECT scope, name, paused_by, paused_at, reason FROM offload_pauses ORDER BY scope, name

-- name: job_claim_candidates_unpaused
-- job_claim_candidates (queries.sql) leaving out jobs of paused kinds (:kinds, a JSON list):
-- the same range scan of the claim index, with each entry's kind read from its row.
SELECT id, queue, priority, order_key, limit_key FROM offload_jobs
WHERE state = 'available' AND queue = :queue
  AND kind NOT IN (SELECT value FROM json_each(:kinds))
ORDER BY priority DESC, order_key, id
LIMIT :n

-- name: job_claim_page_unpaused
-- job_claim_page (dispatch.sql) leaving out jobs of paused kinds (:kinds, a JSON list).
SELECT id, queue, priority, order_key, limit_key FROM offload_jobs
WHERE state = 'available' AND queue = :queue
  AND (priority < :priority
       OR (priority = :priority
           AND (order_key > :order_key OR (order_key = :order_key AND id > :id))))
  AND (limit_key IS NULL OR limit_key NOT IN (SELECT value FROM json_each(:excluded)))
  AND kind NOT IN (SELECT value FROM json_each(:kinds))
ORDER BY priority DESC, order_key, id
LIMIT :n
