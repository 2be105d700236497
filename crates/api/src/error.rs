//! Every error the API can answer, in one table: code → HTTP status (meilisearch's
//! `make_error_codes!` shape). The body is always
//! `{"error": {"code", "message", "correlation_id", "details"?}}`; clients branch on `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use taquilla_domain::Rejection;
use taquilla_engine::EngineError;
use utoipa::ToSchema;

use crate::correlation::CorrelationId;

macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $code:literal)),* $(,)?) => {
        /// The stable error codes of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $($variant),* }

        impl Code {
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }
            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status),* }
            }
            /// Every code, for documentation and tests.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];
        }
    };
}

error_codes! {
    MalformedRequest => (BAD_REQUEST, "malformed_request"),
    Invalid => (UNPROCESSABLE_ENTITY, "invalid"),
    Unauthorized => (UNAUTHORIZED, "unauthorized"),
    Forbidden => (FORBIDDEN, "forbidden"),
    TestPaymentsDisabled => (FORBIDDEN, "test_payments_disabled"),
    NotFound => (NOT_FOUND, "not_found"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    SoldOut => (CONFLICT, "sold_out"),
    InsufficientInventory => (CONFLICT, "insufficient_inventory"),
    SaleNotOpen => (CONFLICT, "sale_not_open"),
    HoldExpired => (CONFLICT, "hold_expired"),
    IdempotencyConflict => (CONFLICT, "idempotency_conflict"),
    AlreadyCheckedIn => (CONFLICT, "already_checked_in"),
    AlreadyExists => (CONFLICT, "already_exists"),
    Conflict => (CONFLICT, "conflict"),
    LimitExceeded => (UNPROCESSABLE_ENTITY, "limit_exceeded"),
    TooManySales => (UNPROCESSABLE_ENTITY, "too_many_sales"),
    Overloaded => (SERVICE_UNAVAILABLE, "overloaded"),
    Unavailable => (SERVICE_UNAVAILABLE, "unavailable"),
    Internal => (INTERNAL_SERVER_ERROR, "internal"),
}

impl Code {
    /// The code for a bare status from a layer that did not say more.
    pub fn from_status(s: StatusCode) -> Code {
        match s {
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
            StatusCode::UNAUTHORIZED => Code::Unauthorized,
            StatusCode::FORBIDDEN => Code::Forbidden,
            StatusCode::UNPROCESSABLE_ENTITY => Code::Invalid,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => Code::Unavailable,
            s if s.is_client_error() => Code::MalformedRequest,
            _ => Code::Internal,
        }
    }
}

/// Seconds a client should wait before retrying after `overloaded` / `unavailable`.
pub const RETRY_AFTER_SECS: u32 = 1;

/// An error answer. `correlation_id` is filled in by the front layer (`front.rs`) when the
/// handler did not know it.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn not_found(what: &str) -> Self {
        ApiError::new(Code::NotFound, format!("{what} not found"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(Code::Invalid, message)
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; see the table in the README.
    pub code: &'static str,
    pub message: String,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The front layer (`front.rs`) rewrites the body with the request's id; until then
        // the error travels as an extension.
        let status = self.code.status();
        let mut res = status.into_response();
        res.extensions_mut().insert(PendingError(std::sync::Arc::new(self)));
        res
    }
}

/// An error waiting for the front layer (`front.rs`) to render it.
#[derive(Clone)]
pub struct PendingError(pub std::sync::Arc<ApiError>);

/// Renders an error body with the request's correlation id.
pub fn render(err: &ApiError, correlation: &CorrelationId) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: err.code.as_str(),
            message: err.message.clone(),
            correlation_id: correlation.as_str().to_string(),
            details: err.details.clone(),
        },
    };
    let mut res = (err.code.status(), axum::Json(body)).into_response();
    if matches!(err.code, Code::Overloaded | Code::Unavailable) {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    res
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let code = match &r {
            Rejection::SoldOut { .. } => Code::SoldOut,
            Rejection::InsufficientInventory { .. } => Code::InsufficientInventory,
            Rejection::LimitExceeded { .. } => Code::LimitExceeded,
            Rejection::SaleNotOpen => Code::SaleNotOpen,
            Rejection::HoldExpired => Code::HoldExpired,
            Rejection::NotFound(_) => Code::NotFound,
            Rejection::Invalid(_) => Code::Invalid,
            Rejection::AlreadyExists => Code::AlreadyExists,
            Rejection::AlreadyCheckedIn { .. } => Code::AlreadyCheckedIn,
            Rejection::IdempotencyConflict => Code::IdempotencyConflict,
            Rejection::Conflict(_) => Code::Conflict,
        };
        let details = match &r {
            Rejection::SoldOut { ticket_type } => Some(serde_json::json!({ "ticket_type_id": ticket_type.0 })),
            Rejection::InsufficientInventory { ticket_type, available } => {
                Some(serde_json::json!({ "ticket_type_id": ticket_type.0, "available": available }))
            }
            Rejection::LimitExceeded { limit, current } => {
                Some(serde_json::json!({ "limit": limit, "current": current }))
            }
            Rejection::AlreadyCheckedIn { at } => {
                Some(serde_json::json!({ "checked_in_at": crate::views::rfc3339(*at) }))
            }
            _ => None,
        };
        ApiError {
            code,
            message: r.to_string(),
            details,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(r) => r.into(),
            EngineError::Overloaded => {
                ApiError::new(Code::Overloaded, "the sale is busy; retry after the Retry-After delay")
            }
            EngineError::SaleNotFound => ApiError::not_found("event"),
            EngineError::TooManySales => ApiError::new(Code::TooManySales, e.to_string()),
            EngineError::BatchTooLarge => ApiError::invalid(e.to_string()),
            EngineError::Stopped | EngineError::Log(_) | EngineError::Recovery(_) | EngineError::Config(_) => {
                ApiError::new(Code::Unavailable, "the engine is not taking commands")
            }
        }
    }
}
