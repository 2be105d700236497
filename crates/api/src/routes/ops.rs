//! Operations: liveness, readiness (not ready until recovery finished), Prometheus metrics,
//! and the OpenAPI document.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use taquilla_domain::OrderState;

use crate::AppState;
use crate::error::{ApiError, Code, ErrorBody};
use crate::json::Json;
use crate::named::Named;
use crate::responses::RateLimited;
use crate::views::{Health, HoldStateView};

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody, description = "`unavailable`: recovering, or stopped")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.engine()?;
    Ok(Json(Health { status: "ready" }))
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 404, body = ErrorBody, description = "`not_found`: metrics are not enabled")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(handle) = state.prometheus.as_ref() else {
        return Err(ApiError::new(Code::NotFound, "metrics are not enabled"));
    };
    if let Ok(engine) = state.engine() {
        record_engine_gauges(engine);
    }
    let mut res = handle.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(res)
}

/// Gauges computed at scrape time, so the hot path pays nothing for them.
fn record_engine_gauges(engine: &taquilla_engine::Engine) {
    for (i, depth) in engine.queue_depths().into_iter().enumerate() {
        metrics::gauge!("taquilla_queue_depth", "shard" => i.to_string()).set(depth as f64);
    }
    metrics::gauge!("taquilla_queue_capacity").set(engine.queue_capacity() as f64);
    let s = engine.stats();
    metrics::gauge!("taquilla_commands").set(s.commands.load(Ordering::Relaxed) as f64);
    metrics::gauge!("taquilla_batches").set(s.batches.load(Ordering::Relaxed) as f64);
    metrics::gauge!("taquilla_log_flushes").set(s.flushes.load(Ordering::Relaxed) as f64);
    let mut holds = [0u64; HoldStateView::ALL.len()];
    let mut orders = [0u64; OrderState::ALL.len()];
    for sale in engine.sales() {
        engine.read(sale, |st| {
            for h in st.holds.values() {
                holds[HoldStateView::from(h.state) as usize] += 1;
            }
            for o in st.orders.values() {
                orders[o.state as usize] += 1;
            }
        });
    }
    for st in HoldStateView::ALL {
        metrics::gauge!("taquilla_holds", "state" => st.name()).set(holds[st as usize] as f64);
    }
    for st in OrderState::ALL {
        metrics::gauge!("taquilla_orders", "state" => st.as_str()).set(orders[st as usize] as f64);
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "This document"), RateLimited))]
pub(crate) async fn openapi() -> Response {
    let mut res = crate::openapi::document_json().into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
