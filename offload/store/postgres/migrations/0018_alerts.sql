-- Alerts (offload/store/_alerts.py): rules added at run time, the state of each alert the
-- leader evaluates, and the history of firing and resolved events.
CREATE TABLE offload_alerts (
    name        text             PRIMARY KEY,
    condition   text             NOT NULL,
    target      text,
    threshold   double precision NOT NULL,
    for_seconds double precision NOT NULL DEFAULT 0,
    webhook     text,
    created_at  double precision NOT NULL
);

CREATE TABLE offload_alert_state (
    name       text             PRIMARY KEY,
    firing     boolean          NOT NULL,
    since      double precision,
    value      double precision,
    changed_at double precision NOT NULL
);

CREATE TABLE offload_alert_events (
    id        bigserial        PRIMARY KEY,
    name      text             NOT NULL,
    state     text             NOT NULL,
    value     double precision,
    threshold double precision,
    message   text             NOT NULL DEFAULT '',
    at        double precision NOT NULL
);
CREATE INDEX offload_alert_events_at ON offload_alert_events (at);
