-- Long jobs (docs/long-jobs.md): an iteration job's cursor, a job's progress and a stop request
-- for a running job. Nullable columns without a default: added without a table rewrite, and a
-- row that never uses them holds nothing more.
--
-- cursor          the last cursor an iteration job yielded and offload stored (JSON text); the
--                 next run resumes after it. NULL: start from the beginning.
-- progress_done   items done so far (an iteration job's yields, or what progress() said)
-- progress_total  how many there are in all, when known
-- progress_eta    when the job is expected to finish, by the store's clock, as its worker
--                 estimated at the last write (NULL until it can tell)
-- stop_request    why a running job is asked to stop at its next yield: 'cancel' (it ends
--                 cancelled) or 'pause' (it is put back, its cursor kept); NULL: none
ALTER TABLE offload_jobs ADD COLUMN cursor TEXT;
ALTER TABLE offload_jobs ADD COLUMN progress_done REAL;
ALTER TABLE offload_jobs ADD COLUMN progress_total REAL;
ALTER TABLE offload_jobs ADD COLUMN progress_eta REAL;
ALTER TABLE offload_jobs ADD COLUMN stop_request TEXT;
