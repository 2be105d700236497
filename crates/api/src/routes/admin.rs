//! Organiser routes (`Authorization: Bearer <admin token or API key>`): catalog, sale status,
//! buyer tokens, stats, check-in, refunds and cancellations. Each handler's extractor names
//! the scopes it takes (`auth::Admin`, `Door`, `Reporting`, `Stats`).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use taquilla_domain::{
    Actor, BuyerId, Command, CreateSale, Currency, MoneyMinor, Name, OrderId, Outcome, PaymentRef, SaleId, SaleStatus,
    TicketCode, TicketTypeId, Timestamp, limits,
};

use super::{exec, order_of, sale_of, unexpected};
use crate::AppState;
use crate::auth::{Admin, Door, Reporting, Stats};
use crate::correlation::CorrelationId;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Idempotency};
use crate::ids::PublicOrderId;
use crate::json::{self, Json, JsonBody};
use crate::requests::{
    BuyerTokenRequest, CheckinRequest, ConfirmPaymentRequest, CreateQuotaRequest, CreateSaleRequest,
    CreateTicketTypeRequest, RefundRequest,
};
use crate::time::{Rfc3339, parse_rfc3339};
use crate::views::{
    AdminOrderView, BuyerTokenView, CheckinView, OrderView, QuotaView, SaleView, StatsView, TicketTypeView,
};

use crate::limits::{BUYER_TOKEN_TTL_SECS_DEFAULT, BUYER_TOKEN_TTL_SECS_MAX, BUYER_TOKEN_TTL_SECS_MIN};

fn name(s: &str) -> Result<Name, ApiError> {
    Name::parse(s).map_err(|e| ApiError::invalid(format!("name: {}", e.reason)))
}

fn sale_view(state: &AppState, sale: SaleId) -> Result<SaleView, ApiError> {
    state
        .engine()?
        .read(sale, |s| SaleView::new(sale, s))
        .flatten()
        .ok_or_else(|| ApiError::not_found("event"))
}

fn time(field: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    v.map(|s| parse_rfc3339(s).ok_or_else(|| ApiError::invalid(format!("{field}: expected an RFC 3339 time"))))
        .transpose()
}

fn create_sale_command(req: &CreateSaleRequest) -> Result<CreateSale, ApiError> {
    let currency = Currency::parse(&req.currency).map_err(|e| ApiError::invalid(format!("currency: {}", e.reason)))?;
    let ttl_secs = req.hold_ttl_secs.unwrap_or(limits::HOLD_TTL_MS_DEFAULT / 1000);
    let hold_ttl_ms = ttl_secs
        .checked_mul(1000)
        .filter(|ms| (limits::HOLD_TTL_MS_MIN..=limits::HOLD_TTL_MS_MAX).contains(ms))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "hold_ttl_secs must be between {} and {}",
                limits::HOLD_TTL_MS_MIN / 1000,
                limits::HOLD_TTL_MS_MAX / 1000
            ))
        })?;
    let offline_payment_ttl_ms = req
        .offline_payment_ttl_secs
        .map(|secs| {
            secs.checked_mul(1000)
                .filter(|ms| (limits::HOLD_TTL_MS_MIN..=limits::OFFLINE_PAYMENT_TTL_MS_MAX).contains(ms))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "offline_payment_ttl_secs must be between {} and {}",
                        limits::HOLD_TTL_MS_MIN / 1000,
                        limits::OFFLINE_PAYMENT_TTL_MS_MAX / 1000
                    ))
                })
        })
        .transpose()?;
    Ok(CreateSale {
        offline_payment_ttl_ms,
        name: name(&req.name)?,
        currency,
        hold_ttl_ms,
        max_tickets_per_buyer: req.max_tickets_per_buyer,
        opens_at: time("opens_at", req.opens_at.as_deref())?,
        closes_at: time("closes_at", req.closes_at.as_deref())?,
    })
}

#[utoipa::path(post, path = "/v1/admin/events", tag = "admin", request_body = CreateSaleRequest,
    responses((status = 201, body = SaleView, description = "A draft sale; add ticket types and quotas, then open it"), (status = 422, body = ErrorBody, description = "`too_many_sales`: the server holds its maximum number of sales; `invalid`: `closes_at` not after `opens_at`")),
    security(("admin" = ["admin"])))]
pub(crate) async fn create_sale(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiJson(req): ApiJson<CreateSaleRequest>,
) -> Result<(StatusCode, Json<SaleView>), ApiError> {
    let cmd = create_sale_command(&req)?;
    let sale = state.engine()?.create_sale(cmd, Some(corr.to_compact())).await?;
    Ok((StatusCode::CREATED, Json(sale_view(&state, sale)?)))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/ticket-types", tag = "admin",
    params(("event_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–64 printable characters; a retry with the same key and body answers as the first did")), request_body = CreateTicketTypeRequest,
    responses((status = 201, body = TicketTypeView), (status = 409, body = ErrorBody, description = "`conflict`: the sale is closed (`details.reason`); `idempotency_conflict`: the key was used with another request")),
    security(("admin" = ["admin"])))]
pub(crate) async fn create_ticket_type(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
    idempotency: Idempotency,
    ApiJson(req): ApiJson<CreateTicketTypeRequest>,
) -> Result<(StatusCode, Json<TicketTypeView>), ApiError> {
    let sale = sale_of(&event_id)?;
    let price =
        MoneyMinor::new(req.price_minor).map_err(|e| ApiError::invalid(format!("price_minor: {}", e.reason)))?;
    let cmd = Command::AddTicketType {
        name: name(&req.name)?,
        price,
        max_per_order: req.max_per_order,
    };
    let engine = state.engine()?;
    match exec(engine, sale, super::catalog::keyed(cmd, idempotency)?, &corr).await? {
        Outcome::TicketTypeAdded(id) => {
            let view = engine.read(sale, |s| TicketTypeView::new(s, id)).flatten();
            Ok((
                StatusCode::CREATED,
                Json(view.ok_or_else(|| ApiError::not_found("event"))?),
            ))
        }
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/quotas", tag = "admin",
    params(("event_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–64 printable characters; a retry with the same key and body answers as the first did")), request_body = CreateQuotaRequest,
    responses((status = 201, body = QuotaView), (status = 409, body = ErrorBody, description = "`conflict`: the sale is closed (`details.reason`); `idempotency_conflict`: the key was used with another request")),
    security(("admin" = ["admin"])))]
pub(crate) async fn create_quota(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
    idempotency: Idempotency,
    ApiJson(req): ApiJson<CreateQuotaRequest>,
) -> Result<(StatusCode, Json<QuotaView>), ApiError> {
    let sale = sale_of(&event_id)?;
    if req.ticket_type_ids.len() > limits::QUOTA_TYPES_MAX {
        return Err(ApiError::invalid(format!(
            "at most {} ticket types per quota",
            limits::QUOTA_TYPES_MAX
        )));
    }
    let cmd = Command::AddQuota {
        name: name(&req.name)?,
        capacity: req.capacity,
        ticket_types: req.ticket_type_ids.iter().map(|&t| TicketTypeId(t)).collect(),
    };
    let engine = state.engine()?;
    match exec(engine, sale, super::catalog::keyed(cmd, idempotency)?, &corr).await? {
        Outcome::QuotaAdded(id) => {
            let view = engine.read(sale, |s| QuotaView::new(s, id)).flatten();
            Ok((
                StatusCode::CREATED,
                Json(view.ok_or_else(|| ApiError::not_found("event"))?),
            ))
        }
        other => Err(unexpected(other)),
    }
}

async fn set_status(
    state: AppState,
    corr: CorrelationId,
    event_id: String,
    status: SaleStatus,
) -> Result<Json<SaleView>, ApiError> {
    let sale = sale_of(&event_id)?;
    exec(state.engine()?, sale, Command::SetStatus(status), &corr).await?;
    Ok(Json(sale_view(&state, sale)?))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/open", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody, description = "`conflict`: not a valid status transition (`details.reason`)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn open(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<SaleView>, ApiError> {
    set_status(state, corr, event_id, SaleStatus::Open).await
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/pause", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody, description = "`conflict`: not a valid status transition (`details.reason`)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<SaleView>, ApiError> {
    set_status(state, corr, event_id, SaleStatus::Paused).await
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/close", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody, description = "`conflict`: not a valid status transition (`details.reason`)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn close(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<SaleView>, ApiError> {
    set_status(state, corr, event_id, SaleStatus::Closed).await
}

#[utoipa::path(get, path = "/v1/admin/events/{event_id}/stats", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = StatsView)), security(("admin" = ["door", "reporting", "admin"])))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    _: Stats,
    ApiPath(event_id): ApiPath,
) -> Result<Json<StatsView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let view = state.engine()?.read(sale, |s| StatsView::new(sale, s)).flatten();
    view.map(Json).ok_or_else(|| ApiError::not_found("event"))
}

fn ticket_code(s: &str) -> Result<TicketCode, ApiError> {
    TicketCode::parse(s).ok_or_else(|| ApiError::invalid("ticket_code: expected 26 characters of Crockford base32"))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/checkins", tag = "admin", params(("event_id" = String, Path)),
    request_body = CheckinRequest,
    responses((status = 200, body = CheckinView), (status = 409, body = ErrorBody, description = "`already_checked_in` (with `details.checked_in_at`), or `conflict`: the ticket was refunded (`details.reason`)")),
    security(("admin" = ["door", "admin"])))]
pub(crate) async fn checkin(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Door,
    ApiPath(event_id): ApiPath,
    ApiJson(req): ApiJson<CheckinRequest>,
) -> Result<Json<CheckinView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let code = ticket_code(&req.ticket_code)?;
    let engine = state.engine()?;
    match exec(engine, sale, Command::CheckIn { code }, &corr).await? {
        Outcome::CheckedIn { code, at } => {
            let ticket = engine.read(sale, |s| s.tickets.get(&code).copied()).flatten();
            let ticket = ticket.ok_or_else(|| ApiError::not_found("ticket"))?;
            Ok(Json(CheckinView {
                ticket_code: code.to_text(),
                order_id: PublicOrderId(sale, ticket.order),
                ticket_type_id: ticket.ticket_type.0,
                checked_in_at: Rfc3339(at),
            }))
        }
        other => Err(unexpected(other)),
    }
}

/// Any order as JSON (admin: no ownership check), encoded under the sale's read lock.
fn order_body(state: &AppState, sale: SaleId, order: OrderId) -> Result<JsonBody, ApiError> {
    let body = state.engine()?.read(sale, |s| {
        let o = s.orders.get(&order)?;
        Some(json::encode(&OrderView::new(sale, s, o, false)))
    });
    body.flatten().ok_or_else(|| ApiError::not_found("order"))
}

#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/refund", tag = "admin", params(("order_id" = String, Path)),
    request_body = RefundRequest,
    responses((status = 200, body = OrderView, description = "Refunded tickets return to inventory"), (status = 409, body = ErrorBody, description = "`conflict`: the order is not paid, or a ticket is already refunded (`details.reason`)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn refund(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(order_id): ApiPath,
    ApiJson(req): ApiJson<RefundRequest>,
) -> Result<JsonBody, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    let tickets = match req.ticket_codes {
        None => None,
        Some(codes) if codes.is_empty() || codes.len() > limits::REFUND_CODES_MAX => {
            return Err(ApiError::invalid(format!(
                "ticket_codes: 1 to {} codes",
                limits::REFUND_CODES_MAX
            )));
        }
        Some(codes) => Some(codes.iter().map(|c| ticket_code(c)).collect::<Result<Vec<_>, _>>()?),
    };
    exec(state.engine()?, sale, Command::Refund { order, tickets }, &corr).await?;
    order_body(&state, sale, order)
}

#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/cancel", tag = "admin", operation_id = "admin_cancel_order", params(("order_id" = String, Path)),
    responses((status = 200, body = OrderView, description = "Cancelled; its tickets are available again"), (status = 409, body = ErrorBody, description = "`conflict`: the order is not awaiting payment (`details.reason`)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn cancel_order(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(order_id): ApiPath,
) -> Result<JsonBody, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    let cmd = Command::CancelOrder {
        actor: Actor::Admin,
        order,
    };
    exec(state.engine()?, sale, cmd, &corr).await?;
    order_body(&state, sale, order)
}

#[utoipa::path(post, path = "/v1/admin/buyer-tokens", tag = "admin", request_body = BuyerTokenRequest,
    responses((status = 201, body = BuyerTokenView)), security(("admin" = ["admin"])))]
pub(crate) async fn buyer_token(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<BuyerTokenRequest>,
) -> Result<(StatusCode, Json<BuyerTokenView>), ApiError> {
    let buyer = BuyerId::parse(&req.buyer_id).map_err(|e| ApiError::invalid(format!("buyer_id: {}", e.reason)))?;
    let ttl = req.ttl_secs.unwrap_or(BUYER_TOKEN_TTL_SECS_DEFAULT);
    if !(BUYER_TOKEN_TTL_SECS_MIN..=BUYER_TOKEN_TTL_SECS_MAX).contains(&ttl) {
        return Err(ApiError::invalid(format!(
            "ttl_secs must be between {BUYER_TOKEN_TTL_SECS_MIN} and {BUYER_TOKEN_TTL_SECS_MAX}"
        )));
    }
    let expires_at_secs = state.now().0.div_euclid(1000) + ttl as i64;
    let token = state.keys.mint_buyer_token(&buyer, expires_at_secs);
    Ok((
        StatusCode::CREATED,
        Json(BuyerTokenView {
            token,
            buyer_id: buyer.as_str().to_string(),
            expires_at: Rfc3339(Timestamp(expires_at_secs * 1000)),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/admin/orders/{order_id}", tag = "admin", operation_id = "admin_get_order", params(("order_id" = String, Path)),
    responses((status = 200, body = AdminOrderView, description = "The order with its buyer, every payment attempt with the timeline of its steps (time and correlation id), and every refund")),
    security(("admin" = ["reporting", "admin"])))]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    _: Reporting,
    ApiPath(order_id): ApiPath,
) -> Result<JsonBody, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    let body = state.engine()?.read(sale, |s| {
        let o = s.orders.get(&order)?;
        Some(json::encode_serde(&AdminOrderView::new(sale, s, o)))
    });
    body.flatten().ok_or_else(|| ApiError::not_found("order"))?
}

#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/confirm-payment", tag = "admin", params(("order_id" = String, Path)),
    request_body = ConfirmPaymentRequest,
    responses((status = 200, body = OrderView, description = "Paid, with its tickets (or, paid after its deadline without tickets left, `refund_required`)"),
        (status = 409, body = ErrorBody, description = "`conflict` (`details.reason`: `payment_in_progress`, `order_paid`, …)")),
    security(("admin" = ["admin"])))]
pub(crate) async fn confirm_payment(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(order_id): ApiPath,
    ApiJson(req): ApiJson<ConfirmPaymentRequest>,
) -> Result<JsonBody, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    let payment_ref =
        PaymentRef::parse(&req.payment_ref).map_err(|e| ApiError::invalid(format!("payment_ref: {}", e.reason)))?;
    exec(
        state.engine()?,
        sale,
        Command::ConfirmPayment { order, payment_ref },
        &corr,
    )
    .await?;
    order_body(&state, sale, order)
}
