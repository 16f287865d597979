-- Issue 18: `messages_account` was never read; every write of a message paid for it.
DROP INDEX IF EXISTS messages_account;
