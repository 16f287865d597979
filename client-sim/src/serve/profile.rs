//! The seed's four client profiles (README, `serve`), the `serve` flags with their environment
//! twins, and how they resolve: an explicit flag or variable wins over the profile, the profile
//! over the seed's defaults (`client-1`, `tenant-1`, 5, 0.3, 0.05, 0.1).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::{Error, Result};

/// A named seed profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// `high-volume-1` / `tenant-high-volume`: 20 msg/sync, hit 0.1, DND 0.02, large 0.05.
    HighVolume,
    /// `standard-1` / `tenant-standard`: 5 msg/sync, hit 0.3, DND 0.05, large 0.1.
    Standard,
    /// `newsletter-1` / `tenant-newsletter`: 50 msg/sync, hit 0.5, DND 0.1, large 0.15.
    Newsletter,
    /// `documents-1` / `tenant-documents`: 2 msg/sync, hit 0.2, DND 0.05, large 0.5.
    Documents,
}

/// Knob values of a profile (or of the seed's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileValues {
    /// `CLIENT_ID`.
    pub client_id: &'static str,
    /// `TENANT_ID`.
    pub tenant_id: &'static str,
    /// `MSG_RATE_PER_SYNC`.
    pub msg_rate_per_sync: f64,
    /// `ATTACHMENT_CACHE_HIT_RATE`.
    pub attachment_cache_hit_rate: f64,
    /// `DND_PROBABILITY`.
    pub dnd_probability: f64,
    /// `LARGE_ATTACHMENT_RATE`.
    pub large_attachment_rate: f64,
}

impl Profile {
    /// The seed's values for this profile.
    pub fn values(self) -> ProfileValues {
        let (client_id, tenant_id, rate, hit, dnd, large) = match self {
            Profile::HighVolume => ("high-volume-1", "tenant-high-volume", 20.0, 0.1, 0.02, 0.05),
            Profile::Standard => ("standard-1", "tenant-standard", 5.0, 0.3, 0.05, 0.1),
            Profile::Newsletter => ("newsletter-1", "tenant-newsletter", 50.0, 0.5, 0.1, 0.15),
            Profile::Documents => ("documents-1", "tenant-documents", 2.0, 0.2, 0.05, 0.5),
        };
        ProfileValues {
            client_id,
            tenant_id,
            msg_rate_per_sync: rate,
            attachment_cache_hit_rate: hit,
            dnd_probability: dnd,
            large_attachment_rate: large,
        }
    }

    /// The seed's defaults when no profile is named.
    pub fn seed_defaults() -> ProfileValues {
        ProfileValues {
            client_id: "client-1",
            tenant_id: "tenant-1",
            msg_rate_per_sync: 5.0,
            attachment_cache_hit_rate: 0.3,
            dnd_probability: 0.05,
            large_attachment_rate: 0.1,
        }
    }
}

/// Shape of the inline messages in sync answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MessageFormat {
    /// Canonical `MessageV1`: `from`, `to`, `subject`, `body`, `body_html`, `priority`.
    #[default]
    Canonical,
    /// The upstream client's alias form: `sender`, `recipient_email`, `body_text`, `body_html`.
    Upstream,
}

/// Flags of `client-sim serve`. Unset knobs come from `--profile`, else the seed's defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Seed profile supplying the knobs not set explicitly.
    #[arg(long, env = "CLIENT_PROFILE", value_enum)]
    pub profile: Option<Profile>,
    /// Client id reported in `/health` and `/stats`.
    #[arg(long, env = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// Tenant id: message id prefix and `X-Pressure-Tenant` header.
    #[arg(long, env = "TENANT_ID")]
    pub tenant_id: Option<String>,
    /// Mean messages per sync R; each sync draws max(0, trunc(gauss(R, R/2))).
    #[arg(long, env = "MSG_RATE_PER_SYNC")]
    pub msg_rate_per_sync: Option<f64>,
    /// Share of attachments carrying an `{MD5:...}` marker; its square reuses cached content.
    #[arg(long, env = "ATTACHMENT_CACHE_HIT_RATE")]
    pub attachment_cache_hit_rate: Option<f64>,
    /// Probability that a sync answer carries a `next_sync_after` (do not disturb).
    #[arg(long, env = "DND_PROBABILITY")]
    pub dnd_probability: Option<f64>,
    /// Probability that a 10 MiB / 50 MiB size draw stays large (else 500 KiB).
    #[arg(long, env = "LARGE_ATTACHMENT_RATE")]
    pub large_attachment_rate: Option<f64>,
    /// Address to listen on (use 0.0.0.0 in a container).
    #[arg(long, env = "CLIENT_LISTEN", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Seed of every draw, for reproducible runs; random when absent.
    #[arg(long, env = "CLIENT_SEED")]
    pub seed: Option<u64>,
    /// Run id stamped into `X-Pressure-Run-Id` and salted into message ids.
    #[arg(long, env = "RUN_ID", default_value = "local")]
    pub run_id: String,
    /// Unix seconds before which syncs generate no messages (answered with a DND until then).
    #[arg(long, env = "START_AT")]
    pub start_at: Option<f64>,
    /// Unix seconds from which syncs generate no messages.
    #[arg(long, env = "STOP_AT")]
    pub stop_at: Option<f64>,
    /// The load's stages, counted from `START_AT`: a JSON array of
    /// `{"durationSeconds": N, "ratePercent": N}`; each moves the rate linearly to its percent of
    /// `MSG_RATE_PER_SYNC` (from 0 % before the first), the last one holds. Empty: the full rate.
    #[arg(long, env = "LOAD_STAGES")]
    pub load_stages: Option<String>,
    /// Shortest do-not-disturb period, seconds.
    #[arg(long, env = "DND_MIN_SECONDS", default_value_t = 30)]
    pub dnd_min_seconds: u64,
    /// Longest do-not-disturb period, seconds.
    #[arg(long, env = "DND_MAX_SECONDS", default_value_t = 300)]
    pub dnd_max_seconds: u64,
    /// Shape of the inline messages.
    #[arg(long, env = "MESSAGE_FORMAT", value_enum, default_value_t = MessageFormat::Canonical)]
    pub message_format: MessageFormat,
    /// Attachment bytes the reuse registry may represent (upstream's 100 MiB cache); content
    /// beyond it is still served (regenerated from the seed in its `storage_path`).
    #[arg(long, env = "CACHE_MAX_MB", default_value_t = 100)]
    pub cache_max_mb: u64,
}

/// Resolved configuration of a simulated client.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Client id.
    pub client_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Mean messages per sync.
    pub msg_rate_per_sync: f64,
    /// Marker share.
    pub attachment_cache_hit_rate: f64,
    /// DND probability.
    pub dnd_probability: f64,
    /// Large attachment rate.
    pub large_attachment_rate: f64,
    /// Listening address (used by the CLI only).
    pub listen: SocketAddr,
    /// Seed of every draw.
    pub seed: u64,
    /// Run id.
    pub run_id: String,
    /// Start barrier (Unix seconds).
    pub start_at: Option<f64>,
    /// Stop barrier (Unix seconds).
    pub stop_at: Option<f64>,
    /// The load's stages, counted from the start barrier (or the first sync without one).
    pub stages: Vec<mailproxy_proto::stages::Stage>,
    /// DND period bounds, seconds.
    pub dnd_seconds: (u64, u64),
    /// Message shape.
    pub message_format: MessageFormat,
    /// Registry bound in bytes of represented content.
    pub cache_max_bytes: u64,
}

impl ServeConfig {
    /// A configuration for `profile` with a fixed seed, for tests and embedding.
    pub fn for_profile(profile: Option<Profile>, seed: u64) -> Self {
        let v = profile.map_or_else(Profile::seed_defaults, Profile::values);
        ServeConfig {
            client_id: v.client_id.to_owned(),
            tenant_id: v.tenant_id.to_owned(),
            msg_rate_per_sync: v.msg_rate_per_sync,
            attachment_cache_hit_rate: v.attachment_cache_hit_rate,
            dnd_probability: v.dnd_probability,
            large_attachment_rate: v.large_attachment_rate,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            seed,
            run_id: "local".to_owned(),
            start_at: None,
            stop_at: None,
            stages: Vec::new(),
            dnd_seconds: (30, 300),
            message_format: MessageFormat::Canonical,
            cache_max_bytes: 100 * 1024 * 1024,
        }
    }

    /// Checks ranges; the error names the flag to fix.
    pub fn validate(&self) -> Result<()> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "{name} must be between 0 and 1, got {v}"
                )))
            }
        };
        share("ATTACHMENT_CACHE_HIT_RATE", self.attachment_cache_hit_rate)?;
        share("DND_PROBABILITY", self.dnd_probability)?;
        share("LARGE_ATTACHMENT_RATE", self.large_attachment_rate)?;
        if !(self.msg_rate_per_sync.is_finite() && self.msg_rate_per_sync >= 0.0) {
            return Err(Error::Config(format!(
                "MSG_RATE_PER_SYNC must be a number >= 0, got {}",
                self.msg_rate_per_sync
            )));
        }
        if self.dnd_seconds.0 > self.dnd_seconds.1 {
            return Err(Error::Config(
                "--dnd-min-seconds must not exceed --dnd-max-seconds".to_owned(),
            ));
        }
        if self.tenant_id.is_empty() {
            return Err(Error::Config("TENANT_ID must not be empty".to_owned()));
        }
        Ok(())
    }
}

impl ServeArgs {
    /// Resolves flags, environment and profile into a validated configuration.
    pub fn into_config(self) -> Result<ServeConfig> {
        let seed = self.seed.unwrap_or_else(rand::random);
        let mut c = ServeConfig::for_profile(self.profile, seed);
        if let Some(v) = self.client_id {
            c.client_id = v;
        }
        if let Some(v) = self.tenant_id {
            c.tenant_id = v;
        }
        c.msg_rate_per_sync = self.msg_rate_per_sync.unwrap_or(c.msg_rate_per_sync);
        c.attachment_cache_hit_rate = self
            .attachment_cache_hit_rate
            .unwrap_or(c.attachment_cache_hit_rate);
        c.dnd_probability = self.dnd_probability.unwrap_or(c.dnd_probability);
        c.large_attachment_rate = self
            .large_attachment_rate
            .unwrap_or(c.large_attachment_rate);
        c.listen = SocketAddr::new(self.listen, self.port);
        c.run_id = self.run_id;
        c.start_at = self.start_at;
        c.stop_at = self.stop_at;
        if let Some(text) = self.load_stages.filter(|t| !t.trim().is_empty()) {
            c.stages = mailproxy_proto::stages::parse(&text)
                .map_err(|e| Error::Config(format!("LOAD_STAGES: {e}")))?;
        }
        c.dnd_seconds = (self.dnd_min_seconds, self.dnd_max_seconds);
        c.message_format = self.message_format;
        c.cache_max_bytes = self.cache_max_mb.saturating_mul(1024 * 1024);
        c.validate()?;
        Ok(c)
    }
}
