-- The ordering rule written once: each job stores its fair-queuing start tag, and the key the
-- claim orders by is derived from it by the table itself; a lane's head and a flow's
-- reservation are defined here once, for every statement that needs them
-- (offload/dispatch/_ordering.py).
--
-- start_tag  the job's start in its lane's virtual time (start-time fair queuing); NULL until
--            the job is first tagged (a scheduled job is tagged when it becomes due)
-- order_key  start_tag + slo (an slo of NULL counts as 0; 0 while untagged): what a claim orders
--            by after priority, kept by the table (a stored generated column) so that no
--            statement computes it and the claim stays an index range scan.
ALTER TABLE offload_jobs ADD COLUMN start_tag double precision;
UPDATE offload_jobs SET start_tag = order_key - coalesce(slo, 0) WHERE state <> 'scheduled';
DROP INDEX offload_jobs_claim;
ALTER TABLE offload_jobs DROP COLUMN order_key;
ALTER TABLE offload_jobs ADD COLUMN order_key double precision NOT NULL
    GENERATED ALWAYS AS (coalesce(start_tag + coalesce(slo, 0), 0)) STORED;
CREATE INDEX offload_jobs_claim ON offload_jobs (queue, priority DESC, order_key, id)
    WHERE state = 'available';

-- Every lane that holds a tagged job has its row (inserts and promotions make it before they
-- tag a job; this covers jobs tagged before lanes were kept), so that the view below knows
-- each lane's head.
INSERT INTO offload_lanes (queue, priority)
SELECT DISTINCT queue, priority FROM offload_jobs WHERE start_tag IS NOT NULL
ON CONFLICT (queue, priority) DO NOTHING;

-- Each lane's stored clock and the start tag of its head: the available job a claim takes
-- next, one step of the claim index (NULL when the lane is empty). Its virtual clock is the
-- larger of the two. Every statement that reads a lane's head reads it here.
CREATE VIEW offload_lane_heads (queue, priority, clock, head) AS
SELECT l.queue, l.priority, l.clock,
       (SELECT h.start_tag FROM offload_jobs AS h
        WHERE h.state = 'available' AND h.queue = l.queue AND h.priority = l.priority
        ORDER BY h.priority DESC, h.order_key, h.id
        LIMIT 1)
FROM offload_lanes AS l;

-- The reservation of virtual time by one flow (a job type and tenant in a lane): the lane's row
-- is made if missing, then the flow's finish tag moves on to max(finish, the lane's virtual
-- clock) + added (the flow row's lock orders concurrent reservations). Returns the flow's base:
-- the start tag of its first job, from which its jobs take consecutive start tags. PL/pgSQL,
-- so that its statements are planned once per connection rather than at every enqueue; made
-- with the schema written into its statements, which run on callers' connections whatever
-- their search_path.
DO $migration$
BEGIN
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_reserve(lane_queue text, lane_priority integer, flow_kind text,
                                     flow_tenant text, added double precision)
    RETURNS double precision
    LANGUAGE plpgsql VOLATILE
AS $body$
DECLARE
    base double precision;
BEGIN
    INSERT INTO %1$I.offload_lanes (queue, priority)
    VALUES (lane_queue, lane_priority)
    ON CONFLICT (queue, priority) DO NOTHING;
    INSERT INTO %1$I.offload_flows AS f (queue, priority, kind, tenant, clock, added, finish)
    SELECT lane_queue, lane_priority, flow_kind, flow_tenant, v.clock, offload_reserve.added,
           v.clock + offload_reserve.added
    FROM (SELECT greatest(max(h.clock), max(h.head), 0) AS clock
          FROM %1$I.offload_lane_heads AS h
          WHERE h.queue = lane_queue AND h.priority = lane_priority) AS v
    ON CONFLICT (queue, priority, kind, tenant) DO UPDATE
    SET finish = greatest(f.finish, excluded.clock) + excluded.added, clock = excluded.clock,
        added = excluded.added
    RETURNING f.finish - f.added INTO base;
    RETURN base;
END
$body$
$function$, current_schema());

    -- The reservations of a batch's flows (arrays, one element per flow), in flow order so
    -- that concurrent batches lock flow rows in one order; all of them are made before the
    -- first row comes back.
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_reserve_flows(flow_queue text[], flow_priority integer[],
                                           flow_kind text[], flow_tenant text[],
                                           flow_added double precision[])
    RETURNS TABLE (queue text, priority integer, kind text, tenant text,
                   base double precision)
    LANGUAGE plpgsql VOLATILE
AS $body$
DECLARE
    added double precision;
BEGIN
    FOR queue, priority, kind, tenant, added IN
        SELECT * FROM unnest(flow_queue, flow_priority, flow_kind, flow_tenant, flow_added)
        ORDER BY 1, 2, 3, 4
    LOOP
        base := %1$I.offload_reserve(queue, priority, kind, tenant, added);
        RETURN NEXT;
    END LOOP;
END
$body$
$function$, current_schema());
END
$migration$;
