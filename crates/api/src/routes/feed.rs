//! The event feed (`GET /v1/admin/feed`): the log's records as JSON, read by cursor, for any
//! number of independent readers (at-least-once).

use axum::extract::State;
use serde::Deserialize;
use taquilla_domain::{SaleId, Timestamp};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::ApiQuery;
use crate::ids::PublicSaleId;
use crate::json::Json;
use crate::responses::{AdminAuth, Unavailable};
use crate::time::Rfc3339;
use crate::views::{FeedEvent, FeedView, event_data};

use crate::limits::{FEED_LIMIT_DEFAULT, FEED_LIMIT_MAX};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    /// Cursor from a previous page; "0" (default) starts at the beginning.
    after: Option<String>,
    /// 1–1000 (`limits::FEED_LIMIT_MAX`), default 100 records.
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/admin/feed", tag = "admin", params(FeedQuery),
    responses((status = 200, body = FeedView), AdminAuth, Unavailable, (status = 422, body = ErrorBody, description = "`invalid` cursor or limit")),
    security(("admin" = [])))]
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
    let limit = q.limit.unwrap_or(FEED_LIMIT_DEFAULT);
    if !(1..=FEED_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {FEED_LIMIT_MAX}"
        )));
    }
    let engine = state.engine()?.clone();
    // Reading the log touches the disk: off the async workers.
    let records = tokio::task::spawn_blocking(move || engine.log().read(after, limit))
        .await
        .map_err(|_| ApiError::new(Code::Internal, "feed reader failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "feed read failed");
            ApiError::new(Code::Internal, "the log could not be read")
        })?;
    let mut events = Vec::new();
    let mut next = after;
    let mut decoded = Vec::new();
    for r in &records {
        next = r.lsn;
        decoded.clear();
        taquilla_domain::codec::decode_events_into(&r.payload, &mut decoded).map_err(|e| {
            tracing::error!(lsn = r.lsn, error = %e, "undecodable record in the log");
            ApiError::new(Code::Internal, "undecodable record in the log")
        })?;
        // A sale is one partition of the log.
        let sale = SaleId(r.partition);
        for e in &decoded {
            let (kind, data) = event_data(sale, e);
            events.push(FeedEvent {
                cursor: r.lsn.to_string(),
                event_id: PublicSaleId(sale),
                seq: r.seq,
                recorded_at: Rfc3339(Timestamp(r.timestamp_ms)),
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
