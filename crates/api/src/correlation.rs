//! Correlation ids: accepted from `X-Correlation-Id` (when well-formed) or generated, put in
//! the request's extensions for handlers (which pass it into the log's records), echoed on
//! the response, and written into every error body. The same middleware records the
//! per-route request metrics, since it sees every request and response.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use compact_str::CompactString;
use rand::Rng;

use crate::error::{ApiError, Code, PendingError, render};

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

fn status_message(s: axum::http::StatusCode) -> String {
    s.canonical_reason().unwrap_or("error").to_lowercase()
}

pub const HEADER: &str = "x-correlation-id";
pub const MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(CompactString);

impl CorrelationId {
    /// Accepts 1..=64 characters of `[A-Za-z0-9._:-]`; anything else is replaced.
    pub fn parse(s: &str) -> Option<CorrelationId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| CorrelationId(CompactString::from(s)))
    }

    pub fn generate() -> CorrelationId {
        let v: u128 = rand::rng().random();
        CorrelationId(compact_str::format_compact!("{v:032x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_compact(&self) -> CompactString {
        self.0.clone()
    }
}

pub async fn middleware(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(CorrelationId::parse)
        .unwrap_or_else(CorrelationId::generate);
    let method = req.method().clone();
    req.extensions_mut().insert(id.clone());
    let mut res = next.run(req).await;
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(PendingError(err)) = res.extensions_mut().remove::<PendingError>() {
        res = render(&err, &id);
    } else if (res.status().is_client_error() || res.status().is_server_error()) && !is_json(&res) {
        // A plain answer from a layer (timeout, body limit): same JSON shape as ours.
        res = render(
            &ApiError::new(Code::from_status(res.status()), status_message(res.status())),
            &id,
        );
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(HEADER, v);
    }
    let status = res.status().as_u16().to_string();
    let labels = [("route", route), ("method", method.to_string()), ("status", status)];
    metrics::counter!("taquilla_http_requests_total", &labels).increment(1);
    metrics::histogram!("taquilla_http_request_duration_seconds", &labels[..2]).record(started.elapsed().as_secs_f64());
    if res.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        // Overload is a state, not a fault: a flash crowd must not flood the log with it.
        tracing::debug!(correlation_id = id.as_str(), route = labels[0].1, "503");
    } else if res.status().is_server_error() {
        tracing::error!(
            correlation_id = id.as_str(),
            route = labels[0].1,
            status = labels[2].1,
            "server error"
        );
    }
    res
}

/// Inner layer (a `route_layer`, so it runs only for matched routes): hands the matched route
/// to the outer middleware through the response, which routing does not otherwise expose.
pub async fn record_route(req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(p) = path {
        res.extensions_mut().insert(p);
    }
    res
}
