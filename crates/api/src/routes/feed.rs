//! The event feed (`GET /v1/admin/feed`): the log's records as JSON, read by cursor, for any
//! number of independent readers (at-least-once).

use axum::extract::State;
use serde::Deserialize;
use taquilla_domain::{SaleId, Timestamp};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Reporting;
use crate::constraints;
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::ApiQuery;
use crate::ids::PublicSaleId;
use crate::json::Json;
use crate::time::Rfc3339;
use crate::views::{FeedEvent, FeedView, event_data};

use crate::limits::{FEED_LIMIT_DEFAULT, FEED_LIMIT_MAX};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    /// `next_cursor` of a previous page; 0 (default) starts at the beginning.
    #[param(schema_with = constraints::feed_after)]
    after: Option<u64>,
    /// Records per page, 1–1000; default 100.
    #[param(schema_with = constraints::feed_limit)]
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/admin/feed", tag = "admin", params(FeedQuery),
    responses((status = 200, body = FeedView), (status = 422, body = ErrorBody, description = "`invalid` cursor or limit")),
    security(("admin" = ["reporting", "admin"])))]
pub(crate) async fn feed(
    State(state): State<AppState>,
    _: Reporting,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Json<FeedView>, ApiError> {
    let after = q.after.unwrap_or(0);
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
