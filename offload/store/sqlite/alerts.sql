-- Named queries of the SQLite engine for lag signals and alerts
-- (offload/store/sqlite/_alerts.py, offload/store/_alerts.py).

-- name: queue_oldest
-- The head of one queue's claim order, at most :sample rows (a range of the claim index).
SELECT min(scheduled_at) FROM (
    SELECT scheduled_at FROM offload_jobs
    WHERE state = 'available' AND queue = :queue
    ORDER BY priority DESC, order_key, id
    LIMIT :sample
)

-- name: queue_depth
SELECT count(*) FROM (
    SELECT 1 FROM offload_jobs WHERE state = 'available' AND queue = :queue LIMIT :cap
)

-- name: alert_add
INSERT INTO offload_alerts (name, condition, target, threshold, for_seconds, webhook, created_at)
VALUES (:name, :condition, :target, :threshold, :for_seconds, :webhook, :now)
ON CONFLICT (name) DO UPDATE SET
    condition = excluded.condition, target = excluded.target, threshold = excluded.threshold,
    for_seconds = excluded.for_seconds, webhook = excluded.webhook,
    created_at = excluded.created_at
RETURNING name, condition, threshold, target, for_seconds, webhook, created_at

-- name: alert_list
SELECT name, condition, threshold, target, for_seconds, webhook, created_at
FROM offload_alerts ORDER BY name

-- name: alert_remove
DELETE FROM offload_alerts WHERE name = ?

-- name: alert_state_remove
DELETE FROM offload_alert_state WHERE name = ?

-- name: alert_states
SELECT name, firing, since, value, changed_at FROM offload_alert_state ORDER BY name

-- name: alert_state_set
INSERT INTO offload_alert_state (name, firing, since, value, changed_at)
VALUES (:name, :firing, CASE WHEN :firing THEN :now END, :value, :now)
ON CONFLICT (name) DO UPDATE SET
    firing = excluded.firing, since = excluded.since, value = excluded.value,
    changed_at = excluded.changed_at

-- name: alert_event_add
INSERT INTO offload_alert_events (name, state, value, threshold, message, at)
VALUES (:name, :state, :value, :threshold, :message, :now)
RETURNING id, name, state, value, threshold, message, at

-- name: alert_history
SELECT id, name, state, value, threshold, message, at FROM offload_alert_events
WHERE :name IS NULL OR name = :name
ORDER BY id DESC
LIMIT :limit

-- name: alert_history_prune
DELETE FROM offload_alert_events WHERE at < ?
