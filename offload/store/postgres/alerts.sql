-- Named queries of the PostgreSQL engine for lag signals and alerts
-- (offload/store/postgres/_alerts.py, offload/store/_alerts.py).

-- name: queue_oldest
-- The head of each queue's claim order (the claim index), at most :sample rows per queue.
SELECT q.queue, (
    SELECT min(h.scheduled_at) FROM (
        SELECT j.scheduled_at FROM {schema}.offload_jobs j
        WHERE j.state = 'available' AND j.queue = q.queue
        ORDER BY j.priority DESC, j.order_key, j.id
        LIMIT %(sample)s
    ) h
)
FROM unnest(%(queues)s::text[]) AS q (queue)

-- name: queue_depth
SELECT q.queue, (
    SELECT count(*) FROM (
        SELECT 1 FROM {schema}.offload_jobs j
        WHERE j.state = 'available' AND j.queue = q.queue
        LIMIT %(cap)s
    ) h
)
FROM unnest(%(queues)s::text[]) AS q (queue)

-- name: alert_add
INSERT INTO {schema}.offload_alerts
    (name, condition, target, threshold, for_seconds, webhook, created_at)
VALUES (%(name)s, %(condition)s, %(target)s, %(threshold)s, %(for_seconds)s, %(webhook)s,
        {schema}.offload_now())
ON CONFLICT (name) DO UPDATE SET
    condition = excluded.condition, target = excluded.target, threshold = excluded.threshold,
    for_seconds = excluded.for_seconds, webhook = excluded.webhook,
    created_at = excluded.created_at
RETURNING name, condition, threshold, target, for_seconds, webhook, created_at

-- name: alert_list
SELECT name, condition, threshold, target, for_seconds, webhook, created_at
FROM {schema}.offload_alerts ORDER BY name

-- name: alert_remove
WITH gone AS (DELETE FROM {schema}.offload_alerts WHERE name = %(name)s RETURNING name),
     state AS (DELETE FROM {schema}.offload_alert_state WHERE name IN (SELECT name FROM gone))
SELECT count(*) FROM gone

-- name: alert_states
SELECT name, firing, since, value, changed_at FROM {schema}.offload_alert_state ORDER BY name

-- name: alert_record
WITH state AS (
    INSERT INTO {schema}.offload_alert_state (name, firing, since, value, changed_at)
    VALUES (%(name)s, %(firing)s, CASE WHEN %(firing)s THEN {schema}.offload_now() END,
            %(value)s, {schema}.offload_now())
    ON CONFLICT (name) DO UPDATE SET
        firing = excluded.firing, since = excluded.since, value = excluded.value,
        changed_at = excluded.changed_at
)
INSERT INTO {schema}.offload_alert_events (name, state, value, threshold, message, at)
VALUES (%(name)s, %(state)s, %(value)s, %(threshold)s, %(message)s, {schema}.offload_now())
RETURNING id, name, state, value, threshold, message, at

-- name: alert_history
SELECT id, name, state, value, threshold, message, at FROM {schema}.offload_alert_events
WHERE %(name)s::text IS NULL OR name = %(name)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: alert_history_prune
DELETE FROM {schema}.offload_alert_events WHERE at < %(before)s
