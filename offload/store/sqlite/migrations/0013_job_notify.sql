-- Webhooks (docs/webhooks.md): a job whose meta names a URL under "offload.notify" gets a
-- delivery job when it ends (completed, dead, cancelled or shed), inserted by this trigger in
-- the transaction that ends it, whichever statement does (a worker's acknowledgement, a rescue,
-- a cancel, a shed), so that no end is reported twice for one transition and none is lost.
-- The delivery job (kind 'offload.webhook', in the job's queue and lane, available at once
-- at its lane's virtual clock, where a newly enqueued job would start) carries the URL and a
-- snapshot of the job as it ended; a worker signs and posts it (offload/app/_webhooks.py). `instr` keeps the
-- JSON functions off the rows of every other job.
CREATE TRIGGER offload_jobs_notify AFTER UPDATE OF state ON offload_jobs
FOR EACH ROW
WHEN new.state IN ('completed', 'dead', 'cancelled', 'shed') AND old.state <> new.state
     AND instr(new.meta, '"offload.notify"') > 0
BEGIN
    INSERT INTO offload_jobs (kind, queue, args, meta, state, priority, max_attempts, delivery,
                              scheduled_at, result_ttl, inserted_at, start_tag)
    SELECT 'offload.webhook', new.queue,
           json_object(
               'url', json_extract(new.meta, '$."offload.notify"'),
               'event', json_object(
                   'type', 'job.' || new.state,
                   'id', new.id,
                   'kind', new.kind,
                   'queue', new.queue,
                   'state', new.state,
                   'attempt', new.attempt,
                   'max_attempts', new.max_attempts,
                   'result', CASE WHEN new.state = 'completed' AND json_valid(new.result)
                                  THEN json(new.result) END,
                   'error', CASE WHEN new.state <> 'completed' AND json_valid(new.errors)
                                 AND json_type(new.errors) = 'array'
                                 THEN json_extract(new.errors, '$[#-1].error') END,
                   'inserted_at', new.inserted_at,
                   'attempted_at', new.attempted_at,
                   'finished_at', coalesce(new.finished_at,
                                           (julianday('now') - 2440587.5) * 86400.0))),
           '{}', 'available', new.priority, 10, 'at_least_once',
           (julianday('now') - 2440587.5) * 86400.0, 86400.0,
           (julianday('now') - 2440587.5) * 86400.0,
           coalesce((SELECT max(v.clock, coalesce(v.head, 0)) FROM offload_lane_heads AS v
                     WHERE v.queue = new.queue AND v.priority = new.priority), 0)
    WHERE json_valid(new.meta)
      AND json_type(new.meta, '$."offload.notify"') = 'text';
END;
