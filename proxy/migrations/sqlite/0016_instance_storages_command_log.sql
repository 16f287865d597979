-- Issue 16: the instance's bounce settings (stored and returned, never acted on: D19), tenants'
-- storages (stored only), and an index for reading and purging the command log by time.
ALTER TABLE instance ADD COLUMN bounce_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instance ADD COLUMN bounce_imap_host TEXT;
ALTER TABLE instance ADD COLUMN bounce_imap_port BIGINT NOT NULL DEFAULT 993;
ALTER TABLE instance ADD COLUMN bounce_imap_user TEXT;
ALTER TABLE instance ADD COLUMN bounce_imap_password TEXT;
ALTER TABLE instance ADD COLUMN bounce_imap_folder TEXT NOT NULL DEFAULT 'INBOX';
ALTER TABLE instance ADD COLUMN bounce_imap_ssl BIGINT NOT NULL DEFAULT 1;
ALTER TABLE instance ADD COLUMN bounce_poll_interval BIGINT NOT NULL DEFAULT 60;
ALTER TABLE instance ADD COLUMN bounce_return_path TEXT;

CREATE TABLE storages (
    pk         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    protocol   TEXT NOT NULL,
    config     TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE INDEX command_log_ts ON command_log (command_ts);
