-- The ordering rule written once: each job stores its fair-queuing start tag, and the key the
-- claim orders by is derived from it by the table itself (offload/dispatch/_ordering.py).
--
-- start_tag  the job's start in its lane's virtual time (start-time fair queuing); NULL until
--            the job is first tagged (a scheduled job is tagged when it becomes due)
-- order_key  start_tag + slo (an slo of NULL counts as 0; 0 while untagged): what a claim orders
--            by after priority. A virtual column: it takes no room in the row (a claim rewrites
--            the whole row, so every stored column costs every claim), and the claim index
--            holds its value, so a claim stays an index range scan.
ALTER TABLE offload_jobs ADD COLUMN start_tag REAL;
UPDATE offload_jobs SET start_tag = order_key - coalesce(slo, 0) WHERE state <> 'scheduled';
DROP INDEX offload_jobs_claim;
ALTER TABLE offload_jobs DROP COLUMN order_key;
ALTER TABLE offload_jobs ADD COLUMN order_key REAL NOT NULL
    GENERATED ALWAYS AS (coalesce(start_tag + coalesce(slo, 0), 0)) VIRTUAL;
CREATE INDEX offload_jobs_claim ON offload_jobs (queue, priority DESC, order_key, id, limit_key)
    WHERE state = 'available';

-- Every lane that holds a tagged job has its row (inserts and promotions make it before they
-- tag a job; this covers jobs tagged before lanes were kept), so that the view below knows
-- each lane's head.
INSERT INTO offload_lanes (queue, priority, clock)
SELECT DISTINCT queue, priority, 0 FROM offload_jobs WHERE start_tag IS NOT NULL
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
