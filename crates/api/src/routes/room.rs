//! The waiting room: the organiser configures it; a buyer joins, reads their place (position,
//! odds, and once admitted a signed admission token for `POST …/holds`), and leaves.

use axum::Extension;
use axum::extract::State;
use taquilla_domain::{BuyerId, Command, RoomConfig, RoomStanding, SaleId, Timestamp, limits};

use taquilla_engine::Engine;

use super::{exec, sale_of};
use crate::AppState;
use crate::admission::Admission;
use crate::auth::{Admin, Buyer};
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::json::Json;
use crate::keys::KeyStore;
use crate::requests::WaitingRoomRequest;
use crate::time::parse_rfc3339;
use crate::views::{WaitingRoomStatusView, WaitingRoomView, read_status};

fn config(req: &WaitingRoomRequest) -> Result<RoomConfig, ApiError> {
    let time = |field: &str, v: &str| {
        parse_rfc3339(v).ok_or_else(|| ApiError::invalid(format!("{field}: expected an RFC 3339 time")))
    };
    let session_ms = req
        .session_secs
        .checked_mul(1000)
        .filter(|ms| (limits::ROOM_SESSION_MS_MIN..=limits::ROOM_SESSION_MS_MAX).contains(ms))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "session_secs must be between {} and {}",
                limits::ROOM_SESSION_MS_MIN / 1000,
                limits::ROOM_SESSION_MS_MAX / 1000
            ))
        })?;
    Ok(RoomConfig {
        prequeue_opens_at: time("prequeue_opens_at", &req.prequeue_opens_at)?,
        opens_at: time("opens_at", &req.opens_at)?,
        admit_per_sec: req.admit_per_sec,
        session_ms,
        queue_max: req.queue_max,
    })
}

#[utoipa::path(put, path = "/v1/admin/events/{event_id}/waiting-room", tag = "admin", params(("event_id" = String, Path)),
    request_body = WaitingRoomRequest,
    responses((status = 200, body = WaitingRoomView, description = "Durable when answered; from now on holds need an admission"),
        (status = 409, body = ErrorBody, description = "`conflict`: buyers have joined already (`room_in_use`) or the sale is closed (`details.reason`)"),
        (status = 422, body = ErrorBody, description = "`invalid`: a time, rate, session length or queue length out of range")),
    security(("admin" = ["admin"])))]
pub(crate) async fn configure(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    _: Admin,
    ApiPath(event_id): ApiPath,
    ApiJson(req): ApiJson<WaitingRoomRequest>,
) -> Result<Json<WaitingRoomView>, ApiError> {
    let sale = sale_of(&event_id)?;
    exec(state.engine()?, sale, Command::ConfigureRoom(config(&req)?), &corr).await?;
    let now = state.now();
    let view = state.engine()?.read(sale, |s| {
        s.room.as_deref().map(|r| WaitingRoomView::new(sale, s, r, now))
    });
    view.flatten()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("waiting room"))
}

/// The buyer's status now, with a freshly signed admission token when admitted.
fn status_view(state: &AppState, sale: SaleId, buyer: &BuyerId) -> Result<Json<WaitingRoomStatusView>, ApiError> {
    buyer_status(&state.keys, state.engine()?, sale, buyer, state.now())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("waiting room"))
}

/// The buyer's status at `now` (`None` without a room), with a freshly signed admission token
/// when admitted: what `GET …/waiting-room` answers and the event stream's `room` events carry.
pub(crate) fn buyer_status(
    keys: &KeyStore,
    engine: &Engine,
    sale: SaleId,
    buyer: &BuyerId,
    now: Timestamp,
) -> Option<WaitingRoomStatusView> {
    let (status, room) = engine.read(sale, |s| read_status(sale, s, buyer, now)).flatten()?;
    let token = match status.standing {
        RoomStanding::Admitted { number, expires_at } => Some(keys.mint_admission(&Admission {
            sale,
            buyer: buyer.clone(),
            number,
            expires_at,
        })),
        _ => None,
    };
    Some(WaitingRoomStatusView::new(&status, room, token))
}

#[utoipa::path(post, path = "/v1/events/{event_id}/waiting-room", tag = "buyer", params(("event_id" = String, Path)),
    responses((status = 200, body = WaitingRoomStatusView, description = "Queued (durable when answered), or where the buyer already was: joining twice changes nothing"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such event, or it has no waiting room"),
        (status = 409, body = ErrorBody, description = "`conflict`: the pre-queue is not open yet (`room_not_open`) or the sale is closed (`details.reason`)"),
        (status = 503, body = ErrorBody, description = "`queue_full`: the room holds as many buyers as it may; retry after `Retry-After`")),
    security(("buyer" = [])))]
pub(crate) async fn join(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(event_id): ApiPath,
) -> Result<Json<WaitingRoomStatusView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let join = Command::JoinRoom { buyer: buyer.clone() };
    exec(state.engine()?, sale, join, &corr).await.map_err(no_room)?;
    status_view(&state, sale, &buyer)
}

#[utoipa::path(get, path = "/v1/events/{event_id}/waiting-room", tag = "buyer", params(("event_id" = String, Path)),
    responses((status = 200, body = WaitingRoomStatusView, description = "The buyer's place: position, buyers ahead, estimated wait, odds; once admitted, the admission token"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such event, or it has no waiting room")),
    security(("buyer" = [])))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Buyer(buyer): Buyer,
    ApiPath(event_id): ApiPath,
) -> Result<Json<WaitingRoomStatusView>, ApiError> {
    let sale = sale_of(&event_id)?;
    status_view(&state, sale, &buyer)
}

#[utoipa::path(delete, path = "/v1/events/{event_id}/waiting-room", tag = "buyer", params(("event_id" = String, Path)),
    responses((status = 200, body = WaitingRoomStatusView, description = "Left (durable when answered); an admission is given up too"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such event, or it has no waiting room"),
        (status = 409, body = ErrorBody, description = "`conflict`: the buyer is not queued or admitted (`not_in_room`)")),
    security(("buyer" = [])))]
pub(crate) async fn leave(
    State(state): State<AppState>,
    Extension(corr): Extension<CorrelationId>,
    Buyer(buyer): Buyer,
    ApiPath(event_id): ApiPath,
) -> Result<Json<WaitingRoomStatusView>, ApiError> {
    let sale = sale_of(&event_id)?;
    let leave = Command::LeaveRoom { buyer: buyer.clone() };
    exec(state.engine()?, sale, leave, &corr).await.map_err(no_room)?;
    status_view(&state, sale, &buyer)
}

/// A sale without a room answers "not found" for the room, not for the sale.
fn no_room(e: ApiError) -> ApiError {
    if e.code == Code::NotFound {
        ApiError::not_found("waiting room")
    } else {
        e
    }
}

/// When the sale has a waiting room, a hold needs the buyer's current admission token
/// (`Admission-Token`), for this sale and buyer, unexpired: else `403 admission_required`.
/// One read of the sale (its room only); a sale without one costs nothing more.
pub(crate) fn check_admission(
    state: &AppState,
    sale: SaleId,
    buyer: &BuyerId,
    token: Option<&str>,
) -> Result<(), ApiError> {
    let now: Timestamp = state.now();
    let live = state.engine()?.read(sale, |s| {
        s.room.as_deref().map(|r| r.admission(buyer, now).map(|(n, _)| n))
    });
    let Some(Some(live)) = live else {
        return Ok(());
    };
    let refuse = |why: &str| ApiError::new(Code::AdmissionRequired, format!("this sale has a waiting room: {why}"));
    let token = token.ok_or_else(|| refuse("send the Admission-Token its status gave you once admitted"))?;
    let admission = state.keys.verify_admission(token, sale, buyer, now).map_err(refuse)?;
    match live {
        Some(number) if number == admission.number => Ok(()),
        _ => Err(refuse("this admission was used, expired or given up")),
    }
}
