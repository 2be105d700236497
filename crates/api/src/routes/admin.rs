//! Organiser routes (`Authorization: Bearer <admin token>`): catalog, sale status, buyer
//! tokens, stats, check-in, refunds, and the event feed.

use crate::json::{Json, RawJson};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use taquilla_domain::{
    Actor, Command, CreateSale, Currency, MoneyMinor, Name, Outcome, SaleId, SaleStatus, TicketCode, TicketTypeId,
    limits,
};
use utoipa::IntoParams;

use super::{exec, order_of, sale_of, unexpected};
use crate::AppState;
use crate::auth::{Admin, mint_buyer_token};
use crate::correlation::CorrelationId;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ids;
use crate::views::{self, *};

/// Feed records one request may return.
pub const FEED_LIMIT_MAX: usize = 1000;
const TOKEN_TTL_SECS_DEFAULT: u64 = 86_400;
const TOKEN_TTL_SECS_MIN: u64 = 60;
const TOKEN_TTL_SECS_MAX: u64 = 30 * 86_400;

fn name(s: &str) -> Result<Name, ApiError> {
    Name::parse(s).map_err(|e| ApiError::invalid(format!("name: {}", e.reason)))
}

fn event_of(state: &AppState, sale: SaleId) -> Result<EventView, ApiError> {
    state
        .engine()?
        .read(sale, |s| views::event_view(sale, s))
        .flatten()
        .ok_or_else(|| ApiError::not_found("event"))
}

#[utoipa::path(post, path = "/v1/admin/events", tag = "admin", request_body = CreateEventRequest,
    responses((status = 201, body = EventView), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn create_event(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiJson(req): ApiJson<CreateEventRequest>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let currency = Currency::parse(&req.currency).map_err(|e| ApiError::invalid(format!("currency: {}", e.reason)))?;
    let ttl_secs = req.hold_ttl_secs.unwrap_or(limits::HOLD_TTL_MS_DEFAULT / 1000);
    let hold_ttl_ms = ttl_secs
        .checked_mul(1000)
        .filter(|ms| (limits::HOLD_TTL_MS_MIN..=limits::HOLD_TTL_MS_MAX).contains(ms));
    let hold_ttl_ms = hold_ttl_ms.ok_or_else(|| ApiError::invalid("hold_ttl_secs must be between 1 and 86400"))?;
    let time = |field: &str, v: &Option<String>| -> Result<_, ApiError> {
        v.as_deref()
            .map(|s| {
                views::parse_rfc3339(s).ok_or_else(|| ApiError::invalid(format!("{field}: expected an RFC 3339 time")))
            })
            .transpose()
    };
    let cmd = CreateSale {
        name: name(&req.name)?,
        currency,
        hold_ttl_ms,
        max_tickets_per_buyer: req.max_tickets_per_buyer,
        opens_at: time("opens_at", &req.opens_at)?,
        closes_at: time("closes_at", &req.closes_at)?,
    };
    let sale = state.engine()?.create_sale(cmd, Some(corr.to_compact())).await?;
    Ok((StatusCode::CREATED, Json(event_of(&state, sale)?)))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/ticket-types", tag = "admin",
    params(("event_id" = String, Path)), request_body = CreateTicketTypeRequest,
    responses((status = 201, body = TicketTypeView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn create_ticket_type(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
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
    match exec(engine, sale, cmd, &corr).await? {
        Outcome::TicketTypeAdded(id) => {
            let view = engine
                .read(sale, |s| views::ticket_type_view(s, id.0))
                .ok_or_else(|| ApiError::not_found("event"))?;
            Ok((StatusCode::CREATED, Json(view)))
        }
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/quotas", tag = "admin",
    params(("event_id" = String, Path)), request_body = CreateQuotaRequest,
    responses((status = 201, body = QuotaView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn create_quota(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
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
    match exec(engine, sale, cmd, &corr).await? {
        Outcome::QuotaAdded(id) => {
            let view = engine
                .read(sale, |s| views::quota_view(s, id.0))
                .ok_or_else(|| ApiError::not_found("event"))?;
            Ok((StatusCode::CREATED, Json(view)))
        }
        other => Err(unexpected(other)),
    }
}

async fn set_status(
    state: AppState,
    corr: CorrelationId,
    event_id: String,
    status: SaleStatus,
) -> Result<Json<EventView>, ApiError> {
    let sale = sale_of(&event_id)?;
    exec(state.engine()?, sale, Command::SetStatus(status), &corr).await?;
    Ok(Json(event_of(&state, sale)?))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/open", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = EventView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn open(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<EventView>, ApiError> {
    set_status(state, corr, event_id, SaleStatus::Open).await
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/pause", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = EventView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<EventView>, ApiError> {
    set_status(state, corr, event_id, SaleStatus::Paused).await
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/close", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = EventView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn close(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<EventView>, ApiError> {
    set_status(state, corr, event_id, SaleStatus::Closed).await
}

#[utoipa::path(get, path = "/v1/admin/events/{event_id}/stats", tag = "admin", params(("event_id" = String, Path)),
    responses((status = 200, body = StatsView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(event_id): ApiPath,
) -> Result<Json<StatsView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let view = state.engine()?.read(sale, |s| views::stats_view(sale, s)).flatten();
    view.map(Json).ok_or_else(|| ApiError::not_found("event"))
}

fn ticket_code(s: &str) -> Result<TicketCode, ApiError> {
    TicketCode::parse(s).ok_or_else(|| ApiError::invalid("ticket_code: expected 26 characters of Crockford base32"))
}

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/checkins", tag = "admin", params(("event_id" = String, Path)),
    request_body = CheckinRequest,
    responses((status = 200, body = CheckinView), (status = 409, description = "already_checked_in, with details.checked_in_at", body = ErrorBody),
        (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn checkin(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
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
                order_id: ids::order_id(sale, ticket.order),
                ticket_type_id: ticket.ticket_type.0,
                checked_in_at: views::rfc3339(at),
            }))
        }
        other => Err(unexpected(other)),
    }
}

fn order_json(state: &AppState, sale: SaleId, order: taquilla_domain::OrderId) -> Result<RawJson, ApiError> {
    let body = state
        .engine()?
        .read(sale, |s| {
            s.orders.get(&order).map(|o| {
                let mut out = RawJson::buffer();
                views::write_order_json(&mut out, sale, s, o);
                out
            })
        })
        .flatten();
    body.map(RawJson).ok_or_else(|| ApiError::not_found("order"))
}

#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/refund", tag = "admin", params(("order_id" = String, Path)),
    request_body = RefundRequest, responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn refund(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(order_id): ApiPath,
    ApiJson(req): ApiJson<RefundRequest>,
) -> Result<RawJson, ApiError> {
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
    order_json(&state, sale, order)
}

#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/cancel", tag = "admin", params(("order_id" = String, Path)),
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn cancel_order(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(order_id): ApiPath,
) -> Result<RawJson, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    exec(
        state.engine()?,
        sale,
        Command::CancelOrder {
            actor: Actor::Admin,
            order,
        },
        &corr,
    )
    .await?;
    order_json(&state, sale, order)
}

#[utoipa::path(post, path = "/v1/admin/buyer-tokens", tag = "admin", request_body = BuyerTokenRequest,
    responses((status = 201, body = BuyerTokenView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn buyer_token(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<BuyerTokenRequest>,
) -> Result<(StatusCode, Json<BuyerTokenView>), ApiError> {
    let buyer = taquilla_domain::BuyerId::parse(&req.buyer_id)
        .map_err(|e| ApiError::invalid(format!("buyer_id: {}", e.reason)))?;
    let ttl = req.ttl_secs.unwrap_or(TOKEN_TTL_SECS_DEFAULT);
    if !(TOKEN_TTL_SECS_MIN..=TOKEN_TTL_SECS_MAX).contains(&ttl) {
        return Err(ApiError::invalid("ttl_secs must be between 60 and 2592000"));
    }
    let expires_at_secs = state.now().0.div_euclid(1000) + ttl as i64;
    let token = mint_buyer_token(&state.secrets.buyer_secret, &buyer, expires_at_secs);
    Ok((
        StatusCode::CREATED,
        Json(BuyerTokenView {
            token,
            buyer_id: buyer.as_str().to_string(),
            expires_at: views::rfc3339(taquilla_domain::Timestamp(expires_at_secs * 1000)),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    /// Cursor from a previous page; "0" (default) starts at the beginning.
    after: Option<String>,
    /// 1–1000, default 100 records.
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/admin/feed", tag = "admin", params(FeedQuery),
    responses((status = 200, body = FeedView), (status = "4XX", body = ErrorBody)), security(("admin" = [])))]
pub(crate) async fn feed(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Json<FeedView>, ApiError> {
    let after: u64 = match q.after.as_deref() {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::invalid("after: expected a cursor from next_cursor"))?,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=FEED_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {FEED_LIMIT_MAX}"
        )));
    }
    let engine = state.engine()?.clone();
    // Reading the log touches the disk: off the async workers.
    let records = tokio::task::spawn_blocking(move || engine.log().read(after, limit))
        .await
        .map_err(|_| ApiError::new(crate::Code::Internal, "feed reader failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "feed read failed");
            ApiError::new(crate::Code::Internal, "the log could not be read")
        })?;
    let mut events = Vec::new();
    let mut next = after;
    let mut decoded = Vec::new();
    for r in &records {
        next = r.lsn;
        decoded.clear();
        taquilla_domain::codec::decode_events_into(&r.payload, &mut decoded).map_err(|e| {
            tracing::error!(lsn = r.lsn, error = %e, "undecodable record in the log");
            ApiError::new(crate::Code::Internal, "undecodable record in the log")
        })?;
        let sale = SaleId(r.partition);
        for e in &decoded {
            let (kind, data) = views::event_json(sale, e);
            events.push(FeedEvent {
                cursor: r.lsn.to_string(),
                event_id: ids::event_id(sale),
                seq: r.seq,
                recorded_at: views::rfc3339(taquilla_domain::Timestamp(r.timestamp_ms)),
                correlation_id: r.correlation_id.clone(),
                kind,
                data,
            });
        }
    }
    Ok(Json(FeedView {
        events,
        next_cursor: next.to_string(),
    }))
}
