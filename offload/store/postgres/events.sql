-- Named queries of the PostgreSQL engine for topics, events and consumer groups
-- (offload/store/postgres/_events.py). `{schema}` is the store's schema; times come from
-- `offload_now()`. A partition's head is moved by an UPDATE in the publish's transaction,
-- whose row lock is held until it commits: publishers to one partition commit one after the
-- other, so offsets become visible in order, without gaps.

-- name: topic_insert
INSERT INTO {schema}.offload_topics AS t
    (name, partitions, retention_seconds, retention_events, created_at)
VALUES (%(name)s, %(partitions)s, %(retention_seconds)s, %(retention_events)s,
        {schema}.offload_now())
ON CONFLICT (name) DO UPDATE
SET partitions = greatest(t.partitions, excluded.partitions),
    retention_seconds = excluded.retention_seconds,
    retention_events = excluded.retention_events
RETURNING name, partitions, retention_seconds, retention_events

-- name: topic_parts_insert
INSERT INTO {schema}.offload_topic_parts (topic, part, head)
SELECT %(topic)s, g, 0 FROM generate_series(0, %(partitions)s::bigint - 1) AS g
ON CONFLICT (topic, part) DO NOTHING

-- name: topic_list
SELECT name, partitions, retention_seconds, retention_events FROM {schema}.offload_topics
ORDER BY name

-- name: part_advance
-- Take offsets of partitions (%(parts)s, %(counts)s): each partition's new head, in one
-- statement whose row locks are taken in partition order (no deadlock between publishers).
UPDATE {schema}.offload_topic_parts AS p
SET head = p.head + c.n
FROM (SELECT unnest(%(parts)s::bigint[]) AS part, unnest(%(counts)s::bigint[]) AS n) AS c
WHERE p.topic = %(topic)s AND p.part = c.part
RETURNING p.part, p.head, {schema}.offload_now()

-- name: part_lock
-- Lock the partitions a publish writes to, in order, before moving their heads.
SELECT part FROM {schema}.offload_topic_parts
WHERE topic = %(topic)s AND part = ANY(%(parts)s::bigint[])
ORDER BY part
FOR UPDATE

-- name: event_insert
INSERT INTO {schema}.offload_events
    (topic, part, position, key, payload, meta, published_at, idem_key)
SELECT %(topic)s, e.part, e.position, e.key, e.payload::jsonb, e.meta::jsonb, %(now)s, e.idem
FROM unnest(%(parts)s::bigint[], %(positions)s::bigint[], %(keys)s::text[],
            %(payloads)s::text[], %(metas)s::text[], %(idems)s::text[])
     AS e(part, position, key, payload, meta, idem)

-- name: event_append_one
-- A publish to one partition without idempotency keys, as one statement (so it commits by
-- itself on the pool): the partition's head moves by the events' count (its row locked until
-- the commit), and each event takes the next offset in the order given. Columns per event, in
-- that order: its partition, offset and publish time. No row: no such partition (nothing
-- inserted).
WITH adv AS (
    UPDATE {schema}.offload_topic_parts AS p
    SET head = p.head + %(n)s
    WHERE p.topic = %(topic)s AND p.part = %(part)s
    RETURNING p.part, p.head - %(n)s AS base, {schema}.offload_now() AS now
),
e AS (
    SELECT u.key, u.payload, u.meta, u.ord
    FROM unnest(%(keys)s::text[], %(payloads)s::text[], %(metas)s::text[])
         WITH ORDINALITY AS u(key, payload, meta, ord)
),
ins AS (
    INSERT INTO {schema}.offload_events (topic, part, position, key, payload, meta, published_at)
    SELECT %(topic)s, adv.part, adv.base + e.ord - 1, e.key, e.payload::jsonb, e.meta::jsonb,
           adv.now
    FROM e CROSS JOIN adv
    RETURNING position
)
SELECT adv.part, adv.base + e.ord - 1, adv.now, (SELECT count(*) FROM ins)
FROM e CROSS JOIN adv
ORDER BY e.ord

-- name: event_by_idem
-- Events of a topic holding these idempotency keys (read after the partitions' locks).
SELECT idem_key, part, position, published_at FROM {schema}.offload_events
WHERE topic = %(topic)s AND idem_key = ANY(%(idems)s::text[])

-- name: event_read
SELECT topic, part, position, key, payload, meta, published_at FROM {schema}.offload_events
WHERE topic = %(topic)s AND part = %(part)s AND position > %(after)s
ORDER BY position
LIMIT %(limit)s

-- name: event_offset_at
SELECT coalesce(
    (SELECT min(position) FROM {schema}.offload_events
     WHERE topic = %(topic)s AND part = %(part)s AND published_at >= %(since)s),
    (SELECT head FROM {schema}.offload_topic_parts WHERE topic = %(topic)s AND part = %(part)s),
    0)

-- name: partition_list
-- Retention deletes a prefix of a partition, so it keeps head - first events.
SELECT p.topic, p.part, p.head,
       coalesce((SELECT min(e.position) FROM {schema}.offload_events AS e
                 WHERE e.topic = p.topic AND e.part = p.part), p.head)
FROM {schema}.offload_topic_parts AS p
WHERE %(topic)s::text IS NULL OR p.topic = %(topic)s
ORDER BY p.topic, p.part

-- name: group_insert
INSERT INTO {schema}.offload_group_offsets (topic, grp, part, next_offset, job_id, updated_at)
VALUES (%(topic)s, %(grp)s, %(part)s, %(start)s, NULL, {schema}.offload_now())
ON CONFLICT (topic, grp, part) DO NOTHING

-- name: group_lock
SELECT o.topic, o.grp, o.part, o.next_offset, o.job_id,
       (SELECT j.state FROM {schema}.offload_jobs AS j WHERE j.id = o.job_id),
       coalesce((SELECT p.head FROM {schema}.offload_topic_parts AS p
                 WHERE p.topic = o.topic AND p.part = o.part), 0)
FROM {schema}.offload_group_offsets AS o
WHERE o.topic = %(topic)s AND o.grp = %(grp)s AND o.part = %(part)s
FOR UPDATE OF o

-- name: group_set_job
UPDATE {schema}.offload_group_offsets SET job_id = %(job_id)s, updated_at = {schema}.offload_now()
WHERE topic = %(topic)s AND grp = %(grp)s AND part = %(part)s

-- name: group_fenced
SELECT 1 FROM {schema}.offload_group_offsets AS o
JOIN {schema}.offload_jobs AS j ON j.id = o.job_id
WHERE o.topic = %(topic)s AND o.grp = %(grp)s AND o.part = %(part)s AND o.job_id = %(job_id)s
  AND j.state = 'running' AND j.lease_token = %(token)s
FOR UPDATE OF o

-- name: group_commit
UPDATE {schema}.offload_group_offsets AS o
SET next_offset = %(next_offset)s, updated_at = {schema}.offload_now()
WHERE o.topic = %(topic)s AND o.grp = %(grp)s AND o.part = %(part)s AND o.job_id = %(job_id)s
  AND o.next_offset = %(expect)s
  AND EXISTS (SELECT 1 FROM {schema}.offload_jobs AS j
              WHERE j.id = %(job_id)s AND j.state = 'running' AND j.lease_token = %(token)s)

-- name: group_positions
SELECT o.topic, o.grp, o.part, o.next_offset, o.job_id, j.state, coalesce(p.head, 0)
FROM {schema}.offload_group_offsets AS o
LEFT JOIN {schema}.offload_jobs AS j ON j.id = o.job_id
LEFT JOIN {schema}.offload_topic_parts AS p ON p.topic = o.topic AND p.part = o.part
WHERE (%(topic)s::text IS NULL OR o.topic = %(topic)s)
  AND (%(grp)s::text IS NULL OR o.grp = %(grp)s)
ORDER BY o.topic, o.grp, o.part

-- name: group_set
UPDATE {schema}.offload_group_offsets AS o
SET next_offset = s.next_offset, updated_at = {schema}.offload_now()
FROM (SELECT unnest(%(parts)s::bigint[]) AS part,
             unnest(%(offsets)s::bigint[]) AS next_offset) AS s
WHERE o.topic = %(topic)s AND o.grp = %(grp)s AND o.part = s.part

-- name: event_prune
-- Per partition of a topic: the first offset retention keeps (past the age and count limits),
-- held at the slowest group's position when %(keep_unconsumed)s; the events below it are
-- deleted. Columns: how many were deleted, and of those how many a group had not read.
WITH bounds AS (
    SELECT p.part, p.head,
           greatest(
               coalesce((SELECT min(e.position) FROM {schema}.offload_events AS e
                         WHERE e.topic = p.topic AND e.part = p.part
                           AND e.published_at >= %(oldest)s), p.head),
               p.head - %(keep)s) AS bound,
           (SELECT min(o.next_offset) FROM {schema}.offload_group_offsets AS o
            WHERE o.topic = p.topic AND o.part = p.part) AS floor
    FROM {schema}.offload_topic_parts AS p
    WHERE p.topic = %(topic)s
),
limits AS (
    SELECT part, floor,
           CASE WHEN %(keep_unconsumed)s AND floor IS NOT NULL THEN least(bound, floor)
                ELSE bound END AS bound
    FROM bounds
),
gone AS (
    DELETE FROM {schema}.offload_events AS e
    USING limits AS l
    WHERE e.topic = %(topic)s AND e.part = l.part AND e.position < l.bound
    RETURNING e.position, l.floor
)
SELECT count(*), count(*) FILTER (WHERE floor IS NOT NULL AND position >= floor) FROM gone

-- name: kind_backlog
SELECT kind, count(*) FROM {schema}.offload_jobs
WHERE state IN ('scheduled', 'available', 'running', 'retryable')
  AND kind = ANY(%(kinds)s::text[])
GROUP BY kind

-- name: part_heads
SELECT part, head FROM {schema}.offload_topic_parts WHERE topic = %(topic)s
ORDER BY part
FOR UPDATE

-- name: subscription_insert
INSERT INTO {schema}.offload_subscriptions (topic, name, starts, created_at)
VALUES (%(topic)s, %(name)s, %(starts)s, {schema}.offload_now())
ON CONFLICT (topic, name) DO NOTHING

-- name: subscription_list
SELECT topic, name, starts, created_at FROM {schema}.offload_subscriptions
WHERE %(topic)s::text IS NULL OR topic = %(topic)s
ORDER BY topic, name
