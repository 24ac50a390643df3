-- Named queries of the SQLite engine for load shedding, blackhole rules and unique jobs
-- (offload/store/sqlite/_policy.py). Times are float seconds since the epoch bound by the
-- engine from its clock; JSON columns hold text.

-- name: unique_find
-- The newest job holding a uniqueness key, inserted since :since (any time when NULL) and in
-- one of :states (a JSON list).
SELECT id FROM offload_jobs
WHERE dedup_key = :key AND dedup_key IS NOT NULL
  AND state IN (SELECT value FROM json_each(:states))
  AND (:since IS NULL OR inserted_at >= :since)
ORDER BY id DESC
LIMIT 1

-- name: job_policy_apply
-- Stamp a just-inserted job with its expiry and uniqueness key; a job that matched a rule at
-- enqueue (:reason) or whose expiry has already passed is stored shed.
UPDATE offload_jobs
SET expires_at = coalesce(:expires_at, inserted_at + :expires_in),
    dedup_key = :dedup_key,
    state = CASE WHEN :reason IS NOT NULL
                   OR coalesce(:expires_at, inserted_at + :expires_in) <= :now
                 THEN 'shed' ELSE state END,
    finished_at = CASE WHEN :reason IS NOT NULL
                         OR coalesce(:expires_at, inserted_at + :expires_in) <= :now
                       THEN :now ELSE finished_at END,
    errors = CASE WHEN :reason IS NOT NULL
                    OR coalesce(:expires_at, inserted_at + :expires_in) <= :now
                  THEN json_insert(errors, '$[#]', json_object(
                      'attempt', attempt, 'at', :now, 'error', coalesce(:reason, :expired),
                      'traceback', '', 'kind', 'shed', 'rule', :rule))
                  ELSE errors END,
    meta = CASE WHEN :rule IS NULL THEN meta ELSE json_set(meta, '$.shed_rule', :rule) END
WHERE id = :id
RETURNING state

-- name: job_shed
-- Shed a claimed job instead of running it, fenced by its lease token; the attempt it was
-- claimed for is not counted.
UPDATE offload_jobs
SET state = 'shed', attempt = max(attempt - 1, 0), finished_at = :now, lease_owner = NULL,
    lease_expires_at = NULL,
    errors = json_insert(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
             THEN errors
             ELSE json_array(json_object(
                 'error', 'earlier error entries could not be decoded; raw holds their stored text',
                 'raw', CAST(substr(errors, 1, 1000) AS TEXT), 'kind', 'undecodable')) END,
        '$[#]', json_object(
            'attempt', attempt, 'at', :now, 'error', :reason, 'traceback', '', 'kind', 'shed',
            'rule', :rule)),
    meta = CASE WHEN :rule IS NULL THEN meta ELSE json_set(meta, '$.shed_rule', :rule) END
WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: job_shed_expired
-- One bounded batch, found through the partial index on expires_at.
UPDATE offload_jobs
SET state = 'shed', finished_at = :now, lease_owner = NULL, lease_expires_at = NULL,
    errors = json_insert(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
             THEN errors
             ELSE json_array(json_object(
                 'error', 'earlier error entries could not be decoded; raw holds their stored text',
                 'raw', CAST(substr(errors, 1, 1000) AS TEXT), 'kind', 'undecodable')) END,
        '$[#]', json_object(
            'attempt', attempt, 'at', :now, 'error', :reason, 'traceback', '', 'kind', 'shed',
            'rule', NULL))
WHERE id IN (
    SELECT id FROM offload_jobs INDEXED BY offload_jobs_expires
    WHERE expires_at IS NOT NULL AND state IN ('scheduled', 'available', 'retryable')
      AND expires_at <= :now
    ORDER BY expires_at
    LIMIT :limit
)

-- name: rule_add
INSERT INTO offload_rules (kind, condition, reason, created_at, expires_at)
VALUES (:kind, :condition, :reason, :now, :now + :expires_in)
RETURNING id, kind, condition, reason, created_at, expires_at

-- name: rule_list
SELECT id, kind, condition, reason, created_at, expires_at FROM offload_rules
WHERE :all OR expires_at IS NULL OR expires_at > :now
ORDER BY id

-- name: rule_remove
DELETE FROM offload_rules WHERE id = ?

-- name: job_queued_page
-- Jobs waiting to run after an id, for a blackhole rule's preview; text columns as blobs,
-- decoded by the engine (a row that cannot be decoded must not stop the page).
SELECT id, CAST(kind AS BLOB), CAST(queue AS BLOB), CAST(tenant AS BLOB), CAST(args AS BLOB),
       CAST(meta AS BLOB)
FROM offload_jobs
WHERE id > :after AND state IN ('scheduled', 'available', 'retryable')
  AND (:kind IS NULL OR kind = :kind)
ORDER BY id
LIMIT :limit

-- name: backlog_register
-- A bound shared by producers with different settings keeps the largest, so that every
-- producer's comparison stays right (counts stop at bound + 1).
INSERT INTO offload_backlog (scope, name, bound, depth, counted_at) VALUES (?, ?, ?, 0, 0)
ON CONFLICT (scope, name) DO UPDATE SET bound = max(bound, excluded.bound)

-- name: backlog_read
SELECT scope, name, bound, depth, counted_at FROM offload_backlog ORDER BY scope, name

-- name: backlog_count_queue
SELECT count(*) FROM (
    SELECT 1 FROM offload_jobs WHERE state = 'available' AND queue = ? LIMIT ?
)

-- name: backlog_count_kind
SELECT count(*) FROM (
    SELECT 1 FROM offload_jobs WHERE state = 'available' AND kind = ? LIMIT ?
)

-- name: backlog_set
UPDATE offload_backlog SET depth = ?, counted_at = ? WHERE scope = ? AND name = ?

-- name: rule_prune
-- Rules expired before the given time: nothing applies them any more.
DELETE FROM offload_rules WHERE expires_at IS NOT NULL AND expires_at < ?
