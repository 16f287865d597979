-- Schema of the mail proxy (contract §7.1), SQLite flavour. Integers are BIGINT throughout so
-- the same queries bind the same types on PostgreSQL and SQLite.
CREATE TABLE tenants (
    id                     TEXT PRIMARY KEY,
    name                   TEXT,
    client_auth            TEXT,
    client_base_url        TEXT,
    client_sync_path       TEXT,
    client_attachment_path TEXT,
    default_account_id     TEXT,
    rate_limits            TEXT,
    large_file_config      TEXT,
    active                 BIGINT NOT NULL DEFAULT 1,
    suspended_batches      TEXT,
    api_key_hash           TEXT,
    api_key_expires_at     BIGINT,
    last_sync_ts           BIGINT,
    dnd_until              BIGINT,
    sync_requested         BIGINT NOT NULL DEFAULT 0,
    sync_failures          BIGINT NOT NULL DEFAULT 0,
    sync_retry_at          BIGINT,
    sync_claimed_by        TEXT,
    sync_claimed_until     BIGINT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

CREATE TABLE accounts (
    pk             TEXT PRIMARY KEY,
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    host           TEXT NOT NULL,
    port           BIGINT NOT NULL,
    smtp_user      TEXT,
    password       TEXT,
    ttl            BIGINT NOT NULL DEFAULT 300,
    limit_per_minute BIGINT,
    limit_per_hour BIGINT,
    limit_per_day  BIGINT,
    limit_behavior TEXT NOT NULL DEFAULT 'defer',
    use_tls        BIGINT,
    use_ssl        BIGINT NOT NULL DEFAULT 0,
    sender_email   TEXT,
    batch_size     BIGINT,
    extra          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE messages (
    pk            TEXT PRIMARY KEY,
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    account_id    TEXT,
    account_pk    TEXT,
    priority      BIGINT NOT NULL DEFAULT 2,
    payload       TEXT NOT NULL,
    batch_code    TEXT,
    deferred_ts   BIGINT,
    smtp_ts       BIGINT,
    is_pec        BIGINT NOT NULL DEFAULT 0,
    retry_count   BIGINT NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    claimed_until BIGINT,
    queued_us     BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX messages_pending ON messages (priority, queued_us, pk) WHERE smtp_ts IS NULL;
CREATE INDEX messages_account ON messages (account_pk);

CREATE TABLE message_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_pk      TEXT NOT NULL REFERENCES messages(pk) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event_ts        BIGINT NOT NULL,
    description     TEXT,
    metadata        TEXT,
    reported_ts     BIGINT,
    report_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX message_events_message ON message_events (message_pk);
CREATE INDEX message_events_unreported ON message_events (tenant_id, id) WHERE reported_ts IS NULL;

CREATE TABLE send_log (
    account_pk TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    message_pk TEXT NOT NULL
);
CREATE INDEX send_log_account_ts ON send_log (account_pk, ts);

CREATE TABLE command_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    command_ts      BIGINT NOT NULL,
    endpoint        TEXT NOT NULL,
    tenant_id       TEXT,
    payload         TEXT,
    response_status BIGINT,
    response_body   TEXT
);

CREATE TABLE instance (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    edition    TEXT NOT NULL DEFAULT 'ee',
    config     TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
