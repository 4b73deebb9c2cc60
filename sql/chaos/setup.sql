-- The chaos harness's own business table, beside longrun's schema: every side effect a
-- handler or participant performed, keyed by its idempotency key. A redelivery finds the row
-- and only counts the attempt: the effect itself happens once.
CREATE SCHEMA IF NOT EXISTS __app__;
CREATE TABLE IF NOT EXISTS __app__.effects (
    key      text        PRIMARY KEY,
    kind     text        NOT NULL,
    attempts integer     NOT NULL DEFAULT 1,
    at       timestamptz NOT NULL DEFAULT now()
);
