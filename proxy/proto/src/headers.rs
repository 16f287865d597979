//! Header names that carry measurement data from the simulated client to the sink, through the
//! proxy (which copies a message's custom `headers` into the delivered mail, §6.6).

/// Creation time of the message at the simulated client, in Unix microseconds. The sink subtracts
/// it from its own arrival time to get end-to-end latency.
pub const CREATED_AT_MICROS: &str = "X-Pressure-Created-Us";

/// Identifier of the pressure run, so the sink can tell runs apart and ignore strays.
pub const RUN_ID: &str = "X-Pressure-Run-Id";

/// Tenant that generated the message, for per-tenant figures at the sink.
pub const TENANT_ID: &str = "X-Pressure-Tenant";

/// Header the proxy always sets with the tenant's message id (§6.6).
pub const GENRO_MAIL_ID: &str = "X-Genro-Mail-ID";

/// Optional MD5 (32 lower-case hex) of each attachment in order, comma separated, stamped by the
/// client when the filename carries no `{MD5:...}` marker, so the sink can verify every part.
pub const ATTACHMENT_MD5S: &str = "X-Pressure-Attachment-Md5";
