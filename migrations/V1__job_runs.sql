-- dbtool's own schema: one row per job run (archive, backup, health, pool-advise), written by
-- the commands and by the scheduler. UNIQUE (job, scheduled_at) is how two scheduler replicas
-- agree that a scheduled time has been claimed; hand-started runs have scheduled_at NULL.
CREATE SCHEMA IF NOT EXISTS dbtool;
CREATE TABLE dbtool.job_runs (
    id           bigserial PRIMARY KEY,
    job          text        NOT NULL,
    kind         text        NOT NULL,              -- health | backup | archive | pool-advise
    target       text        NOT NULL DEFAULT '',
    scheduled_at timestamptz,                       -- the cron time claimed; NULL for runs started by hand
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text        NOT NULL DEFAULT 'running', -- running | success | failure | timeout | cancelled
    runner       text        NOT NULL DEFAULT '',   -- host:pid
    rows         bigint,
    bytes        bigint,
    message      text,
    UNIQUE (job, scheduled_at)
);
CREATE INDEX job_runs_job_started ON dbtool.job_runs (job, started_at DESC);
