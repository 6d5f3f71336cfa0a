-- Phone N numbering shared by a cluster (issue 20): with the store on PostgreSQL, the instances
-- number the callers of one conference together. Portable SQL: runs on SQLite and PostgreSQL.
-- A conference is stored only as its pseudonym (32 hex digits: a keyed hash under the rotation
-- period's shared key in abuse_keys), never its number. Counters idle for 12 hours are deleted.
CREATE TABLE caller_sequences (
    conference TEXT PRIMARY KEY,
    last       BIGINT NOT NULL,
    used_ms    BIGINT NOT NULL
);
CREATE INDEX caller_sequences_used ON caller_sequences (used_ms);
