-- Claims that stay index range scans before the table is first analyzed. On a table filled
-- since its last ANALYZE the planner believes it holds about one row; given an index on
-- (queue, state) it ran the claim as a scan of every available job of the queue and a sort of
-- them all (84 ms per claim at 100,000 jobs instead of 0.5 ms). Nothing needs that index: every
-- query on `queue` with `state = 'available'` is served by the partial claim index, and the
-- counts by queue and state read the whole table anyway. Statistics are also refreshed after
-- fewer changes than the default (10 % of the table), since the table churns: every job is
-- inserted, updated at its claim and at its acknowledgement.
DROP INDEX IF EXISTS offload_jobs_queue_state;
ALTER TABLE offload_jobs SET (
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_scale_factor = 0.05
);
