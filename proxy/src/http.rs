//! The REST API (PROTOCOL.md §3): both dialects, the classic hand-written routes the pressure setup
//! uses and the generated `/{entity}/{method}` routes, as aliases of the same operations, with
//! one authentication model. [`router`] lists every route.
//!
//! Layout: [`auth`] (tokens and scopes), [`input`] (JSON bodies and query parameters in the
//! contract's error shapes), [`record`] (the command log of state-changing calls), then one
//! file per resource: [`health_v1`], [`tenants_v1`], [`accounts_v1`], [`messages_v1`],
//! [`commands_v1`], [`instance_v1`] (the instance and the command log), [`storages_v1`].

pub mod accounts_v1;
pub mod auth;
pub mod commands_v1;
pub mod health_v1;
pub mod input;
pub mod instance_v1;
pub mod messages_v1;
pub mod origin;
pub mod record;
pub mod storages_v1;
pub mod tenants_v1;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
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
    use accounts_v1 as acc;
    use commands_v1 as cmd;
    use health_v1 as health;
    use instance_v1 as inst;
    use messages_v1 as msg;
    use tenants_v1 as ten;
    Router::new()
        // Public and token-only.
        .route("/health", get(health::health))
        .route("/instance/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/status", get(health::status))
        .route("/instance/status", get(health::status))
        // Classic dialect.
        .route("/commands/run-now", post(cmd::run_now))
        .route("/commands/suspend", post(cmd::suspend_classic))
        .route("/commands/activate", post(cmd::activate_classic))
        .route("/commands/add-messages", post(msg::add_classic))
        .route("/commands/delete-messages", post(msg::delete_classic))
        .route("/commands/cleanup-messages", post(msg::cleanup_classic))
        .route("/account", post(acc::add_classic))
        .route("/accounts", get(acc::list_classic))
        .route(
            "/account/{account_id}",
            axum::routing::delete(acc::delete_classic),
        )
        .route("/messages", get(msg::list_classic))
        .route("/tenant", post(ten::add_classic))
        .route("/tenants", get(ten::list_classic))
        .route("/tenants/sync-status", get(ten::sync_status))
        .route(
            "/tenant/{id}",
            get(ten::get_classic)
                .put(ten::update_classic)
                .delete(ten::delete_classic),
        )
        .route(
            "/tenant/{id}/api-key",
            post(ten::create_key_classic).delete(ten::revoke_key_classic),
        )
        .route("/instance", get(inst::get_classic).put(inst::update))
        .route("/instance/reload-bounce", post(inst::reload_bounce))
        .route("/instance/upgrade-to-ee", post(inst::upgrade_to_ee))
        .route("/command-log", get(inst::list_classic))
        .route("/command-log/export", get(inst::export_classic))
        // Generated dialect.
        .route("/instance/get", get(inst::get_generated))
        .route("/instance/update", post(inst::update))
        .route("/instance/upgrade_to_ee", post(inst::upgrade_to_ee))
        .route("/instance/get_bounce_config", get(inst::bounce_config))
        .route("/instance/set_bounce_config", post(inst::update))
        .route("/instance/reload_bounce", post(inst::reload_bounce))
        .route("/command_log/list", get(inst::list_generated))
        .route("/command_log/get", get(inst::get_command))
        .route("/command_log/export", get(inst::export_generated))
        .route("/command_log/purge", post(inst::purge))
        .route("/storages/add", post(storages_v1::add))
        .route("/storages/delete", post(storages_v1::delete))
        .route("/storages/get", get(storages_v1::get))
        .route("/storages/list", get(storages_v1::list))
        .route("/accounts/add_pec", post(acc::add_pec))
        .route("/accounts/list_pec", get(acc::list_pec))
        .route("/accounts/get_pec_ids", get(acc::pec_ids))
        .route("/messages/delete", post(msg::delete_one_generated))
        .route("/instance/run_now", post(cmd::run_now))
        .route("/instance/suspend", post(cmd::suspend_generated))
        .route("/instance/activate", post(cmd::activate_generated))
        .route("/tenants/suspend_batch", post(cmd::suspend_generated))
        .route("/tenants/activate_batch", post(cmd::activate_generated))
        .route(
            "/tenants/get_suspended_batches",
            get(cmd::suspended_generated),
        )
        .route("/instance/get_sync_status", get(ten::sync_status))
        .route("/tenants/add", post(ten::add_generated))
        .route("/tenants/update", post(ten::update_generated))
        .route("/tenants/get", get(ten::get_generated))
        .route("/tenants/list", get(ten::list_generated))
        .route("/tenants/delete", post(ten::delete_generated))
        .route("/tenants/create_api_key", post(ten::create_key_generated))
        .route("/tenants/revoke_api_key", post(ten::revoke_key_generated))
        .route("/accounts/add", post(acc::add_generated))
        .route("/accounts/get", get(acc::get_generated))
        .route("/accounts/list", get(acc::list_generated))
        .route("/accounts/delete", post(acc::delete_generated))
        .route("/messages/add_batch", post(msg::add_batch_generated))
        .route("/messages/add", post(msg::add_one_generated))
        .route("/messages/get", get(msg::get_generated))
        .route("/messages/list", get(msg::list_generated))
        .route("/messages/delete_batch", post(msg::delete_batch_generated))
        .route("/messages/count_active", get(msg::count_active))
        .route(
            "/messages/count_pending_for_tenant",
            get(msg::count_pending_for_tenant),
        )
        .route(
            "/messages/cleanup",
            get(msg::cleanup_generated).post(msg::cleanup_generated),
        )
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
