//! The credentials Secret: database password, proxy API token, proxy encryption key and the
//! Grafana admin password. Generated once; later reconciles reuse the stored values.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use pressure_crds::PressureTest;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::{labels, meta, names, pt_name};
use crate::Result;

/// Secret key of the PostgreSQL password.
pub const DB_PASSWORD: &str = "database-password";
/// Secret key of the proxy's admin token.
pub const API_TOKEN: &str = "api-token";
/// Secret key of `MAIL_PROXY_ENCRYPTION_KEY` (base64 of 32 bytes).
pub const ENCRYPTION_KEY: &str = "encryption-key";
/// Secret key of Grafana's admin password.
pub const GRAFANA_PASSWORD: &str = "grafana-admin-password";

/// The generated credentials. `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValues {
    /// PostgreSQL password (alphanumeric, so it fits in a URL unescaped).
    pub db_password: String,
    /// `GMP_API_TOKEN`.
    pub api_token: String,
    /// `MAIL_PROXY_ENCRYPTION_KEY`.
    pub encryption_key: String,
    /// Grafana admin password.
    pub grafana_password: String,
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValues(<redacted>)")
    }
}

impl SecretValues {
    /// Fresh random credentials.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut word = |n: usize| -> String {
            (&mut rng)
                .sample_iter(&Alphanumeric)
                .take(n)
                .map(char::from)
                .collect()
        };
        let (db_password, api_token, grafana_password) = (word(32), word(40), word(24));
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        Self {
            db_password,
            api_token,
            grafana_password,
            encryption_key: base64::engine::general_purpose::STANDARD.encode(key),
        }
    }

    /// The values stored in an existing Secret, when all are present.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let get = |k: &str| -> Option<String> {
            data.get(k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|s| !s.is_empty())
        };
        Some(Self {
            db_password: get(DB_PASSWORD)?,
            api_token: get(API_TOKEN)?,
            encryption_key: get(ENCRYPTION_KEY)?,
            grafana_password: get(GRAFANA_PASSWORD)?,
        })
    }
}

/// The Secret holding `values`.
pub fn secret(pt: &PressureTest, values: &SecretValues) -> Result<Secret> {
    let name = pt_name(pt)?;
    let entry = |k: &str, v: &str| (k.to_string(), ByteString(v.as_bytes().to_vec()));
    Ok(Secret {
        metadata: meta(
            pt,
            names::secret(&name),
            labels(&name, "credentials", "pressure-test"),
        )?,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            entry(DB_PASSWORD, &values.db_password),
            entry(API_TOKEN, &values.api_token),
            entry(ENCRYPTION_KEY, &values.encryption_key),
            entry(GRAFANA_PASSWORD, &values.grafana_password),
        ])),
        ..Secret::default()
    })
}
