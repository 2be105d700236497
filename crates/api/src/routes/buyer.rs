//! Public and buyer routes. The sale page is public and cacheable; holds and orders need a
//! buyer token, and a buyer sees only their own (anyone else gets `404`, so ids leak nothing).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use taquilla_domain::{
    Actor, BuyerId, Command, Hold, HoldId, HoldState, Item, Items, OrderId, Outcome, PaymentMethod, Quantity,
    Rejection, SaleId, TicketTypeId, limits,
};

use super::{exec, hold_of, order_of, payments, sale_of, unexpected};
use crate::AppState;
use crate::admission::AdmissionToken;
use crate::auth::Buyer;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Idempotency, PreferWait};
use crate::json::{self, Json, JsonBody};
use crate::requests::{HoldRequest, PayRequest};
use crate::views::{HoldView, OrderView, SaleList, SaleView};

/// The sale page may be served from a cache for a second.
const SALE_CACHE_CONTROL: &str = "public, max-age=1";

#[utoipa::path(get, path = "/v1/events", tag = "public", responses((status = 200, body = SaleList)))]
pub(crate) async fn list_sales(State(state): State<AppState>) -> Result<Json<SaleList>, ApiError> {
    let engine = state.engine()?;
    let events = engine
        .sales()
        .into_iter()
        .filter_map(|sale| {
            let public = |s: &taquilla_domain::SaleState| s.sale.as_ref().is_some_and(|x| x.status.is_public());
            engine
                .read(sale, |s| public(s).then(|| SaleView::new(sale, s)).flatten())
                .flatten()
        })
        .collect();
    Ok(Json(SaleList { events }))
}

#[utoipa::path(get, path = "/v1/events/{event_id}", tag = "public", params(("event_id" = String, Path)),
    responses((status = 200, body = SaleView, description = "With ETag and Cache-Control: public, max-age=1"), (status = 304, description = "If-None-Match matched the current ETag")))]
pub(crate) async fn get_sale(
    State(state): State<AppState>,
    ApiPath(event_id): ApiPath,
    req: Request,
) -> Result<Response, ApiError> {
    let sale = sale_of(&event_id)?;
    let page = state.pages.get(state.engine()?, sale)?;
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| page.matches(v));
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(page.body.clone()));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    let hs = res.headers_mut();
    hs.insert(header::ETAG, page.etag.clone());
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static(SALE_CACHE_CONTROL));
    Ok(res)
}

/// The buyer's hold as JSON, encoded under the sale's read lock. Only active holds are kept:
/// one that ended (released, expired, checked out) answers `410 hold_ended`, whoever asks.
fn hold_body(state: &AppState, buyer: &BuyerId, sale: SaleId, hold: HoldId) -> Result<JsonBody, ApiError> {
    let body = state.engine()?.read(sale, |s| match s.holds.get(&hold) {
        Some(h) if &h.buyer == buyer => Ok(json::encode(&HoldView::new(sale, s, h))),
        None if s.holds.ended(&hold) => Err(ApiError::from(Rejection::HoldEnded)),
        _ => Err(ApiError::not_found("hold")),
    });
    body.unwrap_or_else(|| Err(ApiError::not_found("hold")))
}

/// The buyer's active hold as it is now (before a release takes it out of the table).
fn active_hold(state: &AppState, buyer: &BuyerId, sale: SaleId, hold: HoldId) -> Result<Option<Hold>, ApiError> {
    let h = state
        .engine()?
        .read(sale, |s| s.holds.get(&hold).filter(|h| &h.buyer == buyer).cloned());
    Ok(h.flatten())
}

/// The buyer's order as JSON, encoded under the sale's read lock.
fn order_body(state: &AppState, buyer: &BuyerId, sale: SaleId, order: OrderId) -> Result<JsonBody, ApiError> {
    let body = state.engine()?.read(sale, |s| {
        let o = s.orders.get(&order).filter(|o| &o.buyer == buyer)?;
        Some(json::encode(&OrderView::new(sale, s, o, true)))
    });
    body.flatten().ok_or_else(|| ApiError::not_found("order"))
}

fn items(req: &HoldRequest) -> Result<Items, ApiError> {
    if req.items.is_empty() || req.items.len() > limits::HOLD_ITEMS_MAX {
        return Err(ApiError::invalid(format!(
            "items: 1 to {} lines",
            limits::HOLD_ITEMS_MAX
        )));
    }
    let mut out = Items::new();
    for (i, it) in req.items.iter().enumerate() {
        let quantity = Quantity::new(it.quantity).map_err(|_| {
            ApiError::invalid(format!(
                "items[{i}].quantity must be between 1 and {}",
                limits::QUANTITY_MAX
            ))
        })?;
        if req.items[..i].iter().any(|o| o.ticket_type_id == it.ticket_type_id) {
            return Err(ApiError::invalid(format!(
                "items[{i}]: ticket type {} appears twice",
                it.ticket_type_id
            )));
        }
        out.push(Item {
            ticket_type: TicketTypeId(it.ticket_type_id),
            quantity,
        });
    }
    Ok(out)
}

#[utoipa::path(post, path = "/v1/events/{event_id}/holds", tag = "buyer", params(("event_id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1–64 printable characters; retrying with the same key and body returns the original hold"),
        ("Admission-Token" = Option<String>, Header, description = "When the sale has a waiting room: the token its status gave the buyer once admitted")),
    request_body = HoldRequest,
    responses((status = 201, body = HoldView, description = "Durable when answered"), (status = 403, body = ErrorBody, description = "`admission_required`: the sale has a waiting room and the request carries no valid admission token of this buyer's current admission"), (status = 410, body = ErrorBody, description = "`hold_ended`: a retry (same key and body) whose hold has ended since"), (status = 409, body = ErrorBody, description = "`sold_out`, `insufficient_inventory` (with `details`), `sale_not_open`, `idempotency_conflict`"), (status = 422, body = ErrorBody, description = "`limit_exceeded`: the per-buyer limit (with `details`); `invalid`: a ticket type twice, or over its `max_per_order`")),
    security(("buyer" = [])))]
pub(crate) async fn place_hold(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(event_id): ApiPath,
    idempotency: Idempotency,
    AdmissionToken(admission): AdmissionToken,
    ApiJson(req): ApiJson<HoldRequest>,
) -> Result<(StatusCode, JsonBody), ApiError> {
    let sale = sale_of(&event_id)?;
    super::room::check_admission(&state, sale, &buyer, admission.as_deref())?;
    let cmd = Command::PlaceHold {
        buyer: buyer.clone(),
        items: items(&req)?,
        idempotency_key: idempotency.0?,
    };
    match exec(state.engine()?, sale, cmd, &corr).await? {
        Outcome::Hold(hold) => Ok((StatusCode::CREATED, hold_body(&state, &buyer, sale, hold)?)),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(get, path = "/v1/holds/{hold_id}", tag = "buyer", params(("hold_id" = String, Path)),
    responses((status = 200, body = HoldView, description = "An active hold"), (status = 410, body = ErrorBody, description = "`hold_ended`: the hold was released, expired or checked out (ended holds are not kept, whoever asks)")), security(("buyer" = [])))]
pub(crate) async fn get_hold(
    State(state): State<AppState>,
    Buyer(buyer): Buyer,
    ApiPath(hold_id): ApiPath,
) -> Result<JsonBody, ApiError> {
    let (sale, hold) = hold_of(&hold_id)?;
    hold_body(&state, &buyer, sale, hold)
}

#[utoipa::path(delete, path = "/v1/holds/{hold_id}", tag = "buyer", params(("hold_id" = String, Path)),
    responses((status = 200, body = HoldView, description = "Released; its tickets are available again"), (status = 410, body = ErrorBody, description = "`hold_ended`: the hold was released, expired or checked out (ended holds are not kept, whoever asks)")),
    security(("buyer" = [])))]
pub(crate) async fn release_hold(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(hold_id): ApiPath,
) -> Result<JsonBody, ApiError> {
    let (sale, hold) = hold_of(&hold_id)?;
    // A released hold leaves the table: its view is the one read before, marked released.
    let before = active_hold(&state, &buyer, sale, hold)?;
    let cmd = Command::ReleaseHold {
        buyer: buyer.clone(),
        hold,
    };
    exec(state.engine()?, sale, cmd, &corr).await?;
    // `None` only if the buyer released an id before its placement was answered.
    let mut h = before.ok_or_else(|| ApiError::from(Rejection::HoldEnded))?;
    h.state = HoldState::Released;
    let body = state
        .engine()?
        .read(sale, |s| json::encode(&HoldView::new(sale, s, &h)));
    body.ok_or_else(|| ApiError::not_found("sale"))
}

#[utoipa::path(post, path = "/v1/holds/{hold_id}/checkout", tag = "buyer", params(("hold_id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key returns the original order")),
    responses((status = 201, body = OrderView, description = "Awaiting payment until the hold's deadline"), (status = 410, body = ErrorBody, description = "`hold_ended`: the hold was released, expired or checked out (ended holds are not kept, whoever asks)"), (status = 409, body = ErrorBody, description = "`hold_expired`, `idempotency_conflict`, or `conflict` (`details.reason`)"), (status = 422, body = ErrorBody, description = "`invalid` Idempotency-Key")),
    security(("buyer" = [])))]
pub(crate) async fn checkout(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(hold_id): ApiPath,
    idempotency: Idempotency,
) -> Result<(StatusCode, JsonBody), ApiError> {
    let (sale, hold) = hold_of(&hold_id)?;
    let cmd = Command::Checkout {
        buyer: buyer.clone(),
        hold,
        idempotency_key: idempotency.0?,
    };
    match exec(state.engine()?, sale, cmd, &corr).await? {
        Outcome::Order(order) => Ok((StatusCode::CREATED, order_body(&state, &buyer, sale, order)?)),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "buyer", params(("order_id" = String, Path)),
    responses((status = 200, body = OrderView, description = "With ticket codes once paid")),
    security(("buyer" = [])))]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    Buyer(buyer): Buyer,
    ApiPath(order_id): ApiPath,
) -> Result<JsonBody, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    order_body(&state, &buyer, sale, order)
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/pay", tag = "buyer", params(("order_id" = String, Path),
        ("Prefer" = Option<String>, Header, description = "`wait=<seconds>` (at most 10; default 5, `wait=0` answers at once): how long to wait for the attempt to reach a state the buyer can act on — paid or ended, or (Stripe) created with its client secret")),
    request_body = PayRequest,
    responses((status = 200, body = OrderView, description = "Paid, with its tickets"),
        (status = 202, body = OrderView, description = "The payment is under way (`payment.state`); with Stripe, `payment.client_secret` is what the buyer's front end confirms it with. Poll the order, or pass `Prefer: wait`"),
        (status = 403, body = ErrorBody, description = "`payment_method_disabled`: this server does not take that method"),
        (status = 409, body = ErrorBody, description = "`hold_expired`, or `conflict` (`details.reason`: `payment_in_progress`, `payment_attempts_exhausted`, `payment_method_not_offered`, …)"),
        (status = 503, body = ErrorBody, description = "`payment_unavailable`: the provider is failing and its circuit is open (holds still work). See Retry-After")),
    security(("buyer" = [])))]
pub(crate) async fn pay(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(order_id): ApiPath,
    wait: PreferWait,
    ApiJson(req): ApiJson<PayRequest>,
) -> Result<(StatusCode, JsonBody), ApiError> {
    let (sale, order) = order_of(&order_id)?;
    let method = PaymentMethod::parse(&req.method)
        .ok_or_else(|| ApiError::invalid("method: one of \"test\", \"simulated\", \"stripe\", \"offline\""))?;
    payments::check_method(&state, method)?;
    let cmd = Command::RequestPayment {
        buyer: buyer.clone(),
        order,
        method,
    };
    let attempt = match exec(state.engine()?, sale, cmd, &corr).await? {
        Outcome::Payment { attempt, .. } => attempt,
        other => return Err(unexpected(other)),
    };
    let waited = wait.or_default();
    let paid = payments::await_payment(&state, sale, order, attempt, method, waited).await?;
    let status = if paid { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, order_body(&state, &buyer, sale, order)?))
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", tag = "buyer", params(("order_id" = String, Path)),
    responses((status = 200, body = OrderView, description = "Cancelled; its tickets are available again"), (status = 409, body = ErrorBody, description = "`conflict`: the order is not awaiting payment (`details.reason`)")),
    security(("buyer" = [])))]
pub(crate) async fn cancel_order(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(order_id): ApiPath,
) -> Result<JsonBody, ApiError> {
    let (sale, order) = order_of(&order_id)?;
    let cmd = Command::CancelOrder {
        actor: Actor::Buyer(buyer.clone()),
        order,
    };
    exec(state.engine()?, sale, cmd, &corr).await?;
    order_body(&state, &buyer, sale, order)
}
