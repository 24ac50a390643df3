-- Named queries of the SQLite engine for the dispatch policy: fair-queuing tags, limits per
-- key and SLO attainment (offload/store/sqlite/_dispatch.py, offload/dispatch/). Times are
-- float seconds since the epoch bound by the engine from its clock.

-- name: flow_read
-- A lane's stored clock, a flow's finish tag and the start tag of the lane's head (the job a
-- claim takes next: offload_lane_heads); NULLs where there is none (no lane row yet: the
-- lane has no tagged job either).
SELECT v.clock, f.finish, v.head
FROM (SELECT 1) AS one
LEFT JOIN offload_lane_heads AS v ON v.queue = :queue AND v.priority = :priority
LEFT JOIN offload_flows AS f
       ON f.queue = :queue AND f.priority = :priority AND f.kind = :kind AND f.tenant = :tenant

-- name: lane_ensure
INSERT INTO offload_lanes (queue, priority, clock) VALUES (?, ?, 0)
ON CONFLICT (queue, priority) DO NOTHING

-- name: flow_set
INSERT INTO offload_flows (queue, priority, kind, tenant, clock, added, finish)
VALUES (:queue, :priority, :kind, :tenant, :clock, :added, :finish)
ON CONFLICT (queue, priority, kind, tenant) DO UPDATE
SET clock = excluded.clock, added = excluded.added, finish = excluded.finish

-- name: lane_advance
-- A claim moves its lane's clock up to the largest start tag it took (never back). Lanes are
-- made by the first insert into them.
UPDATE offload_lanes SET clock = ?3 WHERE queue = ?1 AND priority = ?2 AND clock < ?3

-- name: flow_prune
-- A flow whose finish tag its lane's clock has passed is the same as no flow at all.
DELETE FROM offload_flows
WHERE finish <= (SELECT l.clock FROM offload_lanes AS l
                 WHERE l.queue = offload_flows.queue AND l.priority = offload_flows.priority)

-- name: job_promote_select
-- Due scheduled and retryable jobs, oldest first; scheduled ones get their tags now.
SELECT id, state, queue, priority, kind, tenant, coalesce(stride, 1), slo, scheduled_at
FROM offload_jobs
WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= ?
ORDER BY scheduled_at
LIMIT 5000

-- name: job_promote_tagged
-- A scheduled job that became due, with its start tag (its order key follows from it).
UPDATE offload_jobs SET state = 'available', start_tag = ?
WHERE id = ? AND state = 'scheduled'

-- name: job_promote_ids
-- Retryable jobs keep the place they had (they already waited their turn once), or take the
-- lane's head's when theirs is behind it, so that the head never goes back in virtual time.
UPDATE offload_jobs
SET state = 'available',
    start_tag = max(coalesce(start_tag, 0), coalesce((
        SELECT v.head FROM offload_lane_heads AS v
        WHERE v.queue = offload_jobs.queue AND v.priority = offload_jobs.priority), 0))
WHERE id IN (SELECT value FROM json_each(?)) AND +state = 'retryable'

-- name: job_claim_page
-- The next candidates of a queue after a position in claim order, without saturated keys.
SELECT id, queue, priority, order_key, limit_key FROM offload_jobs
WHERE state = 'available' AND queue = :queue
  AND (priority < :priority
       OR (priority = :priority
           AND (order_key > :order_key OR (order_key = :order_key AND id > :id))))
  AND (limit_key IS NULL OR limit_key NOT IN (SELECT value FROM json_each(:excluded)))
ORDER BY priority DESC, order_key, id
LIMIT :n

-- name: limit_get
SELECT key, concurrency, rate, period, burst, fifo, adapt_target, adapt_value, tokens,
       refilled_at
FROM offload_limits WHERE key = ?

-- name: limit_running
SELECT count(*) FROM offload_jobs INDEXED BY offload_jobs_limit
WHERE limit_key IS NOT NULL AND state IN ('available', 'running', 'retryable') AND limit_key = ? AND state = 'running'

-- name: limit_head
-- The first :n unfinished (available, running, retryable) jobs of a FIFO key by id: one range
-- scan of the limit index per state.
SELECT id, state FROM (
    SELECT * FROM (SELECT id, state FROM offload_jobs INDEXED BY offload_jobs_limit
                   WHERE limit_key IS NOT NULL AND state IN ('available', 'running', 'retryable')
                     AND limit_key = :key AND state = 'available' ORDER BY id LIMIT :n)
    UNION ALL
    SELECT * FROM (SELECT id, state FROM offload_jobs INDEXED BY offload_jobs_limit
                   WHERE limit_key IS NOT NULL AND state IN ('available', 'running', 'retryable')
                     AND limit_key = :key AND state = 'running' ORDER BY id LIMIT :n)
    UNION ALL
    SELECT * FROM (SELECT id, state FROM offload_jobs INDEXED BY offload_jobs_limit
                   WHERE limit_key IS NOT NULL AND state IN ('available', 'running', 'retryable')
                     AND limit_key = :key AND state = 'retryable' ORDER BY id LIMIT :n)
)
ORDER BY id
LIMIT :n

-- name: limit_take
UPDATE offload_limits SET tokens = ?, refilled_at = ? WHERE key = ?

-- name: limit_declare
-- A key's declaration from an enqueue: a new key starts with a full bucket and its declared
-- value; a key declared otherwise than before takes the new numbers, keeping its adaptive value
-- (within the new floor and ceiling) and its tokens (within the new burst).
INSERT INTO offload_limits (key, concurrency, rate, period, burst, fifo, adapt_target, adapt_min,
                            adapt_max, adapt_step, adapt_factor, adapt_cooldown, adapt_value,
                            tokens, refilled_at, updated_at)
VALUES (:key, :concurrency, :rate, :period, :burst, :fifo, :adapt_target, :adapt_min,
        :adapt_max, :adapt_step, :adapt_factor, :adapt_cooldown, :adapt_value, :tokens, :now,
        :now)
ON CONFLICT (key) DO UPDATE
SET concurrency = excluded.concurrency, rate = excluded.rate, period = excluded.period,
    burst = excluded.burst, fifo = excluded.fifo, adapt_min = excluded.adapt_min,
    adapt_max = excluded.adapt_max, adapt_step = excluded.adapt_step,
    adapt_factor = excluded.adapt_factor, adapt_cooldown = excluded.adapt_cooldown,
    adapt_value = CASE
        WHEN excluded.adapt_target IS NULL THEN NULL
        WHEN offload_limits.adapt_target IS excluded.adapt_target
             AND offload_limits.adapt_value IS NOT NULL
        THEN min(max(offload_limits.adapt_value, excluded.adapt_min), excluded.adapt_max)
        ELSE excluded.adapt_value END,
    adapt_target = excluded.adapt_target,
    tokens = CASE WHEN excluded.tokens IS NULL THEN NULL
                  ELSE min(coalesce(offload_limits.tokens, excluded.tokens), excluded.tokens) END,
    refilled_at = coalesce(offload_limits.refilled_at, excluded.refilled_at),
    updated_at = excluded.updated_at
WHERE offload_limits.concurrency IS NOT excluded.concurrency
   OR offload_limits.rate IS NOT excluded.rate
   OR offload_limits.period IS NOT excluded.period
   OR offload_limits.burst IS NOT excluded.burst
   OR offload_limits.fifo IS NOT excluded.fifo
   OR offload_limits.adapt_target IS NOT excluded.adapt_target
   OR offload_limits.adapt_min IS NOT excluded.adapt_min
   OR offload_limits.adapt_max IS NOT excluded.adapt_max
   OR offload_limits.adapt_step IS NOT excluded.adapt_step
   OR offload_limits.adapt_factor IS NOT excluded.adapt_factor
   OR offload_limits.adapt_cooldown IS NOT excluded.adapt_cooldown

-- name: limit_adapt_get
SELECT adapt_target, adapt_value, adapt_min, adapt_max, adapt_step, adapt_factor,
       adapt_cooldown, adapted_at
FROM offload_limits WHERE key = ?

-- name: limit_adapt_set
UPDATE offload_limits
SET adapt_value = ?, adapted_at = ?, throttles = throttles + ?, updated_at = ?
WHERE key = ?

-- name: limit_list
SELECT l.key, l.concurrency, l.rate, l.period, l.burst, l.fifo, l.adapt_target, l.adapt_value,
       l.tokens, l.refilled_at, l.adapt_min, l.adapt_max, l.throttles, l.updated_at,
       (SELECT count(*) FROM offload_jobs AS j INDEXED BY offload_jobs_limit
        WHERE j.limit_key IS NOT NULL AND j.state IN ('available', 'running', 'retryable')
          AND j.limit_key = l.key AND j.state = 'running')
FROM offload_limits AS l
ORDER BY l.key

-- name: job_slo_attainment
-- Jobs of each kind with a deadline claimed since :since (through the partial index on
-- attempted_at): how many started by their deadline, how late the others started.
SELECT kind, count(*),
       sum(CASE WHEN attempted_at <= deadline THEN 1 ELSE 0 END),
       avg(CASE WHEN attempted_at > deadline THEN attempted_at - deadline END),
       max(CASE WHEN attempted_at > deadline THEN attempted_at - deadline END)
FROM offload_jobs
WHERE deadline IS NOT NULL AND attempted_at >= ?
GROUP BY kind
ORDER BY kind

-- name: limit_prune
-- Keys idle since before the given time that no unfinished job names. A job of such a key
-- inserted later declares it again (its tokens and adapted value start afresh).
DELETE FROM offload_limits
WHERE max(updated_at, coalesce(refilled_at, 0), coalesce(adapted_at, 0)) < ?
  AND NOT EXISTS (SELECT 1 FROM offload_jobs AS j INDEXED BY offload_jobs_limit
                  WHERE j.limit_key IS NOT NULL
                    AND j.state IN ('available', 'running', 'retryable')
                    AND j.limit_key = offload_limits.key)
  AND NOT EXISTS (SELECT 1 FROM offload_jobs AS j
                  WHERE j.state = 'scheduled' AND j.limit_key = offload_limits.key)
