//! The route table: every handler registered once, through `utoipa-axum`, so the router and
//! the OpenAPI document's paths are one declaration (each path is written only in its
//! handler's `#[utoipa::path]`). One file per audience: `admin` (organiser), `feed` (the
//! event log for outside readers), `buyer` (public and buyer routes), `ops` (health,
//! readiness, metrics, OpenAPI).

pub(crate) mod admin;
pub(crate) mod attendees;
pub(crate) mod buyer;
pub(crate) mod catalog;
pub(crate) mod feed;
pub(crate) mod keys;
pub(crate) mod ops;
pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod room;
pub(crate) mod stream;
pub(crate) mod webhooks;

use taquilla_domain::{Command, HoldId, OrderId, Outcome, SaleId};
use taquilla_engine::{Engine, Envelope};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Code};
use crate::ids::{PublicHoldId, PublicOrderId, PublicSaleId};

/// Every route, with its OpenAPI description.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .routes(routes!(admin::create_sale))
        .routes(routes!(admin::create_ticket_type))
        .routes(routes!(admin::create_quota))
        .routes(routes!(admin::open))
        .routes(routes!(admin::pause))
        .routes(routes!(admin::close))
        .routes(routes!(catalog::archive))
        .routes(routes!(catalog::edit_ticket_type))
        .routes(routes!(catalog::edit_quota))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::checkin))
        .routes(routes!(attendees::export))
        .routes(routes!(admin::refund))
        .routes(routes!(admin::cancel_order))
        .routes(routes!(admin::get_order))
        .routes(routes!(orders::list_orders))
        .routes(routes!(admin::confirm_payment))
        .routes(routes!(admin::buyer_token))
        .routes(routes!(keys::create_api_key, keys::list_api_keys))
        .routes(routes!(keys::revoke_api_key))
        .routes(routes!(feed::feed))
        .routes(routes!(buyer::list_sales))
        .routes(routes!(buyer::get_sale))
        .routes(routes!(stream::stream))
        .routes(routes!(buyer::place_hold))
        .routes(routes!(buyer::get_hold, buyer::release_hold))
        .routes(routes!(buyer::checkout))
        .routes(routes!(buyer::get_order))
        .routes(routes!(buyer::pay))
        .routes(routes!(buyer::cancel_order))
        .routes(routes!(webhooks::stripe))
        .routes(routes!(room::configure))
        .routes(routes!(room::join, room::status, room::leave))
}

/// Public ids from the path. A malformed id cannot name anything that exists: 404, like an
/// unknown one.
pub(crate) fn sale_of(event_id: &str) -> Result<SaleId, ApiError> {
    PublicSaleId::parse(event_id)
        .map(|p| p.0)
        .ok_or_else(|| ApiError::not_found("event"))
}

pub(crate) fn hold_of(hold_id: &str) -> Result<(SaleId, HoldId), ApiError> {
    PublicHoldId::parse(hold_id)
        .map(|p| (p.0, p.1))
        .ok_or_else(|| ApiError::not_found("hold"))
}

pub(crate) fn order_of(order_id: &str) -> Result<(SaleId, OrderId), ApiError> {
    PublicOrderId::parse(order_id)
        .map(|p| (p.0, p.1))
        .ok_or_else(|| ApiError::not_found("order"))
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
