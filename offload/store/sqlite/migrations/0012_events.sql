-- Events (offload/store/_events.py, docs/events.md): topics as append-only logs of partitions,
-- and the positions of the consumer groups that read them.
--
-- offload_topics        a topic's declaration as stored: partitions, retention (NULL: none)
-- offload_topic_parts   one row per partition: `head`, the offset the next event gets; the
--                       partition's counter, updated in the publish's transaction so that
--                       offsets are gap-free and commit in order
-- offload_events        the log: (topic, part, position) with key, JSON payload and meta, and
--                       the publisher's idempotency key (a retried publish finds its event)
-- offload_subscriptions the subscriptions recorded, each with the offset per partition it
--                       gets jobs from (JSON {partition: offset}); publishes make jobs only
--                       for recorded ones, so a subscription added later starts where it says
-- offload_group_offsets a consumer group's place in one partition: `next_offset` (the next
--                       offset to read), and the job that holds the partition (job_id)
CREATE TABLE offload_topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL CHECK (partitions >= 1),
    retention_seconds REAL,
    retention_events INTEGER,
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE offload_topic_parts (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    head INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, part)
) WITHOUT ROWID;

CREATE TABLE offload_events (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    position INTEGER NOT NULL,
    key TEXT,
    payload TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    published_at REAL NOT NULL,
    idem_key TEXT,
    PRIMARY KEY (topic, part, position)
);

CREATE INDEX offload_events_time ON offload_events (topic, part, published_at);

CREATE UNIQUE INDEX offload_events_idem ON offload_events (topic, idem_key)
    WHERE idem_key IS NOT NULL;

CREATE TABLE offload_group_offsets (
    topic TEXT NOT NULL,
    grp TEXT NOT NULL,
    part INTEGER NOT NULL,
    next_offset INTEGER NOT NULL DEFAULT 0,
    job_id INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (topic, grp, part)
) WITHOUT ROWID;

CREATE TABLE offload_subscriptions (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    starts TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (topic, name)
) WITHOUT ROWID;
