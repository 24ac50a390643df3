-- Event totals by queue and job type that the job rows cannot tell: what jobs deleted by the
-- pruner or discarded had counted (enqueued, started, completed, dead, shed), and events that
-- workers report in batches with their heartbeat (failed and retried attempts).
CREATE TABLE offload_totals (
    queue text   NOT NULL,
    kind  text   NOT NULL,
    event text   NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (queue, kind, event)
);
