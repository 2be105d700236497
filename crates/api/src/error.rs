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
use crate::keys::{KeysError, Scope, Scopes};
use crate::named::{ConflictReasonName, Named, named_schema};
use crate::time::Rfc3339;

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

        impl Named for Code {
            const SCHEMA: &'static str = "ErrorCode";
            fn name(&self) -> &'static str {
                self.as_str()
            }
            fn names() -> Vec<&'static str> {
                Code::ALL.iter().map(|c| c.as_str()).collect()
            }
        }

        named_schema!(Code);
    };
}

error_codes! {
    MalformedRequest => (BAD_REQUEST, "malformed_request"),
    HeadersTooLarge => (REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
    UriTooLong => (URI_TOO_LONG, "uri_too_long"),
    Invalid => (UNPROCESSABLE_ENTITY, "invalid"),
    Unauthorized => (UNAUTHORIZED, "unauthorized"),
    Forbidden => (FORBIDDEN, "forbidden"),
    InsufficientScope => (FORBIDDEN, "insufficient_scope"),
    PaymentMethodDisabled => (FORBIDDEN, "payment_method_disabled"),
    AdmissionRequired => (FORBIDDEN, "admission_required"),
    InvalidSignature => (BAD_REQUEST, "invalid_signature"),
    NotFound => (NOT_FOUND, "not_found"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    SoldOut => (CONFLICT, "sold_out"),
    InsufficientInventory => (CONFLICT, "insufficient_inventory"),
    SaleNotOpen => (CONFLICT, "sale_not_open"),
    HoldExpired => (CONFLICT, "hold_expired"),
    HoldEnded => (GONE, "hold_ended"),
    IdempotencyConflict => (CONFLICT, "idempotency_conflict"),
    AlreadyCheckedIn => (CONFLICT, "already_checked_in"),
    AlreadyExists => (CONFLICT, "already_exists"),
    Conflict => (CONFLICT, "conflict"),
    LimitExceeded => (UNPROCESSABLE_ENTITY, "limit_exceeded"),
    TooManySales => (UNPROCESSABLE_ENTITY, "too_many_sales"),
    TooManyKeys => (UNPROCESSABLE_ENTITY, "too_many_keys"),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited"),
    Overloaded => (SERVICE_UNAVAILABLE, "overloaded"),
    QueueFull => (SERVICE_UNAVAILABLE, "queue_full"),
    StorageFull => (SERVICE_UNAVAILABLE, "storage_full"),
    TooManySubscribers => (SERVICE_UNAVAILABLE, "too_many_subscribers"),
    PaymentUnavailable => (SERVICE_UNAVAILABLE, "payment_unavailable"),
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
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Code::HeadersTooLarge,
            StatusCode::URI_TOO_LONG => Code::UriTooLong,
            StatusCode::UNAUTHORIZED => Code::Unauthorized,
            StatusCode::FORBIDDEN => Code::Forbidden,
            StatusCode::UNPROCESSABLE_ENTITY => Code::Invalid,
            StatusCode::TOO_MANY_REQUESTS => Code::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => Code::Unavailable,
            s if s.is_client_error() => Code::MalformedRequest,
            _ => Code::Internal,
        }
    }
}

/// An error answer. `correlation_id` is filled in by the request layer (`request_layer.rs`) when the
/// handler did not know it.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Option<ErrorDetails>,
    /// Seconds for `Retry-After` on a `503` or `429`, when the cause knows better than the default.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
    pub fn with_details(mut self, details: ErrorDetails) -> Self {
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
    /// Stable, snake_case: branch on it. The status of each code is fixed (README, "Errors").
    pub code: Code,
    /// For people; may change.
    pub message: String,
    /// The request's `X-Correlation-Id`, given or generated.
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
}

/// What some errors say beyond their code. Only the fields of the error at hand are present.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct ErrorDetails {
    /// `conflict`: why the command does not apply in the current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ConflictReasonName>,
    /// `sold_out`, `insufficient_inventory`: the ticket type that is short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_type_id: Option<u32>,
    /// `insufficient_inventory`: how many are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// `limit_exceeded`: the sale's per-buyer limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `limit_exceeded`: tickets the buyer already has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u32>,
    /// `already_checked_in`: when the ticket was checked in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_in_at: Option<Rfc3339>,
    /// `insufficient_scope`: the scopes any one of which the route takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Scope>>)]
    pub required_scopes: Option<Scopes>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The request layer (`request_layer.rs`) rewrites the body with the request's id; until then
        // the error travels as an extension.
        let status = self.code.status();
        let mut res = status.into_response();
        res.extensions_mut().insert(PendingError(std::sync::Arc::new(self)));
        res
    }
}

/// An error waiting for the request layer (`request_layer.rs`) to render it.
#[derive(Clone)]
pub struct PendingError(pub std::sync::Arc<ApiError>);

/// Renders an error body with the request's correlation id.
pub fn render(err: &ApiError, correlation: &CorrelationId) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: err.code,
            message: err.message.clone(),
            correlation_id: correlation.as_str().to_string(),
            details: err.details.clone(),
        },
    };
    let mut res = (err.code.status(), axum::Json(body)).into_response();
    if matches!(
        err.code,
        Code::Overloaded
            | Code::Unavailable
            | Code::PaymentUnavailable
            | Code::StorageFull
            | Code::RateLimited
            | Code::QueueFull
            | Code::TooManySubscribers
    ) {
        let secs = err
            .retry_after_secs
            .unwrap_or(u64::from(crate::limits::RETRY_AFTER_SECS));
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
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
            Rejection::HoldEnded => Code::HoldEnded,
            Rejection::NotFound(_) => Code::NotFound,
            Rejection::Invalid(_) => Code::Invalid,
            Rejection::AlreadyExists => Code::AlreadyExists,
            Rejection::AlreadyCheckedIn { .. } => Code::AlreadyCheckedIn,
            Rejection::IdempotencyConflict => Code::IdempotencyConflict,
            Rejection::Conflict(_) => Code::Conflict,
            Rejection::AdmissionRequired => Code::AdmissionRequired,
            Rejection::QueueFull => Code::QueueFull,
        };
        let details = match &r {
            Rejection::SoldOut { ticket_type } => Some(ErrorDetails {
                ticket_type_id: Some(ticket_type.0),
                ..ErrorDetails::default()
            }),
            Rejection::InsufficientInventory { ticket_type, available } => Some(ErrorDetails {
                ticket_type_id: Some(ticket_type.0),
                available: Some(*available),
                ..ErrorDetails::default()
            }),
            Rejection::LimitExceeded { limit, current } => Some(ErrorDetails {
                limit: Some(*limit),
                current: Some(*current),
                ..ErrorDetails::default()
            }),
            Rejection::AlreadyCheckedIn { at } => Some(ErrorDetails {
                checked_in_at: Some(Rfc3339(*at)),
                ..ErrorDetails::default()
            }),
            Rejection::Conflict(reason) => Some(ErrorDetails {
                reason: Some(ConflictReasonName(*reason)),
                ..ErrorDetails::default()
            }),
            _ => None,
        };
        ApiError {
            code,
            message: r.to_string(),
            details,
            retry_after_secs: None,
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
            EngineError::StorageFull => ApiError::new(
                Code::StorageFull,
                "the server's disk is full: nothing was changed; reads still work; retry after the Retry-After delay",
            )
            .retry_after(taquilla_engine::limits::STORAGE_FULL_RETRY_MS.div_ceil(1000)),
            EngineError::SaleNotFound => ApiError::not_found("event"),
            EngineError::TooManySales => ApiError::new(Code::TooManySales, e.to_string()),
            EngineError::BatchTooLarge => ApiError::invalid(e.to_string()),
            EngineError::Stopped | EngineError::Log(_) | EngineError::Recovery(_) | EngineError::Config(_) => {
                ApiError::new(Code::Unavailable, "the engine is not taking commands")
            }
        }
    }
}

impl From<KeysError> for ApiError {
    fn from(e: KeysError) -> Self {
        match e {
            KeysError::NotFound(what) => ApiError::new(Code::NotFound, format!("{what} not found")),
            KeysError::TooMany(m) => ApiError::new(Code::TooManyKeys, m),
            KeysError::Invalid(m) => ApiError::invalid(m),
            KeysError::Io { .. } | KeysError::Corrupt { .. } => {
                tracing::error!(error = %e, "the keys file cannot be changed");
                ApiError::new(Code::Unavailable, "the keys file cannot be changed now")
            }
        }
    }
}
