//! `spec.proxy.settings`: the proxy's documented `GMP_*` settings beyond the seed's four tuning
//! knobs, in groups (dispatch, sync, attachments, cache, disk cache, HTTP, message limits,
//! database). Every field is optional: unset, the proxy keeps its own default (the operator
//! sizes the two memory budgets from the container's memory limit instead). Each group's fields
//! are declared once, in the `settings_group!` tables below, with their variable and range: the
//! CRD schema (which the API server, and [`crate::validate`] for a local file, check values
//! against) and the environment the operator and the local run give the proxy both read those
//! tables. What the operator or the local run owns (the database URL, the
//! tokens, the listener, the allowed hosts, the spool folder) is not a setting.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the CRD and `validate` say when a retry delay is out of range.
pub const RETRY_DELAYS_MESSAGE: &str =
    "retryDelaysSeconds: each delay must be between 0 and 86400 seconds";

/// One integer setting of a group: its field name in the spec, its variable, its allowed range
/// and its value (None: unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Field name as written in the spec (camelCase), e.g. `claimBatchSize`.
    pub field: &'static str,
    /// The proxy's environment variable, e.g. `GMP_CLAIM_BATCH_SIZE`.
    pub env: &'static str,
    /// Smallest allowed value.
    pub min: i64,
    /// Largest allowed value.
    pub max: i64,
    /// The value, when set.
    pub value: Option<i64>,
}

/// Declares a group of optional integer settings: the struct (with the schema's ranges) and
/// `fields()`, the table the validation and the environment read. `extra { ... }` adds fields
/// that are not plain integers; they are handled by hand.
macro_rules! settings_group {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident ($camel:literal, $env:literal, $min:literal ..= $max:literal); )*
        }
        $( extra { $($extra:tt)* } )?
    ) => {
        $(#[$meta])*
        #[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(range(min = $min, max = $max))]
                pub $field: Option<i64>,
            )*
            $( $($extra)* )?
        }

        impl $name {
            /// The group's integer settings, in declaration order.
            pub fn fields(&self) -> Vec<Setting> {
                vec![$(Setting {
                    field: $camel,
                    env: $env,
                    min: $min,
                    max: $max,
                    value: self.$field,
                }),*]
            }
        }
    };
}

settings_group! {
    /// How a replica claims and sends messages.
    pub struct DispatchSettings {
        /// Rows per claim query (`GMP_CLAIM_BATCH_SIZE`, proxy default 200).
        claim_batch_size("claimBatchSize", "GMP_CLAIM_BATCH_SIZE", 1..=10000);
        /// Seconds a claimed message is leased to its replica; after that another replica may
        /// claim it (`GMP_CLAIM_LEASE_SECONDS`, default 120).
        claim_lease_seconds("claimLeaseSeconds", "GMP_CLAIM_LEASE_SECONDS", 10..=86400);
        /// Concurrent SMTP sends per replica (`GMP_MAX_CONCURRENT_SENDS`, default 10).
        max_concurrent_sends("maxConcurrentSends", "GMP_MAX_CONCURRENT_SENDS", 1..=1000);
        /// Concurrent SMTP sends per account per replica (`GMP_MAX_SENDS_PER_ACCOUNT`, default 3).
        max_sends_per_account("maxSendsPerAccount", "GMP_MAX_SENDS_PER_ACCOUNT", 1..=1000);
        /// Retries of a temporary failure before it becomes an error (`GMP_MAX_RETRIES`,
        /// default 3).
        max_retries("maxRetries", "GMP_MAX_RETRIES", 0..=100);
        /// Priority (0 immediate … 3 low) of messages whose own is invalid
        /// (`GMP_DEFAULT_PRIORITY`, default 2).
        default_priority("defaultPriority", "GMP_DEFAULT_PRIORITY", 0..=3);
        /// Starts of a send without an outcome (the replica died while sending) after which a
        /// message with inline content is parked as an error (`GMP_MAX_STARTS_WITHOUT_OUTCOME`,
        /// default 3).
        max_starts_without_outcome("maxStartsWithoutOutcome", "GMP_MAX_STARTS_WITHOUT_OUTCOME", 1..=100);
    }
    extra {
        /// Seconds before each retry, the last one repeated (`GMP_RETRY_DELAYS`, default
        /// `[60, 300, 900]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 10))]
        #[x_kube(validation = Rule::new("self.all(d, d >= 0 && d <= 86400)").message(RETRY_DELAYS_MESSAGE))]
        pub retry_delays_seconds: Option<Vec<i64>>,
    }
}

settings_group! {
    /// Calls to the tenants' sync endpoints.
    pub struct SyncSettings {
        /// Timeout of one sync call in seconds (`GMP_SYNC_TIMEOUT_SECONDS`, default 30).
        timeout_seconds("timeoutSeconds", "GMP_SYNC_TIMEOUT_SECONDS", 1..=600);
        /// Tenants synced at once per replica (`GMP_SYNC_CONCURRENCY`, default 8).
        concurrency("concurrency", "GMP_SYNC_CONCURRENCY", 1..=256);
        /// Shortest gap in seconds between two calls to a tenant made only to deliver reports
        /// (`GMP_SYNC_REPORT_MIN_INTERVAL`, default 1).
        report_min_interval_seconds("reportMinIntervalSeconds", "GMP_SYNC_REPORT_MIN_INTERVAL", 0..=3600);
        /// Delivery reports per sync call (`GMP_REPORT_BATCH_SIZE`, default 1000).
        report_batch_size("reportBatchSize", "GMP_REPORT_BATCH_SIZE", 1..=100000);
        /// Refusals of one report before it is dropped (`GMP_REPORT_MAX_ATTEMPTS`, default 10).
        report_max_attempts("reportMaxAttempts", "GMP_REPORT_MAX_ATTEMPTS", 1..=1000);
    }
}

settings_group! {
    /// Attachment downloads and the memory they may hold.
    pub struct AttachmentSettings {
        /// Timeout of one attachment load in seconds, cache lookup included
        /// (`GMP_ATTACHMENT_TIMEOUT_SECONDS`, default 30).
        timeout_seconds("timeoutSeconds", "GMP_ATTACHMENT_TIMEOUT_SECONDS", 1..=600);
        /// Concurrent downloads per replica (`GMP_MAX_CONCURRENT_ATTACHMENTS`, default 3).
        max_concurrent("maxConcurrent", "GMP_MAX_CONCURRENT_ATTACHMENTS", 1..=256);
        /// Largest attachment in bytes (`GMP_MAX_ATTACHMENT_BYTES`, default 104857600).
        max_bytes("maxBytes", "GMP_MAX_ATTACHMENT_BYTES", 1024..=1073741824);
        /// Largest total of one message's inline attachments in MiB, decoded
        /// (`GMP_MAX_INLINE_ATTACHMENT_MB`, default 10).
        max_inline_mb("maxInlineMb", "GMP_MAX_INLINE_ATTACHMENT_MB", 0..=1024);
        /// Memory budget in MiB of messages with attachments being sent; 0 turns it off
        /// (`GMP_ATTACHMENT_MEMORY_BUDGET_MB`; the operator's default is 40 % of the memory
        /// limit).
        memory_budget_mb("memoryBudgetMb", "GMP_ATTACHMENT_MEMORY_BUDGET_MB", 0..=65536);
    }
}

settings_group! {
    /// The memory tier of the MD5 attachment cache.
    pub struct CacheSettings {
        /// Size of the memory tier in MiB (`GMP_CACHE_MEMORY_MAX_MB`; the operator's default is
        /// 10 % of the memory limit).
        memory_max_mb("memoryMaxMb", "GMP_CACHE_MEMORY_MAX_MB", 0..=65536);
        /// Lifetime of memory-cached items in seconds (`GMP_CACHE_MEMORY_TTL_SECONDS`, default
        /// 300).
        memory_ttl_seconds("memoryTtlSeconds", "GMP_CACHE_MEMORY_TTL_SECONDS", 1..=604800);
    }
}

settings_group! {
    /// The disk tier of the MD5 attachment cache. In a cluster it lives on an emptyDir volume of
    /// the proxy pod limited to twice `maxMb` plus 16 MiB (the tier briefly holds a new item
    /// before it evicts; the kubelet evicts a pod whose volume outgrows its limit).
    pub struct DiskCacheSettings {
        /// Size of the disk tier in MiB (`GMP_CACHE_DISK_MAX_MB`, default 500).
        max_mb("maxMb", "GMP_CACHE_DISK_MAX_MB", 1..=1048576);
        /// Lifetime of disk-cached items in seconds (`GMP_CACHE_DISK_TTL_SECONDS`, default 3600).
        ttl_seconds("ttlSeconds", "GMP_CACHE_DISK_TTL_SECONDS", 1..=2592000);
        /// Items of at least this many KiB go to disk, smaller ones to memory
        /// (`GMP_CACHE_DISK_THRESHOLD_KB`, default 100).
        threshold_kb("thresholdKb", "GMP_CACHE_DISK_THRESHOLD_KB", 0..=1048576);
    }
}

settings_group! {
    /// The REST listener's limits.
    pub struct HttpSettings {
        /// Seconds a client has to send a request head; also the idle keep-alive
        /// (`GMP_HTTP_HEADER_TIMEOUT_SECONDS`, default 30).
        header_timeout_seconds("headerTimeoutSeconds", "GMP_HTTP_HEADER_TIMEOUT_SECONDS", 1..=3600);
        /// Seconds a client has to send a whole body (`GMP_HTTP_BODY_TIMEOUT_SECONDS`, default
        /// 120).
        body_timeout_seconds("bodyTimeoutSeconds", "GMP_HTTP_BODY_TIMEOUT_SECONDS", 1..=3600);
        /// Connections open at once; more are answered 503 (`GMP_HTTP_MAX_CONNECTIONS`, default
        /// 4096).
        max_connections("maxConnections", "GMP_HTTP_MAX_CONNECTIONS", 1..=100000);
        /// Largest REST body or sync response in bytes (`GMP_MAX_REQUEST_BYTES`, default
        /// 67108864).
        max_request_bytes("maxRequestBytes", "GMP_MAX_REQUEST_BYTES", 1024..=1073741824);
    }
}

settings_group! {
    /// Limits on one message at intake; a message beyond one is refused with its reason.
    pub struct MessageLimits {
        /// Most recipients, `to` + `cc` + `bcc` (`GMP_MAX_RECIPIENTS`, default 100).
        max_recipients("maxRecipients", "GMP_MAX_RECIPIENTS", 1..=10000);
        /// Most custom headers (`GMP_MAX_HEADERS`, default 50).
        max_headers("maxHeaders", "GMP_MAX_HEADERS", 0..=1000);
        /// Longest custom header value in bytes (`GMP_MAX_HEADER_VALUE_BYTES`, default 998).
        max_header_value_bytes("maxHeaderValueBytes", "GMP_MAX_HEADER_VALUE_BYTES", 1..=65536);
        /// Longest subject in characters (`GMP_MAX_SUBJECT_CHARS`, default 998).
        max_subject_chars("maxSubjectChars", "GMP_MAX_SUBJECT_CHARS", 1..=65536);
    }
}

settings_group! {
    /// The proxy's use of its database.
    pub struct DatabaseSettings {
        /// Connections per replica (`GMP_DB_MAX_CONNECTIONS`, default 10). Times the most
        /// replicas, it must leave PostgreSQL's `maxConnections` room for its reserved ones.
        max_connections("maxConnections", "GMP_DB_MAX_CONNECTIONS", 1..=1000);
        /// Seconds a starting replica waits for PostgreSQL to answer (`GMP_DB_WAIT_SECONDS`,
        /// default 120).
        wait_seconds("waitSeconds", "GMP_DB_WAIT_SECONDS", 0..=3600);
        /// Seconds terminal messages are kept once reported
        /// (`GMP_DELIVERY_REPORT_RETENTION_SECONDS`, default 604800).
        report_retention_seconds("reportRetentionSeconds", "GMP_DELIVERY_REPORT_RETENTION_SECONDS", 0..=31536000);
    }
}

/// `GMP_LOG_JSON`: how the proxy writes its log.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the proxy's default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The proxy's settings beyond `tuning`, by group; see the module documentation.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxySettings {
    /// Claims, concurrency and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchSettings>,
    /// Calls to the tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSettings>,
    /// Attachment downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<AttachmentSettings>,
    /// The memory tier of the attachment cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    /// The disk tier of the attachment cache, on a volume; unset: no disk tier in a cluster
    /// (the local run always has one, in its temporary folder). `diskCache: {}` turns it on
    /// with the proxy's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_cache: Option<DiskCacheSettings>,
    /// The REST listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
    /// Limits on one message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<MessageLimits>,
    /// The database connections and retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSettings>,
    /// Log lines as text or JSON (`GMP_LOG_JSON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl ProxySettings {
    /// True when nothing is set (the field is then left out of a written spec).
    pub fn is_empty(&self) -> bool {
        *self == ProxySettings::default()
    }

    /// Every integer setting, by group (the group's field name, then its settings); unset
    /// groups list their settings unset.
    pub fn groups(&self) -> Vec<(&'static str, Vec<Setting>)> {
        fn of<T: Default + Clone>(g: &Option<T>) -> T {
            g.clone().unwrap_or_default()
        }
        vec![
            ("dispatch", of(&self.dispatch).fields()),
            ("sync", of(&self.sync).fields()),
            ("attachments", of(&self.attachments).fields()),
            ("cache", of(&self.cache).fields()),
            ("diskCache", of(&self.disk_cache).fields()),
            ("http", of(&self.http).fields()),
            ("limits", of(&self.limits).fields()),
            ("database", of(&self.database).fields()),
        ]
    }

    /// The value of the setting whose variable is `env`, when set.
    pub fn value(&self, env: &str) -> Option<i64> {
        self.groups()
            .into_iter()
            .flat_map(|(_, fields)| fields)
            .find(|s| s.env == env)
            .and_then(|s| s.value)
    }

    /// The proxy's environment for the settings that are set: each integer, the retry delays
    /// (comma-separated) and the log format. The disk tier's folder is the caller's to set
    /// ([`ProxySettings::disk_cache`] says whether there is one).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = self
            .groups()
            .into_iter()
            .flat_map(|(_, fields)| fields)
            .filter_map(|s| s.value.map(|v| (s.env, v.to_string())))
            .collect();
        let delays = self
            .dispatch
            .as_ref()
            .and_then(|d| d.retry_delays_seconds.as_ref());
        if let Some(delays) = delays {
            let text: Vec<String> = delays.iter().map(i64::to_string).collect();
            env.push(("GMP_RETRY_DELAYS", text.join(",")));
        }
        if let Some(format) = self.log_format {
            env.push(("GMP_LOG_JSON", (format == LogFormat::Json).to_string()));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_set() -> ProxySettings {
        let yaml = "
dispatch: {claimBatchSize: 1, claimLeaseSeconds: 10, maxConcurrentSends: 1, maxSendsPerAccount: 1,
  maxRetries: 0, defaultPriority: 0, maxStartsWithoutOutcome: 1, retryDelaysSeconds: [5, 10]}
sync: {timeoutSeconds: 1, concurrency: 1, reportMinIntervalSeconds: 0, reportBatchSize: 1,
  reportMaxAttempts: 1}
attachments: {timeoutSeconds: 1, maxConcurrent: 1, maxBytes: 1024, maxInlineMb: 0, memoryBudgetMb: 0}
cache: {memoryMaxMb: 0, memoryTtlSeconds: 1}
diskCache: {maxMb: 1, ttlSeconds: 1, thresholdKb: 0}
http: {headerTimeoutSeconds: 1, bodyTimeoutSeconds: 1, maxConnections: 1, maxRequestBytes: 1024}
limits: {maxRecipients: 1, maxHeaders: 0, maxHeaderValueBytes: 1, maxSubjectChars: 1}
database: {maxConnections: 1, waitSeconds: 0, reportRetentionSeconds: 0}
logFormat: Json
";
        serde_yaml::from_str(yaml).expect("every field parses")
    }

    #[test]
    fn each_table_entry_names_its_serde_field() {
        // The tables' camelCase names are what errors print; they must be serde's names.
        let json = serde_json::to_value(all_set()).unwrap();
        for (group, fields) in all_set().groups() {
            for s in fields {
                assert!(
                    json[group].get(s.field).is_some(),
                    "{group}.{} is not a serde field",
                    s.field
                );
                assert!(s.value.is_some(), "{group}.{} parsed as unset", s.field);
            }
        }
    }

    #[test]
    fn env_holds_every_set_value_once_and_nothing_unset() {
        let env = all_set().env();
        let names: std::collections::BTreeSet<_> = env.iter().map(|(k, _)| *k).collect();
        assert_eq!(names.len(), env.len(), "a variable twice: {env:?}");
        assert!(env.contains(&("GMP_CLAIM_BATCH_SIZE", "1".into())));
        assert!(env.contains(&("GMP_RETRY_DELAYS", "5,10".into())));
        assert!(env.contains(&("GMP_LOG_JSON", "true".into())));
        assert!(env.contains(&("GMP_CACHE_DISK_MAX_MB", "1".into())));
        assert!(ProxySettings::default().env().is_empty());
        assert_eq!(
            all_set().value("GMP_DB_MAX_CONNECTIONS"),
            Some(1),
            "value() finds a setting by its variable"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_yaml::from_str::<ProxySettings>("dispatch: {claimBatch: 3}").unwrap_err();
        assert!(err.to_string().contains("claimBatch"), "{err}");
    }
}
