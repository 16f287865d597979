//! Authentication and scope (PROTOCOL.md §3.1): `X-API-Token` is the admin token
//! (`GMP_API_TOKEN`, compared in constant time) or a tenant's key (stored as its SHA-256). A
//! tenant token acts only on its own tenant; admin-only routes refuse it with 403.
//!
//! Handlers take the caller as an extractor, [`Authed`] or [`AdminOnly`], never as a header map
//! read inside the body: axum runs the `FromRequestParts` extractors in argument order and the one
//! `FromRequest` extractor (the JSON [`Body`](super::input::Body)) last, so a request without a
//! valid token is answered 401 before its query or body is read, whatever they hold.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, request::Parts},
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::sync::Arc;

use super::{AppState, record::Slot};
use crate::{error::AppError, store::now_ts};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token, or no token when none is configured.
    Admin,
    /// A tenant's API key.
    Tenant(String),
}

/// SHA-256 hex of a tenant key, as stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Compares a token with the admin token in time that depends on neither: both are hashed to
/// 32 bytes first, because comparing the raw bytes stops at once when the lengths differ and so
/// tells a caller how long the admin token is.
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (
        Sha256::digest(expected.as_bytes()),
        Sha256::digest(given.as_bytes()),
    );
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// Identifies the caller of a request.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let token = headers
        .get("x-api-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty());
    let unauthorized = || AppError::new(StatusCode::UNAUTHORIZED, "Invalid or missing API token");
    match (state.api_token.as_deref(), token) {
        (None, None) => Ok(Caller::Admin),
        (Some(_), None) => Err(unauthorized()),
        (admin, Some(t)) => {
            if admin.is_some_and(|a| same_secret(a, t)) {
                return Ok(Caller::Admin);
            }
            match state
                .store
                .tenant_by_key_hash(&key_hash(t), now_ts())
                .await?
            {
                Some(owner) if owner.active => Ok(Caller::Tenant(owner.id)),
                // A suspended tenant cannot act, not even to lift its own suspension.
                Some(owner) => Err(AppError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Tenant '{}' is inactive: its token is refused until the admin sets active",
                        owner.id
                    ),
                )),
                None => Err(unauthorized()),
            }
        }
    }
}

/// Requires the admin token.
pub async fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    match caller(state, headers).await {
        Ok(Caller::Admin) => Ok(()),
        Ok(Caller::Tenant(_)) => Err(AppError::new(
            StatusCode::FORBIDDEN,
            "Admin token required, tenant tokens not allowed for this operation",
        )),
        Err(e) if headers.get("x-api-token").is_none() => Err(AppError {
            detail: "Admin token required".into(),
            ..e
        }),
        Err(e) => Err(e),
    }
}

/// The caller of a route that takes any valid token (or none when no admin token is configured);
/// tenant-scoped operations narrow it with [`crate::api::scope`].
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let who = caller(state, &parts.headers).await?;
        if let Some(slot) = parts.extensions.get::<Arc<Slot>>() {
            slot.authenticated(&who);
        }
        Ok(Authed(who))
    }
}

/// Proof that the caller holds the admin token (admin-only routes).
#[derive(Debug, Clone, Copy)]
pub struct AdminOnly;

impl FromRequestParts<AppState> for AdminOnly {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        admin(state, &parts.headers).await?;
        if let Some(slot) = parts.extensions.get::<Arc<Slot>>() {
            slot.authenticated(&Caller::Admin);
        }
        Ok(AdminOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_comparison_is_exact() {
        assert!(same_secret("admin-token", "admin-token"));
        for other in [
            "",
            "admin",
            "admin-token ",
            "admin-tokeN",
            "admin-token-and-more",
        ] {
            assert!(!same_secret("admin-token", other), "{other:?}");
        }
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
