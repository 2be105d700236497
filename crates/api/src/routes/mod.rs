//! The route table. One file per audience: `admin` (organiser), `buyer` (public and buyer
//! routes), `ops` (health, readiness, metrics, OpenAPI).

pub(crate) mod admin;
pub(crate) mod buyer;
pub(crate) mod ops;

use axum::Router;
use axum::routing::{get, post};
use taquilla_domain::{Command, HoldId, OrderId, Outcome, SaleId};
use taquilla_engine::{Engine, Envelope};

use crate::AppState;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Code};
use crate::ids;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/admin/events", post(admin::create_event))
        .route(
            "/v1/admin/events/{event_id}/ticket-types",
            post(admin::create_ticket_type),
        )
        .route("/v1/admin/events/{event_id}/quotas", post(admin::create_quota))
        .route("/v1/admin/events/{event_id}/open", post(admin::open))
        .route("/v1/admin/events/{event_id}/pause", post(admin::pause))
        .route("/v1/admin/events/{event_id}/close", post(admin::close))
        .route("/v1/admin/events/{event_id}/stats", get(admin::stats))
        .route("/v1/admin/events/{event_id}/checkins", post(admin::checkin))
        .route("/v1/admin/orders/{order_id}/refund", post(admin::refund))
        .route("/v1/admin/orders/{order_id}/cancel", post(admin::cancel_order))
        .route("/v1/admin/buyer-tokens", post(admin::buyer_token))
        .route("/v1/admin/feed", get(admin::feed))
        .route("/v1/events", get(buyer::list_events))
        .route("/v1/events/{event_id}", get(buyer::get_event))
        .route("/v1/events/{event_id}/holds", post(buyer::create_hold))
        .route("/v1/holds/{hold_id}", get(buyer::get_hold).delete(buyer::release_hold))
        .route("/v1/holds/{hold_id}/checkout", post(buyer::checkout))
        .route("/v1/orders/{order_id}", get(buyer::get_order))
        .route("/v1/orders/{order_id}/pay", post(buyer::pay))
        .route("/v1/orders/{order_id}/cancel", post(buyer::cancel_order))
}

/// Public ids from the path. A malformed id cannot name anything that exists: 404, like an
/// unknown one.
pub(crate) fn sale_of(event_id: &str) -> Result<SaleId, ApiError> {
    ids::parse_event_id(event_id).ok_or_else(|| ApiError::not_found("event"))
}

pub(crate) fn hold_of(hold_id: &str) -> Result<(SaleId, HoldId), ApiError> {
    ids::parse_hold_id(hold_id).ok_or_else(|| ApiError::not_found("hold"))
}

pub(crate) fn order_of(order_id: &str) -> Result<(SaleId, OrderId), ApiError> {
    ids::parse_order_id(order_id).ok_or_else(|| ApiError::not_found("order"))
}

/// Sends a command and waits until it is durable (or rejected).
pub(crate) async fn exec(
    engine: &Engine,
    sale: SaleId,
    command: Command,
    correlation: &CorrelationId,
) -> Result<Outcome, ApiError> {
    let env = Envelope {
        sale,
        command,
        correlation_id: Some(correlation.to_compact()),
    };
    Ok(engine.submit(env)?.await?)
}

/// An outcome of another kind than the command produces: a bug, reported as one.
pub(crate) fn unexpected(outcome: Outcome) -> ApiError {
    tracing::error!(?outcome, "unexpected outcome");
    ApiError::new(Code::Internal, "unexpected outcome")
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
}
