-- Alerts (offload/store/_alerts.py): rules added at run time, the state of each alert the
-- leader evaluates, and the history of firing and resolved events.
CREATE TABLE offload_alerts (
    name        TEXT    PRIMARY KEY,
    condition   TEXT    NOT NULL,
    target      TEXT,
    threshold   REAL    NOT NULL,
    for_seconds REAL    NOT NULL DEFAULT 0,
    webhook     TEXT,
    created_at  REAL    NOT NULL
);

CREATE TABLE offload_alert_state (
    name       TEXT    PRIMARY KEY,
    firing     INTEGER NOT NULL,
    since      REAL,
    value      REAL,
    changed_at REAL    NOT NULL
);

CREATE TABLE offload_alert_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    value     REAL,
    threshold REAL,
    message   TEXT    NOT NULL DEFAULT '',
    at        REAL    NOT NULL
);
CREATE INDEX offload_alert_events_at ON offload_alert_events (at);
