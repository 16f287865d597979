//! The REST API (PROTOCOL.md §3): both dialects, the classic hand-written routes the pressure setup
//! uses and the generated `/{entity}/{method}` routes, each a thin adapter over the one set of
//! operations in [`crate::api`], with one authentication model. [`router`] lists every route.
//!
//! Layout: [`auth`] (tokens), [`input`] (JSON bodies and query parameters in the contract's
//! error shapes), [`wire`] (the typed requests both dialects parse, and the answers they share),
//! [`record`] (the command log of state-changing calls), [`origin`] (cross-site refusal), then
//! the two dialect adapters [`classic`] and [`generated`], and [`health_v1`] (public routes).

pub mod auth;
pub mod classic;
pub mod generated;
pub mod health_v1;
pub mod input;
pub mod origin;
pub mod record;
pub mod wire;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{delete, get, post},
};
use tokio::sync::Notify;

use crate::{metrics::Metrics, store::Store};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Admin token (`GMP_API_TOKEN`); None means requests without a token act as admin.
    pub api_token: Option<Arc<str>>,
    /// `GMP_DEFAULT_PRIORITY`, clamped.
    pub default_priority: i64,
    /// `GMP_SCHEDULER_ACTIVE`.
    pub scheduler_active: bool,
    /// Wakes the dispatcher (enqueue, run-now).
    pub dispatch_wake: Arc<Notify>,
    /// Wakes the sync scheduler (run-now).
    pub sync_wake: Arc<Notify>,
    /// `GMP_SYNC_INTERVAL`, for the sync status.
    pub sync_interval: f64,
    /// `GMP_DELIVERY_REPORT_RETENTION_SECONDS`, the default of cleanups.
    pub retention_seconds: i64,
    /// `GMP_REPORT_MAX_ATTEMPTS`, for pending-report counts.
    pub report_max_attempts: i64,
    /// Size limits of one message (`GMP_MAX_RECIPIENTS`, `GMP_MAX_HEADERS`, ...).
    pub limits: crate::model::submit::Limits,
    /// `GMP_TENANT_ENDPOINT_SELF_SERVICE`: tenant tokens may change their connection fields.
    pub tenant_endpoint_self_service: bool,
    /// `GMP_COMMAND_LOG`: record state-changing calls in the command log.
    pub command_log: bool,
    /// `GMP_ATTACHMENT_BASE_DIR`: where `local` storages may point.
    pub attachment_base_dir: Option<std::path::PathBuf>,
}

/// Every route of both dialects.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    use classic as c;
    use generated as g;
    use health_v1 as health;
    Router::new()
        // Public and token-only.
        .route("/health", get(health::health))
        .route("/instance/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/status", get(health::status))
        .route("/instance/status", get(health::status))
        // Classic dialect.
        .route("/commands/run-now", post(c::run_now))
        .route("/commands/suspend", post(c::suspend))
        .route("/commands/activate", post(c::activate))
        .route("/commands/add-messages", post(c::add_messages))
        .route("/commands/delete-messages", post(c::delete_messages))
        .route("/commands/cleanup-messages", post(c::cleanup_messages))
        .route("/account", post(c::add_account))
        .route("/accounts", get(c::accounts))
        .route("/account/{account_id}", delete(c::delete_account))
        .route("/messages", get(c::messages))
        .route("/tenant", post(c::add_tenant))
        .route("/tenants", get(c::tenants))
        .route("/tenants/sync-status", get(c::sync_status))
        .route(
            "/tenant/{id}",
            get(c::tenant)
                .put(c::update_tenant)
                .delete(c::delete_tenant),
        )
        .route(
            "/tenant/{id}/api-key",
            post(c::create_key).delete(c::revoke_key),
        )
        .route("/instance", get(c::instance).put(c::update_instance))
        .route("/instance/reload-bounce", post(c::reload_bounce))
        .route("/instance/upgrade-to-ee", post(c::upgrade_to_ee))
        .route("/command-log", get(c::command_log))
        .route("/command-log/export", get(c::command_log_export))
        // Generated dialect (the classic handler where the wire is the same).
        .route("/instance/run_now", post(c::run_now))
        .route("/instance/suspend", post(g::suspend))
        .route("/instance/activate", post(g::activate))
        .route("/tenants/suspend_batch", post(g::suspend))
        .route("/tenants/activate_batch", post(g::activate))
        .route("/tenants/get_suspended_batches", get(g::suspended_batches))
        .route("/instance/get_sync_status", get(c::sync_status))
        .route("/instance/get", get(g::instance))
        .route("/instance/update", post(c::update_instance))
        .route("/instance/set_bounce_config", post(c::update_instance))
        .route("/instance/get_bounce_config", get(g::bounce_config))
        .route("/instance/reload_bounce", post(c::reload_bounce))
        .route("/instance/upgrade_to_ee", post(c::upgrade_to_ee))
        .route("/tenants/add", post(g::add_tenant))
        .route("/tenants/update", post(g::update_tenant))
        .route("/tenants/get", get(g::tenant))
        .route("/tenants/list", get(g::tenants))
        .route("/tenants/delete", post(g::delete_tenant))
        .route("/tenants/create_api_key", post(g::create_key))
        .route("/tenants/revoke_api_key", post(g::revoke_key))
        .route("/accounts/add", post(g::add_account))
        .route("/accounts/add_pec", post(g::add_pec_account))
        .route("/accounts/get", get(g::account))
        .route("/accounts/list", get(g::accounts))
        .route("/accounts/list_pec", get(g::pec_accounts))
        .route("/accounts/get_pec_ids", get(g::pec_account_ids))
        .route("/accounts/delete", post(g::delete_account))
        .route("/messages/add_batch", post(c::add_messages))
        .route("/messages/add", post(g::add_message))
        .route("/messages/get", get(g::message))
        .route("/messages/list", get(g::messages))
        .route("/messages/delete_batch", post(g::delete_messages))
        .route("/messages/delete", post(g::delete_message))
        .route("/messages/count_active", get(g::count_active))
        .route("/messages/count_pending_for_tenant", get(g::count_pending))
        .route("/messages/cleanup", get(g::cleanup).post(g::cleanup))
        .route("/command_log/list", get(g::command_log))
        .route("/command_log/get", get(g::command))
        .route("/command_log/export", get(g::command_log_export))
        .route("/command_log/purge", post(g::purge_command_log))
        .route("/storages/add", post(g::add_storage))
        .route("/storages/delete", post(g::delete_storage))
        .route("/storages/get", get(g::storage))
        .route("/storages/list", get(g::storages))
        .fallback(health::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record::record,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::refuse_cross_site,
        ))
        .with_state(state)
}
