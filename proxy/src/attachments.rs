//! Attachment loading (contract §5): turns the attachment objects of a payload into content for
//! the MIME builder, by fetch mode. Failures are classified as temporary (retried with the
//! message) or permanent (a terminal `error` report).

pub mod base64;

use std::sync::Arc;

use serde_json::Value;

use crate::{
    config::Config, mail::build::LoadedAttachment, metrics::Metrics, model::attachment as names,
    store::tenants::Tenant,
};

/// A failed load, with the contract's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Retry later (timeouts, connection errors, 429, 5xx) or give up.
    pub temporary: bool,
    /// Description, e.g. `Attachment fetch failed for x.pdf: HTTP 404`.
    pub text: String,
}

impl LoadError {
    /// A permanent failure.
    pub fn permanent(text: impl Into<String>) -> Self {
        LoadError {
            temporary: false,
            text: text.into(),
        }
    }

    /// A temporary failure.
    pub fn temporary(text: impl Into<String>) -> Self {
        LoadError {
            temporary: true,
            text: text.into(),
        }
    }
}

/// Loads the attachments of messages.
pub struct Loader {
    /// Settings (`GMP_ATTACHMENT_*`, `GMP_CACHE_*`, `GMP_SPOOL_DIR`).
    #[allow(dead_code)]
    config: Config,
    /// Load durations, sizes, cache hits.
    #[allow(dead_code)]
    metrics: Arc<Metrics>,
}

impl Loader {
    /// A loader with the replica's settings.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        Loader {
            config: config.clone(),
            metrics,
        }
    }

    /// Loads every attachment of a payload, in order.
    pub async fn load_all(
        &self,
        tenant: Option<&Tenant>,
        payload: &Value,
    ) -> Result<Vec<LoadedAttachment>, LoadError> {
        let Some(list) = payload.get("attachments").and_then(Value::as_array) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(list.len());
        for att in list {
            out.push(self.load(tenant, att).await?);
        }
        Ok(out)
    }

    async fn load(
        &self,
        _tenant: Option<&Tenant>,
        att: &Value,
    ) -> Result<LoadedAttachment, LoadError> {
        let raw_name = att
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or("attachment");
        let filename = names::clean_filename(raw_name);
        let path = att
            .get("storage_path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mode = att
            .get("fetch_mode")
            .and_then(Value::as_str)
            .unwrap_or("endpoint");
        let content = match mode {
            "base64" => base64::decode(path)
                .map_err(|why| LoadError::permanent(format!("Invalid base64 content: {why}")))?,
            other => {
                return Err(LoadError::permanent(format!(
                    "Attachment fetch failed for {filename}: fetch mode {other} is not enabled on this proxy"
                )));
            }
        };
        let mime = att
            .get("mime_type")
            .and_then(Value::as_str)
            .filter(|m| m.contains('/'))
            .map(str::to_string)
            .unwrap_or_else(|| names::guess_mime(&filename).to_string());
        Ok(LoadedAttachment {
            filename,
            mime,
            content,
        })
    }
}
