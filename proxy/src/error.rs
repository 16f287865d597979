//! `AppError`: the one place where failures become HTTP responses (PROTOCOL.md §3.2). Every error is
//! a JSON body `{"detail": ...}` with the right status; client input never causes a 500.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tracing::error;

use crate::{api::OpError, store::StoreError};

/// An HTTP error with the contract's `detail`.
#[derive(Debug)]
pub struct AppError {
    /// Status code.
    pub status: StatusCode,
    /// `detail` value: a string, or an object or list for validation errors.
    pub detail: Value,
}

impl AppError {
    /// An error with a string detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        AppError {
            status,
            detail: Value::String(detail.into()),
        }
    }

    /// 400 with a reason.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404 with a reason.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 404 `Tenant 'x' not found`.
    pub fn tenant_not_found(id: &str) -> Self {
        Self::not_found(format!("Tenant '{id}' not found"))
    }

    /// 422 in the schema-error shape: `[{"loc": ["body", field], "msg", "type"}]`.
    pub fn unprocessable(field: &str, msg: &str, kind: &str) -> Self {
        let loc = if field.is_empty() {
            json!(["body"])
        } else {
            json!(["body", field])
        };
        AppError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{"loc": loc, "msg": msg, "type": kind}]),
        }
    }

    /// 422 for a missing required field.
    pub fn missing(field: &str) -> Self {
        Self::unprocessable(field, "field required", "missing")
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"detail": self.detail}))).into_response()
    }
}

impl From<OpError> for AppError {
    /// The status and text of a failed operation, as the generated dialect (and the classic one,
    /// except where its routes document other codes) answers it.
    fn from(e: OpError) -> Self {
        let status = match e {
            OpError::Store(inner) => return inner.into(),
            OpError::TenantNotFound(_)
            | OpError::AccountNotFound(_)
            | OpError::MessageNotFound(_)
            | OpError::StorageNotFound(_)
            | OpError::CommandNotFound(_) => StatusCode::NOT_FOUND,
            OpError::OtherTenant => StatusCode::UNAUTHORIZED,
            OpError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpError::Missing(field) => return AppError::missing(field),
            OpError::Field(_) | OpError::Refused(_) => StatusCode::BAD_REQUEST,
            OpError::BatchTooLarge => {
                return AppError {
                    status: StatusCode::BAD_REQUEST,
                    detail: json!({"error": e.to_string(), "rejected": []}),
                };
            }
            OpError::AllSuspended => StatusCode::CONFLICT,
        };
        AppError::new(status, e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let unavailable = matches!(
            &e,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            )
        );
        if unavailable {
            error!(error = %e, "Database unavailable.");
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
        } else {
            error!(error = %e, "Internal error.");
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
        }
    }
}

/// Result alias of handlers.
pub type ApiResult<T = Json<Value>> = Result<T, AppError>;
