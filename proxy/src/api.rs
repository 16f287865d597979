//! The proxy's operations, one set for both REST dialects (PROTOCOL.md §3): typed requests in,
//! typed results or an [`OpError`] out, no HTTP and no JSON shapes of either dialect. The
//! dialect adapters (`http/classic.rs`, `http/generated.rs`) parse a route's input once into
//! these types, call one operation and render its result in their own shape.
//!
//! Layout: [`tenants`], [`accounts`], [`messages`], [`commands`] (run-now, suspension),
//! [`instance`] (the instance row and the command log), [`storages`].

pub mod accounts;
pub mod commands;
pub mod instance;
pub mod messages;
pub mod storages;
pub mod tenants;

use mailproxy_proto::patch::FieldError;

use crate::{http::auth::Caller, store::StoreError};

/// Why an operation did not happen. Each adapter turns it into its dialect's status and text.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The tenant does not exist.
    #[error("Tenant '{0}' not found")]
    TenantNotFound(String),
    /// The account does not exist under the tenant.
    #[error("Account '{0}' not found")]
    AccountNotFound(String),
    /// The message does not exist (for this caller).
    #[error("Message '{0}' not found")]
    MessageNotFound(String),
    /// The storage does not exist under the tenant.
    #[error("Storage '{0}' not found")]
    StorageNotFound(String),
    /// No command log entry has this id.
    #[error("Command '{0}' not found")]
    CommandNotFound(String),
    /// A tenant token named another tenant.
    #[error("Token not authorized for this tenant")]
    OtherTenant,
    /// A tenant token may not do this (the text says what).
    #[error("{0}")]
    Forbidden(String),
    /// A required input is missing.
    #[error("field required: {0}")]
    Missing(&'static str),
    /// A field has the wrong type or value.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// The request cannot be carried out as asked (the text says why).
    #[error("{0}")]
    Refused(String),
    /// More messages in one request than [`messages::MAX_BATCH`].
    #[error("Cannot enqueue more than 1000 messages at once")]
    BatchTooLarge,
    /// A single batch cannot be activated while every batch is suspended.
    #[error("Cannot remove single batch when all suspended. Use activate_batch(None) first.")]
    AllSuspended,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result of an operation.
pub type OpResult<T> = Result<T, OpError>;

/// The tenant a tenant-scoped request acts on: the named one (the admin may name any, a tenant
/// only itself), else the token's own tenant; `None` when the admin names none.
pub fn scope(caller: &Caller, named: Option<&str>) -> OpResult<Option<String>> {
    match (caller, named.filter(|n| !n.is_empty())) {
        (Caller::Admin, named) => Ok(named.map(str::to_string)),
        (Caller::Tenant(own), None) => Ok(Some(own.clone())),
        (Caller::Tenant(own), Some(n)) if n == own => Ok(Some(own.clone())),
        (Caller::Tenant(_), Some(_)) => Err(OpError::OtherTenant),
    }
}

/// Like [`scope`], but a tenant is required.
pub fn scope_required(caller: &Caller, named: Option<&str>) -> OpResult<String> {
    scope(caller, named)?.ok_or(OpError::Missing("tenant_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_tokens_act_only_on_their_tenant() {
        let t = Caller::Tenant("acme".into());
        assert_eq!(scope(&t, None).unwrap().as_deref(), Some("acme"));
        assert_eq!(scope(&t, Some("acme")).unwrap().as_deref(), Some("acme"));
        assert!(matches!(
            scope(&t, Some("other")),
            Err(OpError::OtherTenant)
        ));
        assert_eq!(
            scope(&Caller::Admin, Some("other")).unwrap().as_deref(),
            Some("other")
        );
        assert!(matches!(
            scope_required(&Caller::Admin, None),
            Err(OpError::Missing("tenant_id"))
        ));
    }
}
