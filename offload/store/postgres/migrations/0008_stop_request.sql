-- A running job's stop request: NULL, 'cancel' or 'pause'. Set by pausing its queue or kind
-- (migration 0009) or by cancelling it while it runs; an iteration job stops at its next yield.
ALTER TABLE offload_jobs ADD COLUMN IF NOT EXISTS stop_request text;
