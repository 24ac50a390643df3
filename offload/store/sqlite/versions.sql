-- Named queries of the SQLite engine for argument versions (offload/store/_versions.py,
-- offload/store/sqlite/_versions.py). Times are float seconds since the epoch.

-- name: job_versions
-- Jobs per kind, version and state among :states (a JSON array), of one :kind when given.
SELECT kind, version, state, count(*) FROM offload_jobs
WHERE state IN (SELECT value FROM json_each(:states)) AND (:kind IS NULL OR kind = :kind)
GROUP BY kind, version, state
ORDER BY kind, version, state

-- name: job_refuse
-- A running job whose arguments are newer than its worker knows goes back as a throttled one
-- does (retryable at :retry_at, keeping its place, its attempt given back), fenced by its lease
-- token. Its meta keeps the time of its first refusal (its grace period starts then; a meta
-- that is no JSON object is left alone), and its error list holds one entry per stretch of
-- refusals: the latest replaces the one before it when that is a refusal too.
UPDATE offload_jobs
SET state = 'retryable', attempt = max(attempt - 1, 0), scheduled_at = :retry_at,
    deadline = :retry_at + slo, lease_owner = NULL, lease_expires_at = NULL,
    meta = CASE WHEN json_valid(meta) AND json_type(meta) = 'object'
                THEN json_set(meta, '$."offload.version_wait_since"',
                              coalesce(json_extract(meta, '$."offload.version_wait_since"'),
                                       :now))
                ELSE meta END,
    errors = CASE
        WHEN NOT (json_valid(errors) AND json_type(errors) = 'array')
        THEN json_array(json_set(json(:entry), '$.attempt', attempt))
        WHEN json_extract(errors, '$[#-1].kind') = 'version'
        THEN json_set(errors, '$[#-1]', json_set(json(:entry), '$.attempt', attempt))
        ELSE json_insert(errors, '$[#]', json_set(json(:entry), '$.attempt', attempt)) END
WHERE id = :id AND lease_token = :token AND state = 'running'
