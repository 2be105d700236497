//! Catalog edits after creation (organiser): a ticket type's name, price and per-order
//! maximum, a quota's capacity, and archiving a sale (hidden from the public). Each is a
//! domain command (`decide_catalog.rs`), so it is decided by the sale's one writer between
//! holds and never lets a quota go below what it holds and sold.

use axum::Extension;
use axum::extract::State;
use taquilla_domain::{Command, MoneyMinor, Name, QuotaId, SaleId, SaleStatus, TicketTypeId};

use super::{exec, sale_of};
use crate::AppState;
use crate::auth::Admin;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiPath2, Idempotency};
use crate::json::Json;
use crate::requests::{EditQuotaRequest, EditTicketTypeRequest};
use crate::views::{QuotaView, SaleView, TicketTypeView};

/// The organiser's command under its `Idempotency-Key`, if the request has one.
pub(crate) fn keyed(command: Command, idempotency: Idempotency) -> Result<Command, ApiError> {
    Ok(match idempotency.0? {
        Some(key) => Command::Keyed {
            key,
            command: Box::new(command),
        },
        None => command,
    })
}

/// A ticket type's or quota's index from the path: `404` when it is not one.
fn index(s: &str, what: &'static str) -> Result<u32, ApiError> {
    let well_formed = !s.is_empty() && (s == "0" || !s.starts_with('0')) && s.bytes().all(|b| b.is_ascii_digit());
    well_formed
        .then(|| s.parse().ok())
        .flatten()
        .ok_or_else(|| ApiError::not_found(what))
}

#[utoipa::path(patch, path = "/v1/admin/events/{event_id}/ticket-types/{ticket_type_id}", tag = "admin",
    params(("event_id" = String, Path), ("ticket_type_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–64 printable characters; a retry with the same key and body answers as the first did")), request_body = EditTicketTypeRequest,
    responses((status = 200, body = TicketTypeView, description = "The ticket type as it is now; a new price applies to holds placed from now on"),
        (status = 409, body = ErrorBody, description = "`conflict`: the sale is closed or archived (`details.reason`); `idempotency_conflict`: the key was used with another request")),
    security(("admin" = ["admin"])))]
pub(crate) async fn edit_ticket_type(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath2(event_id, type_id): ApiPath2,
    idempotency: Idempotency,
    ApiJson(req): ApiJson<EditTicketTypeRequest>,
) -> Result<Json<TicketTypeView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let ticket_type = TicketTypeId(index(&type_id, "ticket_type")?);
    let name = req
        .name
        .as_deref()
        .map(|s| Name::parse(s).map_err(|e| ApiError::invalid(format!("name: {}", e.reason))))
        .transpose()?;
    let price = req
        .price_minor
        .map(|p| MoneyMinor::new(p).map_err(|e| ApiError::invalid(format!("price_minor: {}", e.reason))))
        .transpose()?;
    let cmd = Command::EditTicketType {
        ticket_type,
        name,
        price,
        max_per_order: req.max_per_order,
    };
    let engine = state.engine()?;
    exec(engine, sale, keyed(cmd, idempotency)?, &corr).await?;
    let view = engine.read(sale, |s| TicketTypeView::new(s, ticket_type)).flatten();
    view.map(Json).ok_or_else(|| ApiError::not_found("ticket_type"))
}

#[utoipa::path(patch, path = "/v1/admin/events/{event_id}/quotas/{quota_id}", tag = "admin",
    params(("event_id" = String, Path), ("quota_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–64 printable characters; a retry with the same key and body answers as the first did")), request_body = EditQuotaRequest,
    responses((status = 200, body = QuotaView, description = "The quota with its new capacity"),
        (status = 409, body = ErrorBody, description = "`conflict`: the capacity is below what the quota holds and sold (`details.reason` `capacity_below_usage`), or the sale is closed or archived; `idempotency_conflict`: the key was used with another request")),
    security(("admin" = ["admin"])))]
pub(crate) async fn edit_quota(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath2(event_id, quota_id): ApiPath2,
    idempotency: Idempotency,
    ApiJson(req): ApiJson<EditQuotaRequest>,
) -> Result<Json<QuotaView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let quota = QuotaId(index(&quota_id, "quota")?);
    let cmd = Command::SetQuotaCapacity {
        quota,
        capacity: req.capacity,
    };
    let engine = state.engine()?;
    exec(engine, sale, keyed(cmd, idempotency)?, &corr).await?;
    let view = engine.read(sale, |s| QuotaView::new(s, quota)).flatten();
    view.map(Json).ok_or_else(|| ApiError::not_found("quota"))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/archive", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = SaleView, description = "Archived: hidden from the public (`404` on its page, not listed); final"),
        (status = 409, body = ErrorBody, description = "`conflict`: an open sale is paused or closed first (`details.reason` `status_transition`)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn archive(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<SaleView>, ApiError> {
    let sale: SaleId = sale_of(&event_id)?;
    let engine = state.engine()?;
    exec(engine, sale, Command::SetStatus(SaleStatus::Archived), &corr).await?;
    let view = engine.read(sale, |s| SaleView::new(sale, s)).flatten();
    view.map(Json).ok_or_else(|| ApiError::not_found("event"))
}
