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
    name text PRIMARY KEY,
    partitions bigint NOT NULL CHECK (partitions >= 1),
    retention_seconds double precision,
    retention_events bigint,
    created_at double precision NOT NULL
);

CREATE TABLE offload_topic_parts (
    topic text NOT NULL,
    part bigint NOT NULL,
    head bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, part)
);

CREATE TABLE offload_events (
    topic text NOT NULL,
    part bigint NOT NULL,
    position bigint NOT NULL,
    key text,
    payload jsonb NOT NULL,
    meta jsonb NOT NULL DEFAULT '{}',
    published_at double precision NOT NULL,
    idem_key text,
    PRIMARY KEY (topic, part, position)
);

CREATE INDEX offload_events_time ON offload_events (topic, part, published_at);

CREATE UNIQUE INDEX offload_events_idem ON offload_events (topic, idem_key)
    WHERE idem_key IS NOT NULL;

CREATE TABLE offload_group_offsets (
    topic text NOT NULL,
    grp text NOT NULL,
    part bigint NOT NULL,
    next_offset bigint NOT NULL DEFAULT 0,
    job_id bigint,
    updated_at double precision NOT NULL,
    PRIMARY KEY (topic, grp, part)
);

CREATE TABLE offload_subscriptions (
    topic text NOT NULL,
    name text NOT NULL,
    starts text NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (topic, name)
);
