-- Issue 18: fewer writes per message in PostgreSQL.
--
-- `messages_account` was never read (no query selects messages by account_pk), yet every insert
-- and every update that could not stay on its page added an entry to it.
DROP INDEX IF EXISTS messages_account;
-- Room on every page for the claim's new row version. The claim changes only claimed_by and
-- claimed_until, which no index covers, so with free space on the page PostgreSQL keeps the new
-- version on the same page without touching any index (a heap-only tuple) and logs only the
-- changed bytes. Packed pages (the default fillfactor of 100) sent every claim's new version to
-- another page, with an entry in each of the table's indexes.
ALTER TABLE messages SET (fillfactor = 50);
