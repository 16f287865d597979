//! The command log (PROTOCOL.md §3.3, §7.1): every state-changing call of either dialect, once
//! its caller is authenticated, is recorded with its operation name (upstream's: `addMessages`,
//! `addTenant`, …), the tenant it acts on, the request and the answer, secrets shown as `"***"`
//! and inline attachment data as `"<N bytes>"`. Calls refused before authentication (401) are
//! not recorded, so nobody without a token can fill the log.
//!
//! The middleware never reads a body itself (a request is authenticated before its body is
//! read): the [`Body`](super::input::Body) extractor and the [`auth`](super::auth) extractors
//! leave the parsed body and the caller in a [`Slot`] the middleware put in the request.

use std::sync::{Arc, Mutex};

use axum::{
    body::{Body, HttpBody, to_bytes},
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use serde_json::{Map, Value, json};
use tracing::warn;

use super::{AppState, auth::Caller};

/// Largest answer recorded whole; a longer one is recorded as its size.
const MAX_RECORDED_ANSWER: usize = 1 << 20;

/// What the extractors leave for the recorder.
#[derive(Debug, Default)]
pub struct Slot {
    caller: Mutex<Option<Caller>>,
    payload: Mutex<Option<Value>>,
}

impl Slot {
    /// The authenticated caller.
    pub fn authenticated(&self, caller: &Caller) {
        *self.caller.lock().unwrap_or_else(|e| e.into_inner()) = Some(caller.clone());
    }

    /// The request body, parsed (redacted here).
    pub fn body(&self, body: &Value) {
        *self.payload.lock().unwrap_or_else(|e| e.into_inner()) = Some(redact(body));
    }
}

/// The operation a state-changing route performs, by upstream's name; None for reads.
pub fn operation(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let name = match (method.as_str(), segments.as_slice()) {
        ("POST", ["commands", "add-messages"] | ["messages", "add_batch" | "add"]) => "addMessages",
        ("POST", ["commands", "delete-messages"] | ["messages", "delete_batch" | "delete"]) => {
            "deleteMessages"
        }
        ("POST", ["commands", "cleanup-messages"]) | ("GET" | "POST", ["messages", "cleanup"]) => {
            "cleanupMessages"
        }
        ("POST", ["account"] | ["accounts", "add" | "add_pec"]) => "addAccount",
        ("DELETE", ["account", _]) | ("POST", ["accounts", "delete"]) => "deleteAccount",
        ("POST", ["tenant"] | ["tenants", "add"]) => "addTenant",
        ("PUT", ["tenant", _]) | ("POST", ["tenants", "update"]) => "updateTenant",
        ("DELETE", ["tenant", _]) | ("POST", ["tenants", "delete"]) => "deleteTenant",
        ("POST", ["tenant", _, "api-key"] | ["tenants", "create_api_key"]) => "createApiKey",
        ("DELETE", ["tenant", _, "api-key"]) | ("POST", ["tenants", "revoke_api_key"]) => {
            "revokeApiKey"
        }
        (
            "POST",
            ["commands", "suspend"] | ["instance", "suspend"] | ["tenants", "suspend_batch"],
        ) => "suspend",
        (
            "POST",
            ["commands", "activate"] | ["instance", "activate"] | ["tenants", "activate_batch"],
        ) => "activate",
        ("POST", ["commands", "run-now"] | ["instance", "run_now"]) => "runNow",
        ("PUT", ["instance"]) | ("POST", ["instance", "update" | "set_bounce_config"]) => {
            "updateInstance"
        }
        ("POST", ["instance", "reload-bounce" | "reload_bounce"]) => "reloadBounce",
        ("POST", ["instance", "upgrade-to-ee" | "upgrade_to_ee"]) => "upgradeToEe",
        ("POST", ["storages", "add"]) => "addStorage",
        ("POST", ["storages", "delete"]) => "deleteStorage",
        ("POST", ["command_log", "purge"]) => "purgeCommandLog",
        _ => return None,
    };
    Some(name)
}

/// Keys whose values are secrets wherever they appear.
const SECRET_KEYS: [&str; 8] = [
    "password",
    "smtp_password",
    "imap_password",
    "bounce_imap_password",
    "token",
    "api_key",
    "api_token",
    "auth",
];

/// A copy of a request or answer fit for the log: secrets `"***"`, inline (`base64`) attachment
/// data `"<N bytes>"`.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let inline = m.get("fetch_mode").and_then(Value::as_str) == Some("base64")
                || m.get("storage_path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.starts_with("base64:"));
            Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let shown = if SECRET_KEYS.contains(&k.as_str()) && !v.is_null() {
                            json!("***")
                        } else if inline && k == "storage_path" {
                            let data = v.as_str().unwrap_or_default();
                            let data = data.strip_prefix("base64:").unwrap_or(data);
                            json!(format!("<{} bytes>", data.len() / 4 * 3))
                        } else {
                            redact(v)
                        };
                        (k.clone(), shown)
                    })
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// The tenant a recorded call acts on: named in the body or the query, in the path of the
/// classic tenant routes, the `id` of a tenant being created, else the caller's own.
fn tenant_of(path: &str, payload: &Value, caller: &Caller) -> Option<String> {
    let named = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    named("tenant_id")
        .or_else(|| match segments.as_slice() {
            ["tenant", id, ..] => Some((*id).to_string()),
            ["tenant"] | ["tenants", "add"] => named("id"),
            _ => None,
        })
        .or_else(|| match caller {
            Caller::Tenant(own) => Some(own.clone()),
            Caller::Admin => None,
        })
}

/// Records the state-changing calls (see the module's text). Switched off by `GMP_COMMAND_LOG`.
pub async fn record(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let op = operation(req.method(), req.uri().path());
    let Some(op) = op.filter(|_| state.command_log) else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    let query: Map<String, Value> =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri())
            .map(|q| {
                q.0.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            })
            .unwrap_or_default();
    let slot = Arc::new(Slot::default());
    req.extensions_mut().insert(slot.clone());
    let resp = next.run(req).await;
    let Some(caller) = slot.caller.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return resp;
    };
    let mut payload = match slot
        .payload
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        Some(Value::Object(m)) => m,
        Some(other) => Map::from_iter([("body".to_string(), other)]),
        None => Map::new(),
    };
    for (k, v) in redact(&Value::Object(query))
        .as_object()
        .into_iter()
        .flatten()
    {
        payload.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let payload = Value::Object(payload);
    let (parts, body) = resp.into_parts();
    // An answer of unknown size or over the cap goes out untouched (it was cut to nothing
    // before); the log then keeps only that it was not recorded.
    let size = HttpBody::size_hint(&body).exact();
    let (answer, body) = match size.filter(|n| *n <= MAX_RECORDED_ANSWER as u64) {
        Some(_) => match to_bytes(body, MAX_RECORDED_ANSWER).await {
            Ok(bytes) => {
                let answer = serde_json::from_slice(&bytes).map_or_else(
                    |_| json!(format!("<{} bytes>", bytes.len())),
                    |v: Value| redact(&v),
                );
                (answer, Body::from(bytes))
            }
            Err(_) => return Response::from_parts(parts, Body::empty()),
        },
        None => (json!("<answer too large to record>"), body),
    };
    let tenant = tenant_of(&path, &payload, &caller);
    if let Err(e) = state
        .store
        .record_command(
            op,
            tenant.as_deref(),
            &payload,
            parts.status.as_u16(),
            &answer,
        )
        .await
    {
        warn!(endpoint = op, error = %e, "A command could not be recorded in the command log.");
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_inline_data_are_not_recorded() {
        let body = json!({
            "id": "a1", "smtp_password": "hunter2", "client_auth": {"method": "basic", "password": "pw"},
            "messages": [{"id": "m", "attachments": [
                {"filename": "a.txt", "storage_path": "base64:aGVsbG8gd29ybGQh", "fetch_mode": "base64"},
                {"filename": "b.txt", "storage_path": "https://x.test/b", "auth": {"token": "t"}}
            ]}]
        });
        let shown = redact(&body).to_string();
        for secret in ["hunter2", "\"pw\"", "aGVsbG8gd29ybGQh", "\"t\""] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("<12 bytes>"), "{shown}");
        assert!(shown.contains("https://x.test/b"), "{shown}");
        assert!(shown.contains("\"method\":\"basic\""), "{shown}");
    }

    #[test]
    fn both_dialects_name_the_same_operation() {
        let post = Method::POST;
        for (a, b) in [
            ("/commands/add-messages", "/messages/add_batch"),
            ("/commands/delete-messages", "/messages/delete_batch"),
            ("/tenant", "/tenants/add"),
            ("/commands/suspend", "/tenants/suspend_batch"),
        ] {
            assert_eq!(operation(&post, a), operation(&post, b), "{a} {b}");
            assert!(operation(&post, a).is_some());
        }
        assert_eq!(
            operation(&Method::DELETE, "/tenant/t1/api-key"),
            Some("revokeApiKey")
        );
        assert_eq!(operation(&Method::PUT, "/tenant/t1"), Some("updateTenant"));
        assert_eq!(operation(&Method::GET, "/messages/list"), None);
        assert_eq!(operation(&Method::GET, "/tenants"), None);
    }
}
