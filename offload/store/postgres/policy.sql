-- Named queries of the PostgreSQL engine for load shedding, blackhole rules and unique jobs
-- (offload/store/postgres/_policy.py). `{schema}` is the store's schema; times come from
-- `offload_now()`; batches are bound as arrays and unnested.

-- name: unique_lock
-- Transaction-scoped locks on the uniqueness keys of a batch, taken in key order so that two
-- batches sharing keys cannot deadlock. The first key of the two-int form is the store's
-- schema, so stores in other schemas of the database do not wait on each other.
SELECT count(pg_advisory_xact_lock(hashtext(%(ns)s), hashtext(k.key)))
FROM (SELECT DISTINCT key FROM unnest(%(keys)s::text[]) AS u(key) ORDER BY key) AS k

-- name: unique_find
-- For each (key, period, states) the newest job holding the key, inserted within the period
-- and in one of the states (comma-separated), or NULL.
SELECT u.ord, (
    SELECT j.id FROM {schema}.offload_jobs AS j
    WHERE j.dedup_key = u.key AND j.dedup_key IS NOT NULL
      AND j.state = ANY(string_to_array(u.states, ','))
      AND (u.period IS NULL OR j.inserted_at >= {schema}.offload_now() - u.period)
    ORDER BY j.id DESC
    LIMIT 1
)
FROM unnest(%(keys)s::text[], %(periods)s::double precision[], %(states)s::text[])
     WITH ORDINALITY AS u(key, period, states, ord)
ORDER BY u.ord

-- name: job_policy_apply
-- Stamp just-inserted jobs with their expiry and uniqueness key; a job that matched a rule at
-- enqueue (reason) or whose expiry has already passed is stored shed, and counted.
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(expires_in)s::double precision[],
                         %(expires_at)s::double precision[], %(dedup)s::text[],
                         %(rules)s::bigint[], %(reasons)s::text[])
        AS t(id, expires_in, expires_at, dedup, rule, reason)
),
stamped AS (
    SELECT j.id, i.dedup, i.rule, i.reason,
           coalesce(i.expires_at, j.inserted_at + i.expires_in) AS expires,
           (i.reason IS NOT NULL
            OR coalesce(i.expires_at, j.inserted_at + i.expires_in) <= {schema}.offload_now())
               AS shed
    FROM {schema}.offload_jobs AS j JOIN input AS i ON j.id = i.id
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET expires_at = s.expires,
        dedup_key = s.dedup,
        state = CASE WHEN s.shed THEN 'shed' ELSE j.state END,
        finished_at = CASE WHEN s.shed THEN {schema}.offload_now() ELSE j.finished_at END,
        errors = CASE WHEN s.shed THEN j.errors || jsonb_build_array(jsonb_build_object(
                          'attempt', j.attempt, 'at', {schema}.offload_now(),
                          'error', coalesce(s.reason, %(expired)s), 'traceback', '',
                          'kind', 'shed', 'rule', s.rule))
                      ELSE j.errors END,
        meta = CASE WHEN s.rule IS NULL THEN j.meta
                    ELSE j.meta || jsonb_build_object('shed_rule', s.rule) END
    FROM stamped AS s
    WHERE j.id = s.id
    RETURNING j.state
),
counted AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT 'shed', count(*) FROM done WHERE state = 'shed'
    HAVING count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT count(*) FILTER (WHERE state = 'shed') FROM done

-- name: job_shed
-- Shed claimed jobs instead of running them, fenced by their lease tokens (rows locked in id
-- order, as the acknowledgements do); the attempt they were claimed for is not counted.
WITH input AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(reasons)s::text[],
                         %(rules)s::bigint[])
        AS t(id, token, reason, rule)
),
locked AS MATERIALIZED (
    SELECT j.id, input.reason, input.rule FROM {schema}.offload_jobs AS j
    JOIN input ON j.id = input.id AND j.lease_token = input.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'shed', attempt = greatest(j.attempt - 1, 0),
        finished_at = {schema}.offload_now(), lease_owner = NULL, lease_expires_at = NULL,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'at', {schema}.offload_now(), 'error', l.reason,
            'traceback', '', 'kind', 'shed', 'rule', l.rule)),
        meta = CASE WHEN l.rule IS NULL THEN j.meta
                    ELSE j.meta || jsonb_build_object('shed_rule', l.rule) END
    FROM locked AS l
    WHERE j.id = l.id
    RETURNING j.id
),
counted AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT name, n FROM (
        SELECT 'shed' AS name, (SELECT count(*) FROM done) AS n
        UNION ALL
        SELECT 'stale_acks', %(n)s::bigint - (SELECT count(*) FROM done)
    ) AS counts
    WHERE n > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT count(*) FROM done

-- name: job_shed_expired
-- One bounded batch, found through the partial index on expires_at.
WITH due AS MATERIALIZED (
    SELECT id FROM {schema}.offload_jobs
    WHERE expires_at IS NOT NULL AND state IN ('scheduled', 'available', 'retryable')
      AND expires_at <= {schema}.offload_now()
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
done AS (
    UPDATE {schema}.offload_jobs AS j
    SET state = 'shed', finished_at = {schema}.offload_now(), lease_owner = NULL,
        lease_expires_at = NULL,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'at', {schema}.offload_now(), 'error', %(reason)s::text,
            'traceback', '', 'kind', 'shed', 'rule', NULL))
    FROM due
    WHERE j.id = due.id AND j.state IN ('scheduled', 'available', 'retryable')
    RETURNING 1
),
counted AS (
    INSERT INTO {schema}.offload_counters AS c (name, value)
    SELECT 'shed', count(*) FROM done
    HAVING count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value
)
SELECT count(*) FROM done

-- name: rule_add
INSERT INTO {schema}.offload_rules (kind, condition, reason, created_at, expires_at)
VALUES (%(kind)s, %(condition)s, %(reason)s, {schema}.offload_now(),
        {schema}.offload_now() + %(expires_in)s::double precision)
RETURNING id, kind, condition, reason, created_at, expires_at

-- name: rule_list
SELECT id, kind, condition, reason, created_at, expires_at FROM {schema}.offload_rules
WHERE %(all)s OR expires_at IS NULL OR expires_at > {schema}.offload_now()
ORDER BY id

-- name: rule_remove
DELETE FROM {schema}.offload_rules WHERE id = %(id)s

-- name: job_queued_page
-- Jobs waiting to run after an id, for a blackhole rule's preview.
SELECT id, kind, queue, tenant, args, meta
FROM {schema}.offload_jobs
WHERE id > %(after)s AND state IN ('scheduled', 'available', 'retryable')
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
ORDER BY id
LIMIT %(limit)s

-- name: backlog_register
-- A bound shared by producers with different settings keeps the largest, so that every
-- producer's comparison stays right (counts stop at bound + 1).
INSERT INTO {schema}.offload_backlog AS b (scope, name, bound, depth, counted_at)
SELECT scope, name, bound, 0, 0
FROM unnest(%(scopes)s::text[], %(names)s::text[], %(bounds)s::bigint[]) AS t(scope, name, bound)
ON CONFLICT (scope, name) DO UPDATE SET bound = greatest(b.bound, excluded.bound)

-- name: backlog_count
-- Each count is an index range scan that stops at bound + 1 entries.
UPDATE {schema}.offload_backlog AS b
SET depth = CASE
        WHEN b.scope = 'queue' THEN (
            SELECT count(*) FROM (
                SELECT 1 FROM {schema}.offload_jobs AS j
                WHERE j.state = 'available' AND j.queue = b.name
                LIMIT b.bound + 1) AS q)
        ELSE (
            SELECT count(*) FROM (
                SELECT 1 FROM {schema}.offload_jobs AS j
                WHERE j.state = 'available' AND j.kind = b.name
                LIMIT b.bound + 1) AS k)
    END,
    counted_at = {schema}.offload_now()
WHERE %(all)s OR (b.scope, b.name) IN (
    SELECT * FROM unnest(%(scopes)s::text[], %(names)s::text[]))
RETURNING b.scope, b.name, b.bound, b.depth, b.counted_at

-- name: backlog_read
SELECT scope, name, bound, depth, counted_at FROM {schema}.offload_backlog
ORDER BY scope, name

-- name: rule_prune
-- Rules expired before the given time: nothing applies them any more.
DELETE FROM {schema}.offload_rules WHERE expires_at IS NOT NULL AND expires_at < %(before)s
