-- PIN mappings (issue 5). Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Exactly one of conference / meeting_id is set. Times are Unix seconds (UTC).
CREATE TABLE pins (
    pin         TEXT PRIMARY KEY,
    conference  TEXT,
    meeting_id  TEXT,
    server      TEXT,
    label       TEXT,
    valid_from  BIGINT,
    valid_until BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CHECK ((conference IS NULL) <> (meeting_id IS NULL))
);

-- One row whose generation every write transaction bumps first: it serialises writers (the row
-- lock) and lets every dialin process see a change by polling one number.
CREATE TABLE pins_generation (
    id         INTEGER PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO pins_generation (id, generation) VALUES (1, 0);
