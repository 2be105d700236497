//! `GET /v1/events/{event_id}/stream`: a sale's availability pushed as server-sent events (the
//! hub is `crate::push`). Public; a buyer token (header, or `token` for `EventSource`) adds
//! the buyer's own waiting-room status.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::sale_of;
use crate::AppState;
use crate::auth::optional_buyer;
use crate::connections::LongLived;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};

/// The header a browser's `EventSource` sends when it reconnects: the `id` of the last event
/// it received.
const LAST_EVENT_ID: &str = "last-event-id";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// A buyer token, for clients that cannot send `Authorization` (a browser's `EventSource`):
    /// the stream then also carries this buyer's `room` events. Prefer the header where you can
    /// (a URL may end up in logs).
    #[param(max_length = 512)]
    token: Option<String>,
}

#[utoipa::path(get, path = "/v1/events/{event_id}/stream", tag = "public",
    params(("event_id" = String, Path), StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "The `id` of the last `availability` event received (a browser's `EventSource` sends it when it reconnects): if it is the sale's current version nothing is sent again, otherwise the current state is sent at once.")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "Server-sent events, until the server drops the stream (the client then reconnects). Events: `availability` (data: schema `AvailabilityView`; `id`: the sale's version) at once and after each change, at most 10 a second; `room` (data: schema `WaitingRoomStatusView`, as `GET /v1/events/{event_id}/waiting-room` answers; no `id`) when a buyer token was given, the sale has a waiting room and the buyer's status in it changed. A `: heartbeat` comment every 15 s when idle; `retry: 1000` first. A subscriber that falls behind or stops reading is dropped: reconnect with `Last-Event-ID`."),
        (status = 401, body = ErrorBody, description = "`unauthorized`: a buyer token was given (`token` or `Authorization`) and is malformed, expired or forged"),
        (status = 503, body = ErrorBody, description = "`too_many_subscribers`: the server's or this sale's subscriber limit is reached; poll `GET /v1/events/{event_id}` or retry after `Retry-After` seconds", headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    ApiPath(event_id): ApiPath,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sale = sale_of(&event_id)?;
    let engine = state.engine()?;
    let buyer = optional_buyer(&headers, q.token.as_deref(), &state)?;
    // What the client last got; anything unreadable counts as nothing (the current state is sent).
    let last_event_id = headers
        .get(LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let subscriber = state.push.subscribe(engine, sale, last_event_id, buyer)?;
    Ok((
        Extension(LongLived),
        // Tells nginx-like proxies not to buffer the stream.
        [("x-accel-buffering", HeaderValue::from_static("no"))],
        subscriber.into_sse(),
    )
        .into_response())
}
