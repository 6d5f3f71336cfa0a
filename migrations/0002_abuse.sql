-- Guessing protection shared by a cluster (issue 6). Portable SQL: runs on SQLite and PostgreSQL.
-- Only pseudonyms (keyed hashes) and times are stored: no numbers, PINs or addresses. Rows expire:
-- failed calls after abuse.block_max, keys when their rotation period is over.

-- One random pseudonym key per rotation period (epoch = unix time / rotation), created by the
-- first instance that asks, so every instance computes the same pseudonym for a caller.
CREATE TABLE abuse_keys (
    epoch BIGINT PRIMARY KEY,
    key   TEXT NOT NULL
);

-- Failed calls (a wrong PIN, no meeting reached) by caller pseudonym or 'withheld'.
CREATE TABLE abuse_failed_calls (
    id       BIGINT PRIMARY KEY,
    caller   TEXT NOT NULL,
    at_ms    BIGINT NOT NULL,
    instance BIGINT NOT NULL
);
CREATE INDEX abuse_failed_calls_at ON abuse_failed_calls (at_ms);

-- Hands out failed-call ids; its row lock orders writers, so ids become visible in order and a
-- reader's cursor never skips a row.
CREATE TABLE abuse_seq (
    id   INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO abuse_seq (id, last) VALUES (1, 0);
