-- Webhooks (docs/webhooks.md): a job whose meta names a URL under "offload.notify" gets a
-- delivery job when it ends (completed, dead, cancelled or shed), inserted by this trigger in
-- the transaction that ends it, whichever statement does (a worker's acknowledgement, a rescue,
-- a cancel, a shed), so that none is lost. The delivery job (kind 'offload.webhook', in the
-- job's queue and lane, available at once at its lane's virtual clock, where a newly enqueued
-- job would start) carries the URL and a snapshot of the job as it ended; a worker signs and
-- posts it (offload/app/_webhooks.py), and idle workers of the queue are woken as for any new
-- job. The trigger's WHEN keeps the function off the rows of every other job. The function is
-- made with the schema written into its statements, which run on callers' connections
-- whatever their search_path.
DO $migration$
BEGIN
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_notify_job() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
AS $body$
BEGIN
    IF jsonb_typeof(NEW.meta -> 'offload.notify') IS DISTINCT FROM 'string' THEN
        RETURN NULL;
    END IF;
    INSERT INTO %1$I.offload_jobs (kind, queue, args, meta, state, priority, max_attempts,
                                   delivery, scheduled_at, result_ttl, inserted_at, start_tag)
    VALUES ('offload.webhook', NEW.queue,
            jsonb_build_object(
                'url', NEW.meta ->> 'offload.notify',
                'event', jsonb_build_object(
                    'type', 'job.' || NEW.state,
                    'id', NEW.id,
                    'kind', NEW.kind,
                    'queue', NEW.queue,
                    'state', NEW.state,
                    'attempt', NEW.attempt,
                    'max_attempts', NEW.max_attempts,
                    'result', CASE WHEN NEW.state = 'completed' THEN NEW.result END,
                    'error', CASE WHEN NEW.state <> 'completed'
                                       AND jsonb_typeof(NEW.errors) = 'array'
                                  THEN NEW.errors -> -1 ->> 'error' END,
                    'inserted_at', NEW.inserted_at,
                    'attempted_at', NEW.attempted_at,
                    'finished_at', coalesce(NEW.finished_at, %1$I.offload_now()))),
            '{}', 'available', NEW.priority, 10, 'at_least_once', %1$I.offload_now(),
            86400, %1$I.offload_now(),
            coalesce((SELECT greatest(v.clock, v.head, 0) FROM %1$I.offload_lane_heads AS v
                      WHERE v.queue = NEW.queue AND v.priority = NEW.priority), 0));
    PERFORM pg_notify(%2$L, NEW.queue);
    RETURN NULL;
END
$body$
$function$, current_schema(), 'offload_' || current_schema());
END
$migration$;

CREATE TRIGGER offload_jobs_notify AFTER UPDATE OF state ON offload_jobs
FOR EACH ROW
WHEN (NEW.state IN ('completed', 'dead', 'cancelled', 'shed')
      AND OLD.state IS DISTINCT FROM NEW.state
      AND NEW.meta ? 'offload.notify')
EXECUTE FUNCTION offload_notify_job();
