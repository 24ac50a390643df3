-- Named queries of the SQLite engine for topics, events and consumer groups
-- (offload/store/sqlite/_events.py). SQLite has one writer at a time, so a partition's head,
-- read and moved in the publish's transaction, gives offsets in commit order.

-- name: topic_insert
INSERT INTO offload_topics (name, partitions, retention_seconds, retention_events, created_at)
VALUES (:name, :partitions, :retention_seconds, :retention_events, :now)
ON CONFLICT (name) DO UPDATE
SET partitions = max(partitions, excluded.partitions),
    retention_seconds = excluded.retention_seconds,
    retention_events = excluded.retention_events

-- name: topic_part_insert
INSERT INTO offload_topic_parts (topic, part, head) VALUES (:topic, :part, 0)
ON CONFLICT (topic, part) DO NOTHING

-- name: topic_get
SELECT name, partitions, retention_seconds, retention_events FROM offload_topics
WHERE name = :name

-- name: topic_list
SELECT name, partitions, retention_seconds, retention_events FROM offload_topics ORDER BY name

-- name: part_advance
-- Take `n` offsets of a partition: the new head (the taken ones are head - n .. head - 1).
UPDATE offload_topic_parts SET head = head + :n WHERE topic = :topic AND part = :part
RETURNING head

-- name: event_insert
INSERT INTO offload_events (topic, part, position, key, payload, meta, published_at, idem_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- name: event_by_idem
SELECT part, position, published_at FROM offload_events WHERE topic = ? AND idem_key = ?

-- name: event_read
SELECT topic, part, position, key, payload, meta, published_at FROM offload_events
WHERE topic = :topic AND part = :part AND position > :after
ORDER BY position
LIMIT :limit

-- name: event_offset_at
SELECT coalesce(
    (SELECT min(position) FROM offload_events
     WHERE topic = :topic AND part = :part AND published_at >= :since),
    (SELECT head FROM offload_topic_parts WHERE topic = :topic AND part = :part),
    0)

-- name: partition_list
-- Retention deletes a prefix of a partition, so it keeps head - first events.
SELECT p.topic, p.part, p.head,
       coalesce((SELECT min(e.position) FROM offload_events AS e
                 WHERE e.topic = p.topic AND e.part = p.part), p.head)
FROM offload_topic_parts AS p
WHERE :topic IS NULL OR p.topic = :topic
ORDER BY p.topic, p.part

-- name: group_insert
INSERT INTO offload_group_offsets (topic, grp, part, next_offset, job_id, updated_at)
VALUES (:topic, :grp, :part, :start, NULL, :now)
ON CONFLICT (topic, grp, part) DO NOTHING

-- name: group_get
SELECT o.topic, o.grp, o.part, o.next_offset, o.job_id, j.state,
       coalesce(p.head, 0)
FROM offload_group_offsets AS o
LEFT JOIN offload_jobs AS j ON j.id = o.job_id
LEFT JOIN offload_topic_parts AS p ON p.topic = o.topic AND p.part = o.part
WHERE o.topic = :topic AND o.grp = :grp AND o.part = :part

-- name: group_set_job
UPDATE offload_group_offsets SET job_id = :job_id, updated_at = :now
WHERE topic = :topic AND grp = :grp AND part = :part

-- name: group_fenced
SELECT 1 FROM offload_group_offsets AS o
JOIN offload_jobs AS j ON j.id = o.job_id
WHERE o.topic = :topic AND o.grp = :grp AND o.part = :part AND o.job_id = :job_id
  AND j.state = 'running' AND j.lease_token = :token

-- name: group_commit
UPDATE offload_group_offsets SET next_offset = :next_offset, updated_at = :now
WHERE topic = :topic AND grp = :grp AND part = :part AND job_id = :job_id
  AND next_offset = :expect
  AND EXISTS (SELECT 1 FROM offload_jobs AS j
              WHERE j.id = :job_id AND j.state = 'running' AND j.lease_token = :token)

-- name: group_positions
SELECT o.topic, o.grp, o.part, o.next_offset, o.job_id, j.state, coalesce(p.head, 0)
FROM offload_group_offsets AS o
LEFT JOIN offload_jobs AS j ON j.id = o.job_id
LEFT JOIN offload_topic_parts AS p ON p.topic = o.topic AND p.part = o.part
WHERE (:topic IS NULL OR o.topic = :topic) AND (:grp IS NULL OR o.grp = :grp)
ORDER BY o.topic, o.grp, o.part

-- name: group_set
UPDATE offload_group_offsets SET next_offset = :next_offset, updated_at = :now
WHERE topic = :topic AND grp = :grp AND part = :part

-- name: prune_floor
-- The lowest next offset of any group in a partition (NULL: no group reads it).
SELECT min(next_offset) FROM offload_group_offsets WHERE topic = :topic AND part = :part

-- name: prune_bound
-- The first offset retention keeps in a partition: past the age limit and the count limit.
SELECT max(
    coalesce((SELECT min(position) FROM offload_events
              WHERE topic = :topic AND part = :part AND published_at >= :oldest),
             (SELECT head FROM offload_topic_parts WHERE topic = :topic AND part = :part)),
    (SELECT head FROM offload_topic_parts WHERE topic = :topic AND part = :part) - :keep)

-- name: prune_delete
DELETE FROM offload_events WHERE topic = :topic AND part = :part AND position < :bound

-- name: prune_count_below
SELECT count(*) FROM offload_events
WHERE topic = :topic AND part = :part AND position < :bound AND position >= :floor

-- name: kind_backlog
SELECT kind, count(*) FROM offload_jobs
WHERE state IN ('scheduled', 'available', 'running', 'retryable')
  AND kind IN (SELECT value FROM json_each(:kinds))
GROUP BY kind

-- name: part_heads
SELECT part, head FROM offload_topic_parts WHERE topic = :topic ORDER BY part

-- name: subscription_insert
INSERT INTO offload_subscriptions (topic, name, starts, created_at)
VALUES (:topic, :name, :starts, :now)
ON CONFLICT (topic, name) DO NOTHING

-- name: subscription_list
SELECT topic, name, starts, created_at FROM offload_subscriptions
WHERE :topic IS NULL OR topic = :topic
ORDER BY topic, name
