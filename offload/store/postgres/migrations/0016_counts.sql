-- Kept counts of the job rows by queue, kind and state (jobs, and their attempts added up), so
-- that the overview, `/metrics`, `offload stats` and the lag signals read a few rows instead of
-- counting every job (offload/store/_totals.py). Statement triggers append what each statement
-- changed, grouped, to `offload_count_deltas` (inserts only: workers that claim and acknowledge
-- at once never wait on one another's counter rows); readers and the leader's maintenance fold
-- the deltas into `offload_counts`. Counts = offload_counts + the deltas not yet folded, read in
-- one statement, so one snapshot.
CREATE TABLE offload_counts (
    queue    text   NOT NULL,
    kind     text   NOT NULL,
    state    text   NOT NULL,
    jobs     bigint NOT NULL,
    attempts bigint NOT NULL,
    PRIMARY KEY (queue, kind, state)
);

CREATE TABLE offload_count_deltas (
    queue    text   NOT NULL,
    kind     text   NOT NULL,
    state    text   NOT NULL,
    jobs     bigint NOT NULL,
    attempts bigint NOT NULL
);

-- Each function is made with the schema written into its statements, which run on callers'
-- connections whatever their search_path. An update's old rows count minus, its new rows plus:
-- a heartbeat or a checkpoint nets to nothing and appends nothing.
DO $migration$
BEGIN
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_count_inserted() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
AS $body$
BEGIN
    INSERT INTO %1$I.offload_count_deltas (queue, kind, state, jobs, attempts)
    SELECT queue, kind, state, count(*), coalesce(sum(attempt), 0)
    FROM offload_new GROUP BY queue, kind, state;
    RETURN NULL;
END
$body$
$function$, current_schema());
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_count_deleted() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
AS $body$
BEGIN
    INSERT INTO %1$I.offload_count_deltas (queue, kind, state, jobs, attempts)
    SELECT queue, kind, state, -count(*), -coalesce(sum(attempt), 0)
    FROM offload_old GROUP BY queue, kind, state;
    RETURN NULL;
END
$body$
$function$, current_schema());
    EXECUTE format($function$
CREATE FUNCTION %1$I.offload_count_updated() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
AS $body$
BEGIN
    INSERT INTO %1$I.offload_count_deltas (queue, kind, state, jobs, attempts)
    SELECT queue, kind, state, sum(jobs), sum(attempts)
    FROM (SELECT queue, kind, state, 1 AS jobs, attempt::bigint AS attempts FROM offload_new
          UNION ALL
          SELECT queue, kind, state, -1, -attempt::bigint FROM offload_old) AS d
    GROUP BY queue, kind, state
    HAVING sum(jobs) <> 0 OR sum(attempts) <> 0;
    RETURN NULL;
END
$body$
$function$, current_schema());
END
$migration$;

CREATE TRIGGER offload_jobs_count_insert AFTER INSERT ON offload_jobs
REFERENCING NEW TABLE AS offload_new
FOR EACH STATEMENT EXECUTE FUNCTION offload_count_inserted();

CREATE TRIGGER offload_jobs_count_delete AFTER DELETE ON offload_jobs
REFERENCING OLD TABLE AS offload_old
FOR EACH STATEMENT EXECUTE FUNCTION offload_count_deleted();

CREATE TRIGGER offload_jobs_count_update AFTER UPDATE ON offload_jobs
REFERENCING OLD TABLE AS offload_old NEW TABLE AS offload_new
FOR EACH STATEMENT EXECUTE FUNCTION offload_count_updated();

-- The rows already there, counted while the triggers above hold writers off (this migration's
-- transaction has the table locked against writes from CREATE TRIGGER on).
INSERT INTO offload_counts (queue, kind, state, jobs, attempts)
SELECT queue, kind, state, count(*), coalesce(sum(attempt), 0)
FROM offload_jobs GROUP BY queue, kind, state;
